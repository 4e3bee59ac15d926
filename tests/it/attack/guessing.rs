//! Password guesses sent all at once, and guesses while the ephemeral store
//! cannot count them: the lockout must hold either way. Each attempt is
//! counted before its password is checked, and one that cannot be counted
//! is refused unchecked.

use crate::common::{Backend, PASSWORD, TestEnv, TestServer};

async fn audited(srv: &TestServer, action: &str) -> usize {
    let audit = srv.services.recent_audit(500).await.unwrap();
    audit.iter().filter(|e| e.entry.action == action).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_sent_at_once_get_no_more_checks_than_the_lockout_allows() {
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.login.max_failures_per_account = 5;
    let srv = TestServer::start_with(env).await;
    srv.user("gus").await;
    let mut forms = Vec::new();
    for _ in 0..16 {
        let b = srv.browser();
        let csrf = b.get("/login").await.csrf();
        forms.push((b, csrf));
    }
    let guesses = forms.iter().enumerate().map(|(i, (b, csrf))| async move {
        let guess = format!("wrong guess {i}");
        let form = [
            ("username", "gus"),
            ("password", guess.as_str()),
            ("csrf", csrf),
        ];
        b.post("/login", &form).await.status
    });
    let statuses = futures_util::future::join_all(guesses).await;
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(
        audited(&srv, "login.failure").await <= 5,
        "no more passwords checked than the lockout allows"
    );
    // The account is locked now: even the right password opens nothing.
    let right = srv.browser().login("gus", PASSWORD).await;
    assert_eq!(right.status, 429, "{}", right.body);
    assert_eq!(audited(&srv, "login.success").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_count_refuses_every_guess_unchecked() {
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.ephemeral.max_entries = 64;
    let srv = TestServer::start_with(env).await;
    srv.user("gus").await;
    let page = srv.browser();
    let csrf = page.get("/login").await.csrf();
    // Someone fills the store to the brim.
    let hour = std::time::Duration::from_secs(3600);
    for i in 0..10_000 {
        let _ = srv
            .services
            .ephemeral
            .put_ttl(&format!("filler:{i}"), b"x", hour)
            .await;
    }
    for password in ["a wrong guess", PASSWORD] {
        let form = [
            ("username", "gus"),
            ("password", password),
            ("csrf", csrf.as_str()),
        ];
        let r = page.post("/login", &form).await;
        assert_eq!(r.status, 503, "{password:?} was checked: {}", r.body);
    }
    assert_eq!(audited(&srv, "login.failure").await, 0, "nothing checked");
    assert_eq!(audited(&srv, "login.success").await, 0);
}

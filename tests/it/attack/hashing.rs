//! A flood of password sign-ins from anonymous clients: each Argon2id check
//! holds 19 MiB, so only as many run at once as the memory budget allows;
//! the rest wait their turn, then get a 503 that says when to come back.
//! Nobody is locked out by it and nothing fails with a 500.

use crate::common::{Backend, PASSWORD, TestEnv, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_sign_ins_waits_its_turn_within_the_memory_budget() {
    let mut env = TestEnv::new(Backend::Embedded);
    // Room for one hashing, and no patience: every sign-in that finds the
    // slot taken is turned away at once.
    env.settings.login.password_hashing_memory_mib = 19;
    env.settings.login.password_hashing_wait = std::time::Duration::ZERO;
    // Every sign-in in flight counts against the account until its password
    // proves right; this flood is about memory, not the lockout.
    env.settings.login.max_failures_per_account = 100;
    let srv = TestServer::start_with(env).await;
    srv.user("erin").await;
    let mut forms = Vec::new();
    for _ in 0..16 {
        let b = srv.browser();
        let csrf = b.get("/login").await.csrf();
        forms.push((b, csrf));
    }
    let attempts = forms.iter().map(|(b, csrf)| async move {
        let form = [("username", "erin"), ("password", PASSWORD), ("csrf", csrf)];
        b.post("/login", &form).await
    });
    let pages = futures_util::future::join_all(attempts).await;
    let (mut signed_in, mut turned_away) = (0, 0);
    for p in &pages {
        match p.status {
            303 => signed_in += 1,
            503 => {
                turned_away += 1;
                assert_eq!(p.headers["retry-after"], "5", "{:?}", p.headers);
                assert!(p.body.contains("Too many sign-ins at once"), "{}", p.body);
            }
            other => panic!("a sign-in in the flood answered {other}: {}", p.body),
        }
    }
    assert!(signed_in >= 1, "the slot served someone");
    assert!(turned_away >= 1, "one slot cannot serve 16 at once");
    // Being turned away is not a failed password: erin is not locked out.
    let later = srv.browser().login("erin", PASSWORD).await;
    assert_eq!(later.status, 303, "{}", later.body);
}

#[test]
fn a_budget_smaller_than_one_hashing_is_refused_naming_the_setting() {
    use portcullis::config::Settings;
    let e = Settings::from_toml("[login]\npassword_hashing_memory_mib = 18\n").unwrap_err();
    assert!(
        e.to_string().contains("login.password_hashing_memory_mib"),
        "{e}"
    );
    let s = Settings::from_toml("[login]\npassword_hashing_memory_mib = 64\n").unwrap();
    assert_eq!(
        s.login.password_hashings_at_once(8),
        3,
        "what the budget holds"
    );
    assert_eq!(
        s.login.password_hashings_at_once(2),
        2,
        "no more than the cores"
    );
}

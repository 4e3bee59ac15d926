//! Security state in the ephemeral store is never evicted: page views store
//! nothing, a full store refuses new anonymous work with 503, and a Redis
//! that may evict keys is reported as not ready.

use crate::common::{Backend, Browser, PASSWORD, TestEnv, TestServer};
use crate::oidc::{authorize_url, client, draft};

fn small_store() -> TestEnv {
    let mut env = TestEnv::new(Backend::Embedded);
    // Twenty entries per shard.
    env.settings.ephemeral.max_entries = 320;
    env
}

/// After three failures, two more lock alice's account (five allowed):
/// even her right password is refused.
async fn assert_two_more_failures_lock(b: &Browser) {
    for _ in 0..2 {
        b.login("alice", "wrong password").await;
    }
    let p = b.login("alice", PASSWORD).await;
    assert_eq!(p.status, 429, "the account must be locked: {}", p.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_views_cannot_flush_the_lockout() {
    let srv = TestServer::start_with(small_store()).await;
    srv.user("alice").await;
    let b = srv.browser();
    // Three failures, then a flood of anonymous sign-in pages, each from a
    // fresh browser (a new CSRF binding every time).
    for _ in 0..3 {
        let p = b.login("alice", "wrong password").await;
        assert_eq!(p.status, 401);
    }
    let http = reqwest::Client::new();
    for _ in 0..2_000 {
        let r = http.get(srv.url("/login")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // The counter survived.
    assert_two_more_failures_lock(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_refuses_new_anonymous_work_and_keeps_counters() {
    let srv = TestServer::start_with(small_store()).await;
    srv.user("alice").await;
    let c = client(&srv, draft("app")).await;
    let b = srv.browser();
    for _ in 0..3 {
        b.login("alice", "wrong password").await;
    }
    // Anonymous authorization requests each start a transaction.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut refused = None;
    for _ in 0..1_000 {
        let r = http.get(authorize_url(&srv, &c, &[])).send().await.unwrap();
        if r.status() == 503 {
            refused = Some(r.text().await.unwrap());
            break;
        }
        assert_eq!(r.status(), 303);
    }
    let body = refused.expect("a full store refuses new work");
    assert!(body.contains("too busy"), "{body}");
    // The failure counter is still there and still counts.
    assert_two_more_failures_lock(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_refuses_a_redis_that_may_evict() {
    let Some(redis) = crate::common::private_redis(&["--maxmemory-policy", "allkeys-lru"]) else {
        return;
    };
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.ephemeral.url = portcullis::config::Secret::new(redis.url());
    let srv = TestServer::start_with(env).await;
    let r = reqwest::get(srv.url("/readyz")).await.unwrap();
    assert_eq!(r.status(), 503);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["database"], "ok");
    let why = v["ephemeral"].as_str().unwrap();
    assert!(
        why.contains("allkeys-lru") && why.contains("noeviction"),
        "{why}"
    );
    redis.config_set("maxmemory-policy", "noeviction");
    let r = reqwest::get(srv.url("/readyz")).await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_use_up_everyone_s_sign_ins() {
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.login.max_starts_per_ip = 20;
    env.settings.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    let srv = TestServer::start_with(env).await;
    srv.user("alice").await;
    let c = client(&srv, draft("app")).await;
    // The attacker asks for passkey challenges, each kept for minutes.
    let attacker = srv.browser();
    let csrf = attacker.get("/login").await.csrf();
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let r = attacker
            .http
            .post(srv.url("/webauthn/login/start"))
            .header("x-forwarded-for", "203.0.113.5")
            .json(&serde_json::json!({"csrf": csrf}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(statuses[..20].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    // The same address cannot start an authorization either ...
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize_from = |address: &'static str| {
        http.get(authorize_url(&srv, &c, &[]))
            .header("x-forwarded-for", address)
            .send()
    };
    let r = authorize_from("203.0.113.5").await.unwrap();
    assert_eq!(r.status(), 429);
    // ... while everyone else signs in as usual.
    let r = authorize_from("198.51.100.7").await.unwrap();
    assert_eq!(r.status(), 303);
    // The budget is per five minutes.
    srv.clock.advance(chrono::Duration::minutes(5));
    let r = authorize_from("203.0.113.5").await.unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_user_s_ceremonies_count_against_the_budget_too() {
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.login.max_starts_per_ip = 5;
    let srv = TestServer::start_with(env).await;
    srv.user("alice").await;
    let b = srv.browser();
    assert_eq!(b.login("alice", PASSWORD).await.status, 303);
    let csrf = b.get("/account/security").await.csrf();
    let mut statuses = Vec::new();
    for path in ["/webauthn/register/start", "/webauthn/verify/start"] {
        for _ in 0..4 {
            let (s, _) = b.post_json(path, &serde_json::json!({"csrf": csrf})).await;
            statuses.push(s);
        }
    }
    // Five starts in five minutes, whatever the ceremony (the fifth, a
    // passkey check for a user without a passkey, is refused on its own
    // merits); beyond the bound, 429.
    assert_eq!(&statuses[..4], &[200, 200, 200, 200], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
}

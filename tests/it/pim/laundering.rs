//! Risk that cannot be laundered: withdrawing a high-risk request and asking
//! again does not make its network "seen", and a withdrawn request that
//! needed approval for its risk keeps forcing approval for the cool-down.

use super::*;
use crate::common::{Backend, TestEnv, TestServer, backends};
use chrono::Duration;
use portcullis::service::directory::NewUser;

const HOME: &str = "192.0.2.10";
const CAFE: &str = "198.51.100.7";

/// Signs `name` in from `ip` (through the trusted proxy).
async fn login_from(b: &Browser, name: &str, ip: &str) {
    let form = b
        .http
        .get(api(b, "/login"))
        .header("X-Forwarded-For", ip)
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let html = form.text().await.unwrap();
    let csrf = crate::common::field_value(&html, "csrf").unwrap();
    let r = b
        .http
        .post(api(b, "/login"))
        .header("X-Forwarded-For", ip)
        .form(&[("username", name), ("password", PASSWORD), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

/// A server behind a proxy on loopback, so each request may say its address.
async fn proxied(backend: Backend) -> TestServer {
    let mut env = TestEnv::new(backend);
    env.settings.trusted_proxies =
        vec!["127.0.0.1/32".parse().unwrap(), "::1/128".parse().unwrap()];
    TestServer::start_with(env).await
}

/// gus's history: a sign-in from home; then, twelve hours later, a browser
/// signed in from a café.
async fn home_then_cafe(srv: &TestServer) -> Browser {
    login_from(&srv.browser(), "gus", HOME).await;
    srv.clock.advance(Duration::hours(12));
    let cafe = srv.browser();
    login_from(&cafe, "gus", CAFE).await;
    cafe
}

fn factors(q: &Value) -> String {
    q["risk_factors"].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawing_and_asking_again_launders_no_risk() {
    for backend in backends() {
        // Monday 10:00 UTC.
        let srv = proxied(backend).await;
        signed_in(&srv, "bob").await;
        srv.services
            .create_user(
                &Actor::cli(),
                NewUser {
                    username: "gus".into(),
                    password: Some(PASSWORD.into()),
                    manager: Some("bob".into()),
                    ..NewUser::default()
                },
            )
            .await
            .unwrap();
        privileged_role(&srv, open_policy(), "gus").await;
        // Monday 22:00, from a café: off hours, a new network, first request.
        let cafe = home_then_cafe(&srv).await;
        let (st, q) = request(&cafe, 30, Some(CAFE)).await;
        assert_eq!(st, 201, "{q}");
        assert_eq!(
            (q["state"].as_str(), q["risk_score"].as_i64()),
            (Some("pending"), Some(75))
        );
        assert_eq!(end_elevation(&cafe, &q["id"]).await.0, 200);

        // Asking again: the withdrawn request did not make the café known.
        let (st, again) = request(&cafe, 30, Some(CAFE)).await;
        assert_eq!(st, 201, "{again}");
        assert_eq!(again["state"], "pending", "{backend:?}: {again}");
        assert_eq!(again["risk_score"], 75, "{again}");
        assert!(factors(&again).contains("a network not seen before"));
        assert_eq!(end_elevation(&cafe, &again["id"]).await.0, 200);

        // Tuesday 10:00, a new sign-in from the café: the evening's sign-in
        // is history now and the hours are fine, but the cool-down holds.
        srv.clock.advance(Duration::hours(12));
        let morning = srv.browser();
        login_from(&morning, "gus", CAFE).await;
        let (st, q) = request(&morning, 30, Some(CAFE)).await;
        assert_eq!(st, 201, "{q}");
        assert_eq!(q["risk_score"], 20, "{q}");
        assert_eq!(q["state"], "pending", "{backend:?}: {q}");
        assert_eq!(q["approval"], "manager");
        assert!(factors(&q).contains("cool-down"), "{q}");
        assert_eq!(end_elevation(&morning, &q["id"]).await.0, 200);

        // Tuesday 23:00: the cool-down is over; 45 activates on its own.
        srv.clock.advance(Duration::hours(13));
        let late = srv.browser();
        login_from(&late, "gus", CAFE).await;
        let (st, q) = request(&late, 30, Some(CAFE)).await;
        assert_eq!(st, 201, "{q}");
        assert_eq!(
            (q["state"].as_str(), q["risk_score"].as_i64()),
            (Some("active"), Some(45)),
            "{q}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_judged_by_the_sign_in_it_was_granted_in() {
    for backend in backends() {
        let srv = proxied(backend).await;
        srv.user("gus").await;
        srv.user("bob").await;
        srv.services
            .create_group(&Actor::cli(), "pim-approvers", "")
            .await
            .unwrap();
        srv.services
            .set_membership(&Actor::cli(), "pim-approvers", "bob", true)
            .await
            .unwrap();
        privileged_role(&srv, open_policy(), "gus").await;
        // Monday 22:00: a token granted in a sign-in from the café.
        let cafe = home_then_cafe(&srv).await;
        let c = rp_client(&srv).await;
        // (For offline use: a grant for online use would end with its session.)
        let t = tokens_from(&srv, &cafe, &c, "openid pim offline_access", Some(CAFE)).await;
        let at = t["access_token"].as_str().unwrap().to_string();
        // That browser session ends; another sign-in from the café follows.
        let store = srv.services.store.clone();
        tokio::task::spawn_blocking(move || {
            store.tx(|r| {
                let gus = r
                    .user_by_username(&portcullis::domain::Username::parse("gus").unwrap())?
                    .unwrap();
                r.delete_sessions_of(&gus.id)
            })
        })
        .await
        .unwrap()
        .unwrap();
        srv.clock.advance(Duration::minutes(1));
        login_from(&srv.browser(), "gus", CAFE).await;

        let r = reqwest::Client::new()
            .post(srv.url("/api/v1/me/elevations"))
            .bearer_auth(&at)
            .header("X-Forwarded-For", CAFE)
            .json(&json!({"role": ROLE, "duration_seconds": 1800,
                          "reason": "month-end billing run"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let q: Value = r.json().await.unwrap();
        assert_eq!(q["state"], "pending", "{backend:?}: {q}");
        assert!(factors(&q).contains("a network not seen before"), "{q}");
    }
}

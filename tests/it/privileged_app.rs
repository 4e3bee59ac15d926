//! A privileged client (`--require-role`) stays gated after sign-in: every
//! refresh passes the gate again, and its grant ends with the window that
//! admitted it, for good.

use crate::common::{Browser, TestServer, backends};
use crate::pim::{ROLE, claims, open_policy, privileged_role, refresh, request, signed_in, tokens};
use chrono::Duration;
use portcullis::service::Actor;
use portcullis::service::oidc::clients::{ClientOptions, NewClient};
use serde_json::{Value, json};

async fn gated_client(srv: &TestServer) -> NewClient {
    let opts = ClientOptions {
        consent_required: false,
        required_role: Some(ROLE.into()),
        ..Default::default()
    };
    srv.services
        .create_client(&Actor::cli(), crate::oidc::draft("ledger"), opts)
        .await
        .unwrap()
}

/// A new active window of [`ROLE`] for `minutes`; its ID.
async fn window(b: &Browser, minutes: i64) -> String {
    let (st, q) = request(b, minutes, None).await;
    assert_eq!((st, q["state"].as_str()), (201, Some("active")), "{q}");
    q["id"].as_str().unwrap().to_string()
}

fn rt(t: &Value) -> String {
    t["refresh_token"].as_str().unwrap().to_string()
}

fn assert_invalid_grant((st, v): (u16, Value), why: &str) {
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{why}: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_privileged_apps_grant_ends_with_its_window() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let b = signed_in(&srv, "ada").await;
        privileged_role(&srv, open_policy(), "ada").await;
        let c = gated_client(&srv).await;
        let start = srv.clock_now();

        window(&b, 60).await;
        let t = tokens(&srv, &b, &c, "openid offline_access").await;

        // One second before the end a refresh works, and nothing outlives the window.
        srv.clock
            .advance(Duration::minutes(60) - Duration::seconds(1));
        let (st, t2) = refresh(&srv, &c, &rt(&t)).await;
        assert_eq!(st, 200, "{backend:?}: {t2}");
        let exp = claims(t2["access_token"].as_str().unwrap())["exp"]
            .as_i64()
            .unwrap();
        assert_eq!(exp, start + 3600);

        // One second after, the grant is over ...
        srv.clock.advance(Duration::seconds(2));
        assert_invalid_grant(refresh(&srv, &c, &rt(&t2)).await, "after the window");
        // ... and a new window does not revive it.
        let q2 = window(&b, 60).await;
        assert_invalid_grant(refresh(&srv, &c, &rt(&t2)).await, "in a later window");

        // A window ended early takes its grants along, even when another
        // window opens before the client comes back.
        let t3 = tokens(&srv, &b, &c, "openid offline_access").await;
        assert_eq!(crate::pim::end_elevation(&b, &json!(q2)).await.0, 200);
        window(&b, 60).await;
        assert_invalid_grant(refresh(&srv, &c, &rt(&t3)).await, "after an early end");
    }
}

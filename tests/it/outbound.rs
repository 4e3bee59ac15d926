//! Registration cannot aim the server at internal hosts: a self-registered
//! client's back-channel logout URL must be https to a public address, at
//! registration and again at send time; an administrator's may be loopback.

use crate::common::{Browser, TestServer, backends};
use crate::oidc::{client, draft};
use crate::pim::{Receiver, tokens};
use portcullis::service::oidc::clients::NewClient;
use serde_json::{Value, json};

const INTERNAL: [&str; 6] = [
    "http://127.0.0.1:8080/internal/logout",
    "https://127.0.0.1/internal/logout",
    "https://localhost:8443/internal/logout",
    "https://[::ffff:127.0.0.1]/internal/logout",
    "https://10.0.0.7/internal/logout",
    "https://169.254.169.254/latest/meta-data",
];

/// A dynamic registration (RFC 7591) with an initial access token.
pub(crate) async fn post_register(srv: &TestServer, token: &str, meta: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(srv.url("/register"))
        .bearer_auth(token)
        .json(meta)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

fn meta(bcl: &str) -> Value {
    json!({"client_name": "Dyn", "redirect_uris": ["https://dyn.example/cb"],
        "backchannel_logout_uri": bcl})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_refuses_urls_that_point_inside() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let token = crate::attack::registration::registration_token(&srv, 20).await;
        for bad in INTERNAL {
            let (st, v) = post_register(&srv, &token, &meta(bad)).await;
            assert_eq!(st, 400, "{bad} {backend:?}");
            assert_eq!(v["error"], "invalid_client_metadata", "{bad}: {v}");
        }
        let (st, reg) = post_register(&srv, &token, &meta("https://dyn.example/logout")).await;
        assert_eq!(st, 201, "{reg}");
        let id = reg["client_id"].as_str().unwrap();
        let stored = srv.services.need_client(id).await.unwrap();
        assert!(stored.registered_dynamically);

        // Nor can the client move it inside later (RFC 7592 update).
        let r = reqwest::Client::new()
            .put(reg["registration_client_uri"].as_str().unwrap())
            .bearer_auth(reg["registration_access_token"].as_str().unwrap())
            .json(&meta(INTERNAL[0]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_client_metadata");

        // An administrator's client may use loopback.
        let mut d = draft("local");
        d.backchannel_logout_uri = Some(INTERNAL[0].into());
        let c = client(&srv, d).await;
        assert!(!c.client.registered_dynamically);
    }
}

/// A client an administrator added, then stored as self-registered with
/// `bcl`: what a record registered before these checks, or whose name now
/// resolves inside, looks like at send time.
async fn self_registered(srv: &TestServer, name: &str, bcl: &str) -> NewClient {
    let mut c = client(srv, draft(name)).await;
    c.client.registered_dynamically = true;
    c.client.backchannel_logout_uri = Some(bcl.into());
    let stored = c.client.clone();
    srv.services
        .store
        .tx(move |r| r.update_client(&stored))
        .unwrap();
    c
}

async fn sign_out(b: &Browser) {
    let page = b.get("/account").await;
    let r = b.post("/logout", &[("csrf", &page.csrf())]).await;
    assert_eq!(r.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_refuses_internal_addresses_of_self_registered_clients() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let rx = Receiver::start(0).await;
        let port = rx.base.rsplit(':').next().unwrap().to_string();
        // The attack as reported, and a name that resolves to loopback.
        let by_address = self_registered(
            &srv,
            "by-address",
            &format!("http://127.0.0.1:{port}/internal/address"),
        )
        .await;
        let by_name = self_registered(
            &srv,
            "by-name",
            &format!("https://localhost:{port}/internal/name"),
        )
        .await;
        let mut d = draft("admin's");
        d.backchannel_logout_uri = Some(format!("{}/admin", rx.base));
        let admins = client(&srv, d).await;

        srv.user("ada").await;
        let b = srv.browser();
        assert_eq!(b.login("ada", crate::common::PASSWORD).await.status, 303);
        for c in [&by_address, &by_name, &admins] {
            tokens(&srv, &b, c, "openid").await;
        }
        sign_out(&b).await;

        // A running server delivers the outbox: the administrator's client
        // is told, the other two refused (and audited) at send time.
        rx.wait_for(|x| x.path == "/admin").await;
        let mut refused: Vec<String> = Vec::new();
        for _ in 0..200 {
            refused = srv
                .services
                .recent_audit(100)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.entry.action == "oidc.backchannel_refused")
                .map(|e| e.entry.subject)
                .collect();
            refused.sort();
            refused.dedup();
            if refused.len() >= 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(refused.len(), 2, "{backend:?}");
        assert!(refused.contains(&by_address.client.client_id));
        assert!(refused.contains(&by_name.client.client_id));
        let seen = rx.seen.lock().unwrap();
        assert!(
            seen.iter().all(|x| !x.path.starts_with("/internal")),
            "{seen:?}"
        );
    }
}

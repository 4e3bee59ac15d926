//! Keys, registration, logout and the `client` CLI.

use super::flow::{decode_header, decode_payload};
use super::{VERIFIER, authorize_url, client, draft, jwks, param, redeem};
use crate::common::{Backend, PASSWORD, TestServer};
use portcullis::crypto::jws;
use portcullis::domain::SigningAlg;
use portcullis::service::Actor;
use portcullis::service::oidc::clients::NewClient;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

async fn tokens_for(srv: &TestServer, c: &NewClient, user: &str) -> Value {
    let back = super::authorize_as(
        &srv.browser(),
        &authorize_url(srv, c, &[("nonce", ""), ("state", "")]),
        user,
    )
    .await;
    redeem(srv, c, &param(&back, "code").unwrap(), VERIFIER)
        .await
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_jwks_describe_what_is_supported() {
    let srv = TestServer::start(Backend::Embedded).await;
    let r = reqwest::get(srv.url("/.well-known/openid-configuration"))
        .await
        .unwrap();
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["issuer"], srv.base.as_str());
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    let oauth: Value = reqwest::get(srv.url("/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(oauth, m);
    let keys = jwks(&srv).await;
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    assert!(
        keys.iter().all(|k| k.get("d").is_none()),
        "public keys only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_publishes_first_and_keeps_old_keys_until_their_tokens_expire() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("erin").await;
    let c = client(&srv, draft("rot")).await;
    let before = tokens_for(&srv, &c, "erin").await;
    let old_kid = decode_header(before["id_token"].as_str().unwrap())["kid"]
        .as_str()
        .unwrap()
        .to_string();

    let created = srv
        .services
        .rotate_keys(&Actor::cli(), false)
        .await
        .unwrap();
    let new_rs = created
        .iter()
        .find(|k| k.alg == SigningAlg::RS256)
        .unwrap()
        .kid
        .clone();
    let keys = jwks(&srv).await;
    assert_eq!(keys.len(), 6, "new keys are published at once");
    // ...but do not sign until keys.publish_ahead has passed.
    let still = tokens_for(&srv, &c, "erin").await;
    assert_eq!(
        decode_header(still["id_token"].as_str().unwrap())["kid"],
        old_kid.as_str()
    );

    srv.clock.advance(chrono::Duration::hours(1));
    let after = tokens_for(&srv, &c, "erin").await;
    assert_eq!(
        decode_header(after["id_token"].as_str().unwrap())["kid"],
        new_rs.as_str()
    );
    // The token signed before rotation still verifies against the JWKS.
    let keys = jwks(&srv).await;
    assert!(
        jws::verify(
            before["id_token"].as_str().unwrap(),
            &keys,
            &SigningAlg::ALL
        )
        .is_ok()
    );
    let intro: Value = reqwest::Client::new()
        .post(srv.url("/introspect"))
        .basic_auth(&c.client.client_id, c.secret.as_deref())
        .form(&[("token", after["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intro["active"], true);

    // Once every token the old key signed has expired, it leaves the JWKS.
    srv.clock
        .advance(chrono::Duration::hours(1) + chrono::Duration::seconds(1));
    let keys = jwks(&srv).await;
    assert!(
        keys.iter().all(|k| k["kid"] != old_kid.as_str()),
        "retired key unpublished"
    );
    assert_eq!(keys.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_registration_round_trip_and_refusals() {
    let srv = TestServer::start(Backend::Embedded).await;
    let http = reqwest::Client::new();
    let meta = json!({"client_name": "Dyn", "redirect_uris": ["https://dyn.example/cb"], "grant_types": ["authorization_code", "refresh_token"]});
    let r = http
        .post(srv.url("/register"))
        .json(&meta)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "an initial access token is required");
    let token = srv
        .services
        .create_registration_token(&Actor::cli(), chrono::Duration::hours(1), 2)
        .await
        .unwrap();

    for (bad, code) in [
        (
            json!({"redirect_uris": ["http://dyn.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://dyn.example/cb"], "id_token_signed_response_alg": "none"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://dyn.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://dyn.example/cb"], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
    ] {
        let r = http
            .post(srv.url("/register"))
            .bearer_auth(&token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], code, "{bad}");
    }

    let r = http
        .post(srv.url("/register"))
        .bearer_auth(&token)
        .json(&meta)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let reg: Value = r.json().await.unwrap();
    let id = reg["client_id"].as_str().unwrap().to_string();
    assert!(reg["client_secret"].as_str().unwrap().len() >= 43);
    let rat = reg["registration_access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = reg["registration_client_uri"].as_str().unwrap().to_string();
    assert_eq!(uri, srv.url(&format!("/register/{id}")));

    let read: Value = http
        .get(&uri)
        .bearer_auth(&rat)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["client_name"], "Dyn");
    assert!(
        read.get("client_secret").is_none(),
        "the secret is never shown again"
    );
    assert_eq!(
        http.get(&uri)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let mut changed = meta.clone();
    changed["client_id"] = json!(id);
    changed["client_name"] = json!("Dyn 2");
    let upd = http
        .put(&uri)
        .bearer_auth(&rat)
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(upd.status(), 200);
    assert_eq!(upd.json::<Value>().await.unwrap()["client_name"], "Dyn 2");

    assert_eq!(
        http.delete(&uri)
            .bearer_auth(&rat)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(srv.services.client(&id).await.unwrap().is_none());

    // Uses run out.
    let r = http
        .post(srv.url("/register"))
        .bearer_auth(&token)
        .json(&meta)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "second use");
    let r = http
        .post(srv.url("/register"))
        .bearer_auth(&token)
        .json(&meta)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "used up");
}

/// Collects back-channel logout tokens POSTed to it.
async fn receiver() -> (
    String,
    Arc<Mutex<Vec<String>>>,
    actix_web::dev::ServerHandle,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let server = actix_web::HttpServer::new(move || {
        let s = s.clone();
        actix_web::App::new().route(
            "/bcl",
            actix_web::web::post().to(
                move |form: actix_web::web::Form<std::collections::HashMap<String, String>>| {
                    let s = s.clone();
                    async move {
                        s.lock()
                            .unwrap()
                            .push(form.get("logout_token").cloned().unwrap_or_default());
                        actix_web::HttpResponse::Ok().finish()
                    }
                },
            ),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (
        format!("http://localhost:{}/bcl", addr.port()),
        seen,
        handle,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_and_tells_clients_by_back_channel() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("fay").await;
    let (bcl, seen, handle) = receiver().await;
    let mut d = draft("bcl");
    d.backchannel_logout_uri = Some(bcl);
    d.id_token_alg = SigningAlg::ES256;
    let c = client(&srv, d).await;
    let b = srv.browser();
    b.login("fay", PASSWORD).await;
    let url = authorize_url(&srv, &c, &[("scope", "openid")]);
    let code = param(&b.get_url(&url).await.location.unwrap(), "code").unwrap();
    let t = redeem(&srv, &c, &code, VERIFIER).await.1;
    let id_token = t["id_token"].as_str().unwrap();
    let sid = decode_payload(id_token)["sid"]
        .as_str()
        .unwrap()
        .to_string();

    // An unregistered post-logout redirect is refused with a page.
    let bad = portcullis::protocol::oidc::uri::with_query(
        &srv.url("/end-session"),
        &[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ],
    );
    let page = b.get_url(&bad).await;
    assert_eq!(page.status, 400);
    assert!(page.location.is_none());
    assert_eq!(b.get("/account").await.status, 200, "still signed in");

    let good = portcullis::protocol::oidc::uri::with_query(
        &srv.url("/end-session"),
        &[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", "http://localhost:9999/bye"),
            ("state", "s1"),
        ],
    );
    let page = b.get_url(&good).await;
    assert_eq!(
        page.location.as_deref(),
        Some("http://localhost:9999/bye?state=s1")
    );
    assert_eq!(b.get("/account").await.status, 303, "signed out");

    let mut token = None;
    for _ in 0..100 {
        if let Some(t) = seen.lock().unwrap().first().cloned() {
            token = Some(t);
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let token = token.expect("a back-channel logout token arrived");
    let keys = jwks(&srv).await;
    let claims = jws::verify(&token, &keys, &[SigningAlg::ES256])
        .expect("signed with the client's algorithm");
    assert_eq!(decode_header(&token)["typ"], "logout+jwt");
    assert_eq!(claims["aud"], c.client.client_id.as_str());
    assert_eq!(claims["sid"], sid.as_str());
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());
    handle.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_session_without_a_hint_asks_first() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("gus").await;
    let c = client(&srv, draft("ask")).await;
    let b = srv.browser();
    b.login("gus", PASSWORD).await;
    let url = portcullis::protocol::oidc::uri::with_query(
        &srv.url("/end-session"),
        &[
            ("client_id", c.client.client_id.as_str()),
            ("post_logout_redirect_uri", "http://localhost:9999/bye"),
        ],
    );
    let page = b.get_url(&url).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("ask asks to sign you out"),
        "{}",
        page.body
    );
    assert_eq!(b.get("/account").await.status, 200, "nothing happened yet");
    let id = crate::common::field_value(&page.body, "id").unwrap();
    let done = b
        .post(
            "/end-session/confirm",
            &[("csrf", &page.csrf()), ("id", &id)],
        )
        .await;
    assert_eq!(done.location.as_deref(), Some("http://localhost:9999/bye"));
    assert_eq!(b.get("/account").await.status, 303);
}

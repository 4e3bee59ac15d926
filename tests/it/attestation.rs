//! Authenticator models admitted by attestation: an AAGUID on
//! `webauthn.allowed_aaguids` counts only when the authenticator's
//! attestation chains to a CA from `webauthn.attestation_ca_files`.
//!
//! webauthn-rs' soft token makes its own root CA and attests with a
//! certificate under it (AAGUID `softtoken::AAGUID`); the soft passkey
//! attests itself (no certificate) with an all-zero AAGUID.

use crate::common::{Backend, Browser, PASSWORD, TestEnv, TestServer};
use crate::passkey::{Key, register};
use base64::Engine;
use portcullis::config::AttestationPolicy;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use url::Url;
use uuid::Uuid;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softtoken::{AAGUID, SoftToken};
use webauthn_rs_proto::{CreationChallengeResponse, ResidentKeyRequirement};

/// A soft token and its root CA as a PEM file in `dir`.
fn token_with_ca(dir: &Path, name: &str) -> (SoftToken, PathBuf) {
    let (token, _) = SoftToken::new(true).unwrap();
    // The token serialises its CA certificate as base64url DER.
    let der = serde_json::to_value(&token).unwrap()["ca_cert"]
        .as_str()
        .map(|s| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap()
        })
        .unwrap();
    let pem = openssl::x509::X509::from_der(&der)
        .unwrap()
        .to_pem()
        .unwrap();
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    (token, path)
}

async fn start(cas: Vec<PathBuf>, allowed: Vec<Uuid>) -> (TestServer, Browser) {
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.webauthn.attestation = AttestationPolicy::Direct;
    env.settings.webauthn.attestation_ca_files = cas;
    env.settings.webauthn.allowed_aaguids = allowed;
    let srv = TestServer::start_with(env).await;
    srv.user("amy").await;
    let b = srv.browser();
    b.login("amy", PASSWORD).await;
    (srv, b)
}

/// Registers a passkey with the soft token over the JSON API.
async fn register_token(srv: &TestServer, b: &Browser, token: &mut SoftToken) -> (u16, Value) {
    let csrf = b.get("/account/security").await.csrf();
    let (st, c) = b
        .post_json(
            "/webauthn/register/start",
            &json!({"csrf": csrf, "kind": "passkey"}),
        )
        .await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["options"]["publicKey"]["attestation"], "direct");
    let mut ccr: CreationChallengeResponse = serde_json::from_value(c["options"].clone()).unwrap();
    // The soft token cannot keep resident keys (see passkey.rs).
    if let Some(s) = ccr.public_key.authenticator_selection.as_mut() {
        s.require_resident_key = false;
        s.resident_key = Some(ResidentKeyRequirement::Discouraged);
    }
    let cred = token
        .do_registration(Url::parse(&srv.base).unwrap(), ccr)
        .expect("soft token registers");
    b.post_json(
        "/webauthn/register/finish",
        &json!({"csrf": csrf, "ceremony": c["ceremony"], "name": "Token", "credential": cred}),
    )
    .await
}

async fn refusal(srv: &TestServer, st: u16, v: &Value) -> Value {
    assert_eq!(st, 403, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("not allowed here"),
        "{v}"
    );
    let user = srv.services.user_details("amy").await.unwrap().user;
    assert!(srv.services.passkeys(&user).await.unwrap().is_empty());
    let audit = srv.services.recent_audit(20).await.unwrap();
    audit
        .iter()
        .find(|e| e.entry.action == "passkey.refused_model")
        .expect("the refusal is audited")
        .entry
        .detail
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_model_registers_when_a_configured_ca_vouches_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut token, ca) = token_with_ca(dir.path(), "token-ca.pem");
    let (srv, b) = start(vec![ca], vec![AAGUID]).await;
    let (st, v) = register_token(&srv, &b, &mut token).await;
    assert_eq!(st, 200, "{v}");
    let user = srv.services.user_details("amy").await.unwrap().user;
    let keys = srv.services.passkeys(&user).await.unwrap();
    assert_eq!(keys.len(), 1);
    let audit = srv.services.recent_audit(20).await.unwrap();
    let reg = audit
        .iter()
        .find(|e| e.entry.action == "passkey.register")
        .unwrap();
    assert_eq!(reg.entry.detail["aaguid"], AAGUID.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_cas_and_no_list_any_model_they_vouch_for_registers_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (mut token, ca) = token_with_ca(dir.path(), "token-ca.pem");
    let (srv, b) = start(vec![ca], vec![]).await;
    let (st, v) = register_token(&srv, &b, &mut token).await;
    assert_eq!(st, 200, "{v}");
    let (srv, b) = start(vec![token_with_ca(dir.path(), "other.pem").1], vec![]).await;
    let mut key = Key::new(&srv);
    let (st, v) = register(&b, &mut key, "Soft", "passkey").await;
    refusal(&srv, st, &v).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_model_attested_under_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut token, _) = token_with_ca(dir.path(), "token-ca.pem");
    let (_, other_ca) = token_with_ca(dir.path(), "other-ca.pem");
    let (srv, b) = start(vec![other_ca], vec![AAGUID]).await;
    let (st, v) = register_token(&srv, &b, &mut token).await;
    let detail = refusal(&srv, st, &v).await;
    assert_eq!(detail["aaguid"], AAGUID.to_string());
    assert_eq!(detail["attestation"], "untrusted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_ca_vouches_only_for_listed_models() {
    let dir = tempfile::tempdir().unwrap();
    let (mut token, ca) = token_with_ca(dir.path(), "token-ca.pem");
    let (srv, b) = start(vec![ca], vec![Uuid::from_u128(7)]).await;
    let (st, v) = register_token(&srv, &b, &mut token).await;
    let detail = refusal(&srv, st, &v).await;
    assert_eq!(detail["aaguid"], AAGUID.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_attested_claim_of_a_listed_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ca) = token_with_ca(dir.path(), "token-ca.pem");
    // The soft passkey attests itself and claims the all-zero AAGUID; list
    // exactly that model.
    let (srv, b) = start(vec![ca], vec![Uuid::nil()]).await;
    let mut key = Key::new(&srv);
    let (st, v) = register(&b, &mut key, "Soft", "passkey").await;
    let detail = refusal(&srv, st, &v).await;
    assert_eq!(detail["aaguid"], Uuid::nil().to_string());
    assert_eq!(detail["attestation"], "untrusted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_ca_files_stop_the_start_with_one_line_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    for (file, expect) in [
        (dir.path().join("missing.pem"), "cannot read"),
        (not_pem, "holds no PEM certificate"),
    ] {
        let mut env = TestEnv::new(Backend::Embedded);
        env.settings.webauthn.attestation = AttestationPolicy::Direct;
        env.settings.webauthn.attestation_ca_files = vec![file];
        env.settings.webauthn.allowed_aaguids = vec![AAGUID];
        let Err(e) = portcullis::build_app(env.settings.clone()).await else {
            panic!("started with an unusable CA file");
        };
        let msg = e.public();
        assert!(
            msg.starts_with("configuration key `webauthn.attestation_ca_files`:"),
            "{msg}"
        );
        assert!(msg.contains(expect), "{msg}");
        assert_eq!(msg.lines().count(), 1, "{msg}");
    }
}

#[test]
fn an_allow_list_without_cas_is_refused_at_start_naming_both_settings() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::cli::write_config(
        dir.path(),
        "[webauthn]\nattestation = \"direct\"\nallowed_aaguids = [\"0fb9bcbc-a0d4-4042-bbb0-559bc1631e28\"]\n",
    );
    let (code, err) = crate::cli::failure(&crate::cli::portcullis(&config, &["serve"], None));
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("webauthn.allowed_aaguids"), "{err}");
    assert!(err.contains("webauthn.attestation_ca_files"), "{err}");
}

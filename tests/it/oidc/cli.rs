//! The `client` and `keys` commands against a running server.

use super::{REDIRECT, VERIFIER, authorize_url, jwks, param};
use crate::common::{Backend, PASSWORD, TestServer};
use portcullis::service::oidc::clients::NewClient;
use serde_json::{Value, json};

fn run_cli(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_cli_round_trip_and_a_post_authenticated_client() {
    let env = crate::common::TestEnv::new(Backend::Embedded);
    let db = env.settings.database.url.expose().to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("p.toml");
    std::fs::write(&config, format!("[database]\nurl = \"{db}\"\n")).unwrap();
    let srv = TestServer::start_with(env).await;
    srv.user("hal").await;

    let (ok, out, err) = run_cli(
        &config,
        &[
            "client",
            "add",
            "--name",
            "Wiki",
            "--redirect-uri",
            REDIRECT,
            "--redirect-uri",
            "http://localhost:9999/cb2",
            "--auth-method",
            "client_secret_post",
            "--grant-types",
            "authorization_code,refresh_token",
            "--scopes",
            "openid email",
            "--first-party",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let id = v["client_id"].as_str().unwrap().to_string();
    let secret = v["client_secret"].as_str().unwrap().to_string();
    assert_eq!(
        v["redirect_uris"],
        json!([REDIRECT, "http://localhost:9999/cb2"])
    );
    assert_eq!(v["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(v["require_pkce"], true);

    // The running server uses it: client_secret_post at the token endpoint.
    let b = srv.browser();
    b.login("hal", PASSWORD).await;
    let created = srv.services.need_client(&id).await.unwrap();
    let as_new = NewClient {
        client: created,
        secret: None,
        registration_token: None,
    };
    let url = authorize_url(&srv, &as_new, &[("scope", "openid email")]);
    let code = param(&b.get_url(&url).await.location.unwrap(), "code").unwrap();
    let t: Value = reqwest::Client::new()
        .post(srv.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = t["access_token"].as_str().expect("tokens").to_string();
    assert!(
        t.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    // Userinfo by POST with the token in the form body.
    let ui: Value = reqwest::Client::new()
        .post(srv.url("/userinfo"))
        .form(&[("access_token", at.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ui["email"], "hal@example.test");

    let (ok, out, _) = run_cli(&config, &["client", "show", &id, "--json"]);
    assert!(ok);
    assert!(
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .get("client_secret")
            .is_none()
    );
    let (ok, out, _) = run_cli(&config, &["client", "list", "--json"]);
    assert!(ok && out.contains(&id));
    let (ok, out, _) = run_cli(&config, &["client", "rotate-secret", &id, "--json"]);
    assert!(ok);
    let new_secret = serde_json::from_str::<Value>(&out).unwrap()["client_secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_secret, secret);
    let r = reqwest::Client::new()
        .post(srv.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the old secret is dead");

    let (ok, out, _) = run_cli(
        &config,
        &["client", "registration-token", "--ttl", "10m", "--json"],
    );
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["expires_in"],
        600
    );

    let (ok, _, err) = run_cli(
        &config,
        &[
            "client",
            "add",
            "--name",
            "Bad",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
    );
    assert!(!ok);
    assert!(err.contains("must use https"), "{err}");
    let (ok, _, err) = run_cli(
        &config,
        &[
            "client",
            "add",
            "--name",
            "Bad",
            "--redirect-uri",
            REDIRECT,
            "--id-token-alg",
            "HS256",
        ],
    );
    assert!(!ok && err.contains("HS256"), "{err}");

    let (ok, out, _) = run_cli(&config, &["keys", "rotate"]);
    assert!(ok, "{out}");
    assert_eq!(
        out.lines().count(),
        4,
        "three JWS keys and the SAML certificate: {out}"
    );
    let (ok, out, _) = run_cli(&config, &["keys", "list", "--json"]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        6
    );
    // The server sees keys rotated by the CLI once it reloads.
    srv.services.reload_keys().await.unwrap();
    assert_eq!(jwks(&srv).await.len(), 6);

    let (ok, _, _) = run_cli(&config, &["client", "remove", &id]);
    assert!(ok);
    let (ok, _, err) = run_cli(&config, &["client", "show", &id]);
    assert!(!ok && err.contains("no client"), "{err}");
    let (ok, out, _) = run_cli(&config, &["keys", "generate-secret"]);
    assert!(ok);
    assert!(portcullis::crypto::seal::Sealer::from_base64(out.trim()).is_ok());
}

//! The `client` and `keys` commands against a running server.

use super::access_alg::{assert_signed_with, discovered_jwks};
use super::rules::introspect;
use super::{REDIRECT, VERIFIER, authorize_url, jwks, param, post_token};
use crate::cli::run_cli;
use crate::common::{Backend, PASSWORD, TestServer};
use portcullis::domain::SigningAlg;
use portcullis::service::oidc::clients::NewClient;
use serde_json::{Value, json};

/// A server, and a config file pointing the CLI at its database (kept
/// while the directory lives).
async fn server_and_config() -> (TestServer, tempfile::TempDir, std::path::PathBuf) {
    let env = crate::common::TestEnv::new(Backend::Embedded);
    let dir = tempfile::tempdir().unwrap();
    let config = crate::cli::config_for(dir.path(), &env);
    (TestServer::start_with(env).await, dir, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_cli_round_trip_and_a_post_authenticated_client() {
    let (srv, _dir, config) = server_and_config().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_cli_sets_and_changes_the_access_token_algorithm() {
    let (srv, _dir, config) = server_and_config().await;
    let keys = discovered_jwks(&srv).await;
    let listed = |config: &std::path::Path| {
        let (ok, out, err) = run_cli(config, &["client", "list", "--json"]);
        assert!(ok, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };

    // The default stays RS256, and the JSON says so.
    let add = |extra: &[&str]| {
        let mut args = vec![
            "client",
            "add",
            "--name",
            "Batch",
            "--redirect-uri",
            REDIRECT,
            "--grant-types",
            "client_credentials",
            "--json",
        ];
        args.extend_from_slice(extra);
        run_cli(&config, &args)
    };
    let (ok, out, err) = add(&[]);
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["access_token_alg"],
        "RS256"
    );

    // A bad value is refused, naming the allowed ones, and adds nothing.
    let before = listed(&config);
    for bad in ["HS256", "none", "es256"] {
        let (ok, _, err) = add(&["--access-token-alg", bad]);
        assert!(!ok, "{bad} accepted");
        assert!(
            err.contains(bad) && err.contains("RS256, ES256 or EdDSA"),
            "{err}"
        );
    }
    assert_eq!(listed(&config), before, "nothing was added");

    let (ok, out, err) = add(&["--access-token-alg", "ES256"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["access_token_alg"], "ES256");
    let id = v["client_id"].as_str().unwrap().to_string();
    let c = NewClient {
        client: srv.services.need_client(&id).await.unwrap(),
        secret: v["client_secret"].as_str().map(str::to_string),
        registration_token: None,
    };
    let cc = [("grant_type", "client_credentials")];
    let token = |c: &NewClient| {
        let c = c.clone();
        let srv = &srv;
        async move {
            let (st, t, _) = post_token(srv, &c, &cc).await;
            assert_eq!(st, 200, "{t}");
            t["access_token"].as_str().unwrap().to_string()
        }
    };
    let es = token(&c).await;
    assert_signed_with(&es, SigningAlg::ES256, &keys);

    // A bad update is refused and changes nothing.
    for (args, says) in [
        (
            &["client", "update", &id, "--access-token-alg", "RS512"][..],
            "unknown --access-token-alg RS512; use RS256, ES256 or EdDSA",
        ),
        (&["client", "update", &id][..], "nothing to change"),
    ] {
        let (ok, _, err) = run_cli(&config, args);
        assert!(!ok && err.contains(says), "{args:?}: {err}");
    }
    let (ok, out, _) = run_cli(&config, &["client", "show", &id, "--json"]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["access_token_alg"],
        "ES256"
    );
    assert_signed_with(&token(&c).await, SigningAlg::ES256, &keys);

    // The update takes effect for the next token; the earlier one lives on.
    let (ok, out, err) = run_cli(
        &config,
        &[
            "client",
            "update",
            &id,
            "--access-token-alg",
            "EdDSA",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["access_token_alg"], "EdDSA");
    assert!(v.get("client_secret").is_none());
    assert_eq!(v["grant_types"], json!(["client_credentials"]));
    let ed = token(&c).await;
    assert_signed_with(&ed, SigningAlg::EdDSA, &keys);
    for t in [&es, &ed] {
        assert_eq!(introspect(&srv, &c, t).await["active"], true);
    }
    let (ok, out, _) = run_cli(&config, &["client", "show", &id, "--json"]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["access_token_alg"],
        "EdDSA"
    );
}

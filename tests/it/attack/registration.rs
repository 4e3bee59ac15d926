//! Dynamic client registration, from the second outside review: redirect
//! URIs must be used exactly as registered, and a self-registered client may
//! not pass itself off as one the administrators added.

use crate::common::{Backend, PASSWORD, TestEnv, TestServer, backends};
use crate::oidc::{authorize_url, draft};
use crate::outbound::post_register as register;
use portcullis::service::Actor;
use portcullis::service::oidc::clients::{ClientOptions, NewClient};
use serde_json::{Value, json};

/// An initial access token for `uses` registrations within the hour.
pub(crate) async fn registration_token(srv: &TestServer, uses: i64) -> String {
    srv.services
        .create_registration_token(&Actor::cli(), chrono::Duration::hours(1), uses)
        .await
        .unwrap()
}

/// Redirect URIs the reviewer registered, each of which changed where or
/// how the browser would be sent.
const MALFORMED: [(&str, &str); 5] = [
    (
        "https://evil.example/cb\r\nSet-Cookie: x=1",
        "control characters",
    ),
    ("https://*.evil.example/cb", "wildcards"),
    (
        "https://evil.example/cb?a=1&code=FAKE&state=zz",
        "query parameter \"code\"",
    ),
    ("https://rp.example.com@evil.example/cb", "user name"),
    ("https://evil.example/c%62/../cb", "normal form"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_refuses_redirect_uris_that_would_not_be_used_as_written() {
    let srv = TestServer::start(Backend::Embedded).await;
    let token = registration_token(&srv, 20).await;
    for (bad, because) in MALFORMED {
        let (status, v) = register(
            &srv,
            &token,
            &json!({"client_name": "Evil", "redirect_uris": [bad]}),
        )
        .await;
        assert_eq!(status, 400, "{bad:?} was registered: {v}");
        assert_eq!(v["error"], "invalid_redirect_uri", "{bad:?}");
        let why = v["error_description"].as_str().unwrap();
        assert!(why.contains(because), "{bad:?}: {why}");

        // The same rule holds where users are sent after logout.
        let (status, v) = register(
            &srv,
            &token,
            &json!({
                "client_name": "Evil",
                "redirect_uris": ["https://evil.example/cb"],
                "post_logout_redirect_uris": [bad],
            }),
        )
        .await;
        assert_eq!(status, 400, "{bad:?} was registered: {v}");
        assert_eq!(v["error"], "invalid_client_metadata", "{bad:?}");
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("post_logout_redirect_uris"),
            "{v}"
        );
    }
    // Nothing was stored, and a URI in normal form still registers and
    // reads back exactly as sent.
    assert!(srv.services.list_clients().await.unwrap().is_empty());
    let good = "https://rp.example/cb?tenant=1";
    let (status, v) = register(
        &srv,
        &token,
        &json!({"client_name": "Fine", "redirect_uris": [good]}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["redirect_uris"], json!([good]));

    // An update (RFC 7592) cannot bring them in either.
    let uri = v["registration_client_uri"].as_str().unwrap();
    let rat = v["registration_access_token"].as_str().unwrap();
    for (bad, _) in MALFORMED {
        let r = reqwest::Client::new()
            .put(uri)
            .bearer_auth(rat)
            .json(&json!({"client_name": "Fine", "redirect_uris": [bad]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad:?}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            "invalid_redirect_uri"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_refuses_a_malformed_redirect_uri_in_one_line() {
    let env = TestEnv::new(Backend::Embedded);
    let dir = tempfile::tempdir().unwrap();
    let config = crate::cli::config_for(dir.path(), &env);
    let srv = TestServer::start_with(env).await;
    for (bad, because) in MALFORMED {
        for flag in ["--redirect-uri", "--post-logout-redirect-uri"] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
                .arg("--config")
                .arg(&config)
                .args(["client", "add", "--name", "Typo", "--redirect-uri"])
                .arg(if flag == "--redirect-uri" {
                    bad
                } else {
                    "https://rp.example/cb"
                })
                .args([flag, bad])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{flag} {bad:?} was accepted");
            assert!(err.contains(because), "{flag} {bad:?}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        }
    }
    assert!(srv.services.list_clients().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_registered_client_cannot_pose_as_a_trusted_one() {
    for backend in backends() {
        poses_as_a_trusted_one(TestServer::start(backend).await).await;
    }
}

async fn poses_as_a_trusted_one(srv: TestServer) {
    srv.user("alice").await;
    let trusted = srv
        .services
        .create_client(&Actor::cli(), draft("RP1"), ClientOptions::default())
        .await
        .unwrap();
    let token = registration_token(&srv, 5).await;
    for name in ["RP1", "rp1", "  Rp1 "] {
        let (status, v) = register(
            &srv,
            &token,
            &json!({"client_name": name, "redirect_uris": ["https://evil.example/cb"]}),
        )
        .await;
        assert_eq!(status, 400, "{name:?} was registered: {v}");
        assert_eq!(v["error"], "invalid_client_metadata");
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("client_name"),
            "{v}"
        );
    }
    // Under a name of its own it registers, but cannot rename itself later.
    let (status, v) = register(
        &srv,
        &token,
        &json!({"client_name": "Helpful App", "redirect_uris": ["https://evil.example/cb"]}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let id = v["client_id"].as_str().unwrap().to_string();
    let r = reqwest::Client::new()
        .put(v["registration_client_uri"].as_str().unwrap())
        .bearer_auth(v["registration_access_token"].as_str().unwrap())
        .json(&json!({"client_name": "rp1", "redirect_uris": ["https://evil.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "invalid_client_metadata"
    );
    assert_eq!(
        srv.services.need_client(&id).await.unwrap().name,
        "Helpful App"
    );

    // The consent page says where the user goes, and that nobody vouches
    // for a client that registered itself.
    let b = srv.browser();
    b.login("alice", PASSWORD).await;
    let dynamic = NewClient {
        client: srv.services.need_client(&id).await.unwrap(),
        secret: None,
        registration_token: None,
    };
    let page = b
        .get_url(&authorize_url(
            &srv,
            &dynamic,
            &[("redirect_uri", "https://evil.example/cb")],
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Helpful App wants to access"));
    assert!(
        page.body
            .contains("sent back to <strong class=\"destination\">evil.example</strong>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("registered itself"), "{}", page.body);
    assert!(page.body.contains("do not vouch for it"), "{}", page.body);

    let page = b.get_url(&authorize_url(&srv, &trusted, &[])).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("RP1 wants to access"));
    assert!(
        page.body
            .contains("sent back to <strong class=\"destination\">localhost:9999</strong>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("registered itself"), "{}", page.body);
}

/// A client name that would clear an administrator's terminal, forge a CLI
/// output line or reverse part of the consent page's text is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_names_with_control_or_direction_characters_are_refused() {
    let srv = TestServer::start(Backend::Embedded).await;
    let token = registration_token(&srv, 10).await;
    for name in [
        "EVIL\u{1b}[2J\u{1b}[31mX",
        "Wiki\nseq 99 admin user.disable",
        "Pay\u{202e}lorlyaP",
        "Wi\u{200b}ki",
    ] {
        let (status, v) = register(
            &srv,
            &token,
            &json!({"redirect_uris": ["https://app.example/cb"], "client_name": name}),
        )
        .await;
        assert_eq!(status, 400, "{name:?}: {v}");
        assert_eq!(v["error"], "invalid_client_metadata", "{v}");
    }
    let (status, v) = register(
        &srv,
        &token,
        &json!({"redirect_uris": ["https://app.example/cb"], "client_name": "Wiki (EU)"}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
}

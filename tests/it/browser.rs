//! A person in a real browser: headless Chromium with a CDP virtual
//! authenticator enrolls a passkey through the real pages, signs out, signs
//! back in with the passkey alone and completes an OIDC authorization for a
//! test client. Screenshots land in `target/tmp/browser-artifacts/`.

use crate::cdp::Browser;
use crate::common::{Backend, PASSWORD, TestServer};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(20);

/// The relying party's redirect endpoint: answers a small page and reports
/// the request line it got.
pub fn callback_server() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut line = String::new();
            let mut reader = BufReader::new(&stream);
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let _ = tx.send(line.trim().to_string());
            let body = "<!doctype html><title>Test app</title><h1>Back at the test app</h1>";
            let _ = (&stream).write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    (format!("http://localhost:{port}/cb"), rx)
}

pub fn presence(b: &mut Browser, authenticator: &str, enabled: bool) -> Result<(), String> {
    b.call(
        "WebAuthn.setAutomaticPresenceSimulation",
        serde_json::json!({ "authenticatorId": authenticator, "enabled": enabled }),
    )
    .map(drop)
}

pub fn artifacts() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-artifacts")
}

/// Password sign-in as `user`, then a passkey added on the security page
/// (the virtual authenticator must hold exactly that one credential after).
pub fn sign_in_and_enroll(
    b: &mut Browser,
    base: &str,
    user: &str,
    authenticator: &str,
    shot: &std::path::Path,
) -> Result<(), String> {
    b.goto(&format!("{base}/login"))?;
    b.fill("#username", user)?;
    b.fill("#password", PASSWORD)?;
    b.click("#sign-in")?;
    b.wait_for("location.pathname === '/account'", WAIT)?;
    b.goto(&format!("{base}/account/security"))?;
    b.wait_for("!document.getElementById('passkey-add-area').hidden", WAIT)?;
    b.fill("#passkey-name", "Chromium passkey")?;
    b.click("#passkey-add")?;
    b.wait_for("location.search.includes('added=1')", WAIT)?;
    b.screenshot(shot)?;
    let text = b.text()?;
    if !text.contains("The passkey was added.") {
        return Err(format!("no confirmation on the security page: {text}"));
    }
    let creds = b.credentials(authenticator)?;
    if creds.len() != 1 || creds[0]["isResidentCredential"] != true {
        return Err(format!("expected one resident credential, got {creds:?}"));
    }
    Ok(())
}

/// Everything the browser does, step by step; returns the authorization
/// code the test app received.
fn journey(base: &str, authorize: &str, callback: &str) -> Result<Option<String>, String> {
    let Some(mut b) = Browser::launch()? else {
        return Ok(None);
    };
    let shots = artifacts();
    let authenticator = b.add_virtual_authenticator()?;

    sign_in_and_enroll(
        &mut b,
        base,
        "bea",
        &authenticator,
        &shots.join("01-passkey-enrolled.png"),
    )?;

    // Sign out. The sign-in page offers passkeys in autofill (conditional
    // UI), and the virtual authenticator would pick one at once; a person
    // has to choose it, so the authenticator waits for now.
    presence(&mut b, &authenticator, false)?;
    b.goto(&format!("{base}/account"))?;
    b.click("form[action='/logout'] button")?;
    b.wait_for(
        "location.pathname === '/login' && location.search.includes('signed_out')",
        WAIT,
    )?;
    b.screenshot(&shots.join("02-signed-out.png"))?;
    if !b.text()?.contains("You have signed out.") {
        return Err("no signed-out notice".into());
    }

    // The app sends the browser to authorize; the sign-in page offers the
    // passkey (autofill may already use it, or the button does).
    b.goto(authorize)?;
    b.wait_for(
        "location.pathname !== '/login' || !document.getElementById('passkey-signin-area').hidden",
        WAIT,
    )?;
    b.screenshot(&shots.join("03-sign-in-page.png"))?;
    presence(&mut b, &authenticator, true)?;
    // The button aborts the pending autofill request and asks directly;
    // if autofill won the race the page has moved on already.
    b.eval("document.getElementById('passkey-signin')?.click()")?;
    b.wait_for(
        &format!(
            "location.href.startsWith('{callback}') || !!document.querySelector(\"button[value='allow']\")"
        ),
        WAIT,
    )?;
    if !b.url()?.starts_with(callback) {
        b.screenshot(&shots.join("04-consent.png"))?;
        b.click("button[value='allow']")?;
        b.wait_for(&format!("location.href.startsWith('{callback}')"), WAIT)?;
    }
    b.wait_for("document.readyState === 'complete'", WAIT)?;
    b.screenshot(&shots.join("05-back-at-the-app.png"))?;
    let url = b.url()?;
    Ok(crate::oidc::param(&url, "code"))
}

/// What the test app does once the browser journey is over: it sees the
/// browser arrive with a code and redeems it. Returns the ID token's claims,
/// or `None` (said as SKIPPED) when there is no Chromium here.
pub async fn app_redeems(
    srv: &TestServer,
    c: &portcullis::service::oidc::clients::NewClient,
    callback: &str,
    outcome: Result<Option<String>, String>,
    hits: &mpsc::Receiver<String>,
) -> Option<serde_json::Value> {
    let code = match outcome {
        Ok(Some(code)) => code,
        Ok(None) => {
            eprintln!(
                "SKIPPED browser test: no Chromium found (set PORTCULLIS_CHROMIUM or run `make test-setup`)"
            );
            return None;
        }
        Err(e) => panic!(
            "browser journey failed: {e}\nscreenshots: {}",
            artifacts().display()
        ),
    };
    let line = hits.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(line.starts_with("GET /cb?code="), "{line}");
    let (status, tokens, _) = crate::oidc::post_token(
        srv,
        c,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", callback),
            ("code_verifier", crate::oidc::VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    Some(crate::oidc::flow_payload(
        tokens["id_token"].as_str().unwrap(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_journey_in_headless_chromium() {
    let srv = TestServer::start_now(Backend::Embedded).await;
    srv.user("bea").await;
    let (callback, hits) = callback_server();
    let mut draft = crate::oidc::draft("Browser test app");
    draft.redirect_uris = vec![callback.clone()];
    let opts = portcullis::service::oidc::clients::ClientOptions {
        consent_required: true,
        ..Default::default()
    };
    let c = srv
        .services
        .create_client(&portcullis::service::Actor::cli(), draft, opts)
        .await
        .unwrap();
    let authorize = crate::oidc::authorize_url(
        &srv,
        &c,
        &[("redirect_uri", &callback), ("scope", "openid profile")],
    );
    let base = srv.base.clone();
    let cb = callback.clone();
    let outcome = tokio::task::spawn_blocking(move || journey(&base, &authorize, &cb))
        .await
        .unwrap();
    let Some(claims) = app_redeems(&srv, &c, &callback, outcome, &hits).await else {
        return;
    };
    assert_eq!(claims["acr"], "urn:portcullis:acr:phr", "{claims}");
    let amr: Vec<&str> = claims["amr"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(amr.contains(&"user") && amr.contains(&"mfa"), "{amr:?}");
    assert!(!amr.contains(&"pwd"), "no password this time: {amr:?}");
    eprintln!("browser screenshots: {}", artifacts().display());
}

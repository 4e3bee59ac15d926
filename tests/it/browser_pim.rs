//! Elevation as a person does it, in headless Chromium: a privileged app
//! refuses, "Request access" leads to the form, the policy asks for a fresh
//! passkey (the virtual authenticator answers), the window opens and the same
//! sign-in continues to the app, whose ID token carries the role.

use crate::browser::{WAIT, app_redeems, artifacts, callback_server, sign_in_and_enroll};
use crate::cdp::Browser;
use crate::common::{Backend, TestServer};
use crate::pim::{ROLE, privileged_role};
use portcullis::service::Actor;
use portcullis::service::oidc::clients::ClientOptions;
use portcullis::service::pim::PolicyInput;

fn journey(
    base: &str,
    authorize: &str,
    callback: &str,
    srv_clock: &dyn Fn(),
) -> Result<Option<String>, String> {
    let Some(mut b) = Browser::launch()? else {
        return Ok(None);
    };
    let shots = artifacts();
    let authenticator = b.add_virtual_authenticator()?;
    sign_in_and_enroll(
        &mut b,
        base,
        "ida",
        &authenticator,
        &shots.join("pim-01-enrolled.png"),
    )?;
    // Time passes: the passkey shown at enrollment is no longer fresh.
    srv_clock();

    b.goto(authorize)?;
    b.wait_for("!!document.getElementById('request-access')", WAIT)?;
    b.screenshot(&shots.join("pim-02-refused.png"))?;
    let text = b.text()?;
    if !text.contains("Payroll admin needs privileged access") {
        return Err(format!("no gate page: {text}"));
    }
    b.click("#request-access")?;
    b.wait_for("!!document.getElementById('pim-request-form')", WAIT)?;
    b.fill("input[name='minutes']", "20")?;
    b.fill("textarea[name='reason']", "pay the March contractors")?;
    b.screenshot(&shots.join("pim-03-request-form.png"))?;
    b.click("#pim-request-form button[type='submit']")?;

    // The policy wants a fresh passkey: the check, then back to the form.
    b.wait_for("location.pathname === '/account/verify'", WAIT)?;
    b.wait_for(
        "!document.getElementById('passkey-verify-area').hidden",
        WAIT,
    )?;
    b.screenshot(&shots.join("pim-04-step-up.png"))?;
    b.click("#passkey-verify")?;
    b.wait_for(
        "location.pathname === '/pim/request' && !!document.getElementById('pim-request-form')",
        WAIT,
    )?;
    let reason = b.eval_string("document.querySelector(\"textarea[name='reason']\").value")?;
    if reason != "pay the March contractors" {
        return Err(format!("the form lost the reason: {reason:?}"));
    }
    b.click("#pim-request-form button[type='submit']")?;
    b.wait_for(&format!("location.href.startsWith('{callback}')"), WAIT)?;
    b.wait_for("document.readyState === 'complete'", WAIT)?;
    b.screenshot(&shots.join("pim-05-in-the-app.png"))?;

    // "My access" shows the active window.
    let url = b.url()?;
    b.goto(&format!("{base}/pim"))?;
    b.wait_for("!!document.querySelector('.pim-requests')", WAIT)?;
    b.screenshot(&shots.join("pim-06-my-access.png"))?;
    let state = b.eval_string("document.querySelector('.pim-requests td.state').innerText")?;
    if state != "active" {
        return Err(format!("My access shows {state:?}"));
    }
    Ok(crate::oidc::param(&url, "code"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevation_journey_in_headless_chromium() {
    // The real clock decides office hours here: keep the risk score (a new
    // network, a first request, maybe a weekend) from forcing an approval.
    let mut env = crate::common::TestEnv::new(Backend::Embedded);
    env.settings.pim.risk_approval_threshold = 100;
    let srv = TestServer::start_at(env, crate::common::now_secs()).await;
    srv.user("ida").await;
    let policy = PolicyInput {
        require_mfa: true,
        require_justification: true,
        max_duration: Some(std::time::Duration::from_secs(3600)),
        ..PolicyInput::default()
    };
    privileged_role(&srv, policy, "ida").await;
    let (callback, hits) = callback_server();
    let mut draft = crate::oidc::draft("Payroll admin");
    draft.redirect_uris = vec![callback.clone()];
    let opts = ClientOptions {
        consent_required: false,
        required_role: Some(ROLE.into()),
        ..ClientOptions::default()
    };
    let c = srv
        .services
        .create_client(&Actor::cli(), draft, opts)
        .await
        .unwrap();
    let authorize = crate::oidc::authorize_url(
        &srv,
        &c,
        &[("redirect_uri", &callback), ("scope", "openid")],
    );
    let (base, cb, clock) = (srv.base.clone(), callback.clone(), srv.clock.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        let later = || clock.advance(chrono::Duration::minutes(10));
        journey(&base, &authorize, &cb, &later)
    })
    .await
    .unwrap();
    let Some(claims) = app_redeems(&srv, &c, &callback, outcome, &hits).await else {
        return;
    };
    assert_eq!(claims["pim"][0]["role"], ROLE, "{claims}");
}

//! Lifecycle cuts access everywhere: disabling a user or resetting their
//! password ends every session (telling the OIDC clients and SAML SPs in
//! it), revokes every grant and refresh token and kills outstanding access
//! tokens; a one-time password opens nothing but the password change, and
//! only for 24 hours.

use crate::common::{Browser, PASSWORD, TestServer, backends};
use crate::oidc::rules::introspect;
use crate::oidc::{REDIRECT, VERIFIER, authorize_url, client, draft, param, redeem};
use crate::pim::{Receiver, refresh, tokens};
use chrono::Duration;
use portcullis::domain::UserStatus;
use portcullis::service::Actor;
use portcullis::service::oidc::clients::NewClient;
use serde_json::Value;

const ONE_TIME: &str = "a one-time password 1";

/// A server, a receiver, an OIDC client and a SAML SP that both take
/// back-channel logout at the receiver, and `victim` signed in.
async fn setup(backend: crate::common::Backend) -> (TestServer, Receiver, NewClient, Browser) {
    let srv = TestServer::start(backend).await;
    let rx = Receiver::start(0).await;
    let c = crate::pim::logout_receivers(&srv, &rx, "mail").await;
    srv.user("victim").await;
    let b = srv.browser();
    assert_eq!(b.login("victim", PASSWORD).await.status, 303);
    (srv, rx, c, b)
}

/// A SAML assertion for the signed-in browser, so the SP is in the session.
async fn saml_sign_in(srv: &TestServer, b: &Browser, id: &str) {
    let page = b
        .get_url(&crate::saml::redirect_url(
            srv,
            &crate::saml::authn_request(srv, id, ""),
            "r",
        ))
        .await;
    crate::saml::until_response(b, page, "victim").await;
}

async fn userinfo(srv: &TestServer, at: &str) -> u16 {
    reqwest::Client::new()
        .get(srv.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// An authorization code for the signed-in browser, not yet redeemed.
async fn code_for(srv: &TestServer, b: &Browser, c: &NewClient) -> String {
    let r = b.get_url(&authorize_url(srv, c, &[])).await;
    let loc = r
        .location
        .unwrap_or_else(|| panic!("{} {}", r.status, r.body));
    assert!(loc.starts_with(REDIRECT), "{loc}");
    param(&loc, "code").unwrap()
}

/// What an attacker holding `b`'s session and `t`'s tokens still has.
async fn assert_everything_cut(
    srv: &TestServer,
    rx: &Receiver,
    c: &NewClient,
    b: &Browser,
    t: &Value,
    code: &str,
) {
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    assert_eq!(introspect(srv, c, at).await["active"], false);
    assert_eq!(introspect(srv, c, rt).await["active"], false);
    assert_eq!(userinfo(srv, at).await, 401);
    let (st, v) = refresh(srv, c, rt).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
    let (st, v) = redeem(srv, c, code, VERIFIER).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
    let page = b.get("/account").await;
    assert!(page.location.unwrap().starts_with("/login"));
    let bcl = rx.wait_for(|x| x.path == "/bcl").await;
    assert!(bcl.body.starts_with("logout_token="), "{}", bcl.body);
    let soap = rx.wait_for(|x| x.path == "/soap").await;
    assert!(soap.body.contains("LogoutRequest"), "{}", soap.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_cuts_sessions_grants_and_tokens_everywhere() {
    for backend in backends() {
        let (srv, rx, c, b) = setup(backend).await;
        let t = tokens(&srv, &b, &c, "openid email offline_access").await;
        saml_sign_in(&srv, &b, "_d1").await;
        let code = code_for(&srv, &b, &c).await;
        let at = t["access_token"].as_str().unwrap();
        assert_eq!(introspect(&srv, &c, at).await["active"], true);

        srv.services
            .set_user_status(&Actor::cli(), "victim", UserStatus::Disabled)
            .await
            .unwrap();
        assert_everything_cut(&srv, &rx, &c, &b, &t, &code).await;

        // Enabling again revives none of it.
        srv.services
            .set_user_status(&Actor::cli(), "victim", UserStatus::Active)
            .await
            .unwrap();
        assert_eq!(
            introspect(&srv, &c, at).await["active"],
            false,
            "{backend:?}"
        );
        let (st, _) = refresh(&srv, &c, t["refresh_token"].as_str().unwrap()).await;
        assert_eq!(st, 400);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_throws_the_attacker_out() {
    for backend in backends() {
        let (srv, rx, c, attacker) = setup(backend).await;
        let t = tokens(&srv, &attacker, &c, "openid email offline_access").await;
        saml_sign_in(&srv, &attacker, "_p1").await;
        let code = code_for(&srv, &attacker, &c).await;

        srv.services
            .set_password(&Actor::cli(), "victim", ONE_TIME, true)
            .await
            .unwrap();
        assert_everything_cut(&srv, &rx, &c, &attacker, &t, &code).await;
        assert_eq!(
            attacker.login("victim", PASSWORD).await.status,
            401,
            "{backend:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_ones_own_password_throws_the_attacker_out_too() {
    for backend in backends() {
        let (srv, rx, c, attacker) = setup(backend).await;
        let t = tokens(&srv, &attacker, &c, "openid email offline_access").await;
        saml_sign_in(&srv, &attacker, "_c1").await;
        let code = code_for(&srv, &attacker, &c).await;

        // The owner, in their own browser, changes the password.
        let owner = srv.browser();
        assert_eq!(owner.login("victim", PASSWORD).await.status, 303);
        let mine = tokens(&srv, &owner, &c, "openid email offline_access").await;
        let form = owner.get("/account/password").await;
        let done = owner
            .post(
                "/account/password",
                &[
                    ("csrf", &form.csrf()),
                    ("current", PASSWORD),
                    ("new", "a brand new passphrase"),
                    ("confirm", "a brand new passphrase"),
                ],
            )
            .await;
        assert_eq!(done.location.as_deref(), Some("/account"), "{}", done.body);
        assert_everything_cut(&srv, &rx, &c, &attacker, &t, &code).await;

        // What the owner holds in the session they changed it in stays.
        assert_eq!(owner.get("/account").await.status, 200, "{backend:?}");
        let at = mine["access_token"].as_str().unwrap();
        assert_eq!(introspect(&srv, &c, at).await["active"], true);
        let (st, v) = refresh(&srv, &c, mine["refresh_token"].as_str().unwrap()).await;
        assert_eq!(st, 200, "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_voids_a_sign_in_waiting_for_its_second_factor() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        srv.user("victim").await;
        let owner = srv.browser();
        assert_eq!(owner.login("victim", PASSWORD).await.status, 303);
        let (secret, _) = crate::mfa::enroll(&srv, &owner).await;

        // An attacker who has the password (and the codes) is half-way in ...
        let attacker = srv.browser();
        let first = attacker.login("victim", PASSWORD).await;
        assert_eq!(first.status, 200);
        let pending = crate::common::field_value(&first.body, "pending").unwrap();
        // ... when the administrator resets the password.
        srv.services
            .set_password(&Actor::cli(), "victim", ONE_TIME, true)
            .await
            .unwrap();
        srv.clock.advance(Duration::seconds(30));
        let code = crate::mfa::code_at(&secret, &srv);
        let r = attacker
            .post(
                "/login/second-factor",
                &[
                    ("csrf", &first.csrf()),
                    ("pending", &pending),
                    ("code", &code),
                ],
            )
            .await;
        assert_ne!(r.status, 303, "{backend:?}");
        assert!(attacker.cookie("portcullis_session").is_none());
    }
}

/// Signs in with the one-time password: straight to the password change.
async fn one_time_sign_in(srv: &TestServer) -> Browser {
    let b = srv.browser();
    let r = b.login("victim", ONE_TIME).await;
    assert_eq!(r.location.as_deref(), Some("/account/password"));
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_password_opens_only_the_password_change() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        srv.user("victim").await;
        crate::saml::register_sp(&srv, portcullis::domain::NameIdFormat::Persistent).await;
        let c = client(&srv, draft("mail")).await;
        srv.services
            .set_password(&Actor::cli(), "victim", ONE_TIME, true)
            .await
            .unwrap();
        let b = one_time_sign_in(&srv).await;

        let to_change = Some("/account/password");
        for path in [
            "/account",
            "/account/security",
            "/pim",
            "/pim/approvals",
            "/",
        ] {
            let r = b.get(path).await;
            assert_eq!(
                r.location.as_deref(),
                to_change,
                "{path}: {} {backend:?}",
                r.status
            );
        }
        let r = b.get_url(&authorize_url(&srv, &c, &[])).await;
        assert_eq!(
            r.location.as_deref(),
            to_change,
            "/authorize gave {} {:?}",
            r.status,
            r.location
        );
        let sso =
            crate::saml::redirect_url(&srv, &crate::saml::authn_request(&srv, "_o1", ""), "r");
        let r = b.get_url(&sso).await;
        assert_eq!(
            r.location.as_deref(),
            to_change,
            "SSO gave {} {}",
            r.status,
            r.body
        );
        let r = b
            .http
            .get(srv.url("/api/v1/me/elevations"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "password_change_required");

        // Signing out (RP-initiated) is still possible: it asks first.
        let r = b.get("/end-session").await;
        assert_eq!(r.status, 200, "{:?}", r.location);

        // The password page works (but enrolling a passkey instead does not),
        // and the new password opens everything.
        let form = b.get("/account/password").await;
        assert_eq!(form.status, 200);
        let (st, v) = b
            .post_json(
                "/webauthn/register/start",
                &serde_json::json!({"csrf": form.csrf()}),
            )
            .await;
        assert_eq!(
            (st, v["error"].as_str()),
            (403, Some("Choose a new password before going on.")),
            "{v}"
        );
        let done = b
            .post(
                "/account/password",
                &[
                    ("csrf", &form.csrf()),
                    ("current", ONE_TIME),
                    ("new", "my own new password"),
                    ("confirm", "my own new password"),
                ],
            )
            .await;
        assert_eq!(done.location.as_deref(), Some("/account"), "{}", done.body);
        assert_eq!(b.get("/account").await.status, 200);
        let r = b.get_url(&authorize_url(&srv, &c, &[])).await;
        assert!(r.location.unwrap().starts_with(REDIRECT));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_password_expires_after_24_hours() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        srv.user("victim").await;
        srv.services
            .set_password(&Actor::cli(), "victim", ONE_TIME, true)
            .await
            .unwrap();
        srv.clock
            .advance(Duration::hours(24) - Duration::seconds(2));
        let b = one_time_sign_in(&srv).await;
        assert_eq!(b.get("/account/password").await.status, 200);

        // Its session ends with it, and it opens no new one.
        srv.clock.advance(Duration::seconds(2));
        let r = b.get("/account/password").await;
        assert!(r.location.unwrap().starts_with("/login"), "{backend:?}");
        let r = srv.browser().login("victim", ONE_TIME).await;
        assert_eq!(r.status, 401);
        assert!(
            r.body.contains("one-time password has expired"),
            "{}",
            r.body
        );
    }
}

/// An invitation link dies with a disable (and stays dead after enabling
/// again) and with an administrative password reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_and_reset_void_outstanding_invitations() {
    use portcullis::domain::UserStatus;
    for backend in crate::common::backends() {
        let srv = TestServer::start(backend).await;
        let b = srv.browser();
        let open = |name: &'static str| {
            let srv = &srv;
            async move {
                let inv = srv
                    .services
                    .invite_user(&Actor::cli(), name, None, None)
                    .await
                    .unwrap();
                inv.url.strip_prefix(&srv.base).unwrap().to_string()
            }
        };
        let gina = open("gina").await;
        assert!(b.get(&gina).await.body.contains("Welcome"));
        for status in [UserStatus::Disabled, UserStatus::Active] {
            srv.services
                .set_user_status(&Actor::cli(), "gina", status)
                .await
                .unwrap();
        }
        let page = b.get(&gina).await;
        assert!(!page.body.contains("Welcome"), "{backend:?}: {}", page.body);

        let henry = open("henry").await;
        srv.services
            .set_password(&Actor::cli(), "henry", ONE_TIME, true)
            .await
            .unwrap();
        let page = b.get(&henry).await;
        assert!(!page.body.contains("Welcome"), "{backend:?}: {}", page.body);
    }
}

//! TOTP and recovery codes through the real pages, with a fixed clock.

use crate::common::{Backend, Browser, PASSWORD, TestServer, field_value};
use portcullis::protocol::mfa::totp_code;

pub fn code_at(secret: &[u8], srv: &TestServer) -> String {
    totp_code(secret, srv.clock_now() as u64).unwrap()
}

/// Enrolls TOTP for a signed-in browser; returns the secret and the codes.
pub async fn enroll(srv: &TestServer, b: &Browser) -> (Vec<u8>, Vec<String>) {
    let sec = b.get("/account/security").await;
    assert!(sec.body.contains("Off: a password alone signs you in."));
    let page = b
        .post("/account/security/totp", &[("csrf", &sec.csrf())])
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("src=\"data:image/png;base64,"),
        "a QR image"
    );
    let start = page.body.find("id=\"totp-secret\">").unwrap() + "id=\"totp-secret\">".len();
    let b32 = &page.body[start..start + page.body[start..].find('<').unwrap()];
    let secret = totp_rs::Secret::try_from_base32(b32)
        .unwrap()
        .as_bytes()
        .to_vec();
    let wrong = b
        .post(
            "/account/security/totp/confirm",
            &[("csrf", &page.csrf()), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status, 400);
    let page = b.get("/account/security").await;
    assert!(
        page.body.contains("Off:"),
        "a wrong first code turns nothing on"
    );
    // The wrong attempt issued a fresh secret: enroll again with that one.
    let page = b
        .post("/account/security/totp", &[("csrf", &page.csrf())])
        .await;
    let start = page.body.find("id=\"totp-secret\">").unwrap() + "id=\"totp-secret\">".len();
    let b32 = &page.body[start..start + page.body[start..].find('<').unwrap()];
    let secret2 = totp_rs::Secret::try_from_base32(b32)
        .unwrap()
        .as_bytes()
        .to_vec();
    assert_ne!(secret, secret2);
    let done = b
        .post(
            "/account/security/totp/confirm",
            &[("csrf", &page.csrf()), ("code", &code_at(&secret2, srv))],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let codes: Vec<String> = done
        .body
        .match_indices("<li><code>")
        .map(|(i, _)| done.body[i + 10..i + 24].to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{}", done.body);
    (secret2, codes)
}

/// Password, then the second-factor form; returns the final page.
async fn sign_in_with(b: &Browser, code: &str) -> crate::common::Page {
    let first = b.login("nia", PASSWORD).await;
    assert_eq!(first.status, 200, "the password alone does not sign in");
    assert!(first.body.contains("Enter your code"));
    assert!(b.cookie("portcullis_session").is_none());
    let pending = field_value(&first.body, "pending").unwrap();
    b.post(
        "/login/second-factor",
        &[
            ("csrf", &first.csrf()),
            ("pending", &pending),
            ("code", code),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_enrollment_sign_in_and_replay_refusal() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("nia").await;
    let b = srv.browser();
    b.login("nia", PASSWORD).await;
    let (secret, _codes) = enroll(&srv, &b).await;
    let sec = b.get("/account/security").await;
    assert!(sec.body.contains("On: signing in asks for a code"));
    assert!(sec.body.contains("10 unused recovery codes left"));

    // Signing in now takes a code.
    srv.clock.advance(chrono::Duration::seconds(30));
    let fresh = srv.browser();
    let bad = sign_in_with(&fresh, "123456").await;
    assert_eq!(bad.status, 401);
    assert!(bad.body.contains("That code is not right."));
    let code = code_at(&secret, &srv);
    let pending = field_value(&bad.body, "pending").unwrap();
    let ok = fresh
        .post(
            "/login/second-factor",
            &[
                ("csrf", &bad.csrf()),
                ("pending", &pending),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(ok.location.as_deref(), Some("/account"), "{}", ok.body);
    let account = fresh.get("/account").await;
    assert!(
        account.body.contains("with pwd, otp, mfa"),
        "{}",
        account.body
    );

    // The same code never works twice, even a moment later.
    let other = srv.browser();
    let replay = sign_in_with(&other, &code).await;
    assert_eq!(replay.status, 401);
    srv.clock.advance(chrono::Duration::seconds(30));
    let next = sign_in_with(&other, &code_at(&secret, &srv)).await;
    assert_eq!(next.location.as_deref(), Some("/account"));

    // A pending second step expires.
    let late = srv.browser();
    let first = late.login("nia", PASSWORD).await;
    let pending = field_value(&first.body, "pending").unwrap();
    srv.clock.advance(chrono::Duration::minutes(6));
    let res = late
        .post(
            "/login/second-factor",
            &[
                ("csrf", &first.csrf()),
                ("pending", &pending),
                ("code", &code_at(&secret, &srv)),
            ],
        )
        .await;
    assert!(res.body.contains("expired"), "{}", res.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_codes_work_once_and_regeneration_replaces_them() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("nia").await;
    let b = srv.browser();
    b.login("nia", PASSWORD).await;
    let (_, codes) = enroll(&srv, &b).await;

    let x = srv.browser();
    let used = sign_in_with(&x, &codes[0].to_uppercase()).await;
    assert_eq!(
        used.location.as_deref(),
        Some("/account"),
        "case and dashes do not matter"
    );
    let again = sign_in_with(&srv.browser(), &codes[0]).await;
    assert_eq!(again.status, 401, "a recovery code is single use");
    let sec = b.get("/account/security").await;
    assert!(sec.body.contains("9 unused recovery codes left"));

    let fresh = b
        .post("/account/security/recovery", &[("csrf", &sec.csrf())])
        .await;
    assert_eq!(fresh.status, 200);
    let old = sign_in_with(&srv.browser(), &codes[1]).await;
    assert_eq!(old.status, 401, "regeneration invalidates the old set");
    let start = fresh.body.find("<li><code>").unwrap() + 10;
    let new_code = &fresh.body[start..start + 14];
    assert_eq!(
        sign_in_with(&srv.browser(), new_code)
            .await
            .location
            .as_deref(),
        Some("/account")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_count_towards_the_lockout() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("nia").await;
    let b = srv.browser();
    b.login("nia", PASSWORD).await;
    let (secret, _) = enroll(&srv, &b).await;
    for _ in 0..5 {
        assert_eq!(sign_in_with(&srv.browser(), "000000").await.status, 401);
    }
    let locked = srv.browser().login("nia", PASSWORD).await;
    assert_eq!(
        locked.status, 429,
        "knowing the password does not reset the count"
    );
    drop(secret);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_tokens_say_how_the_user_signed_in() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("nia").await;
    let b = srv.browser();
    b.login("nia", PASSWORD).await;
    let (secret, _) = enroll(&srv, &b).await;
    srv.clock.advance(chrono::Duration::seconds(30));
    let fresh = srv.browser();
    let ok = sign_in_with(&fresh, &code_at(&secret, &srv)).await;
    assert_eq!(ok.location.as_deref(), Some("/account"));

    let c = crate::oidc::client(&srv, crate::oidc::draft("acr")).await;
    let page = fresh
        .get_url(&crate::oidc::authorize_url(&srv, &c, &[]))
        .await;
    let code = crate::oidc::param(&page.location.unwrap(), "code").unwrap();
    let (_, t) = crate::oidc::redeem(&srv, &c, &code, crate::oidc::VERIFIER).await;
    let claims = crate::oidc::flow_payload(t["id_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "urn:portcullis:acr:mfa");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
}

/// Completes a sign-in page flow that asks for password and then a code.
async fn reauth(b: &Browser, login_loc: &str, code: &str) -> crate::common::Page {
    let form = b.get(login_loc).await;
    assert!(form.body.contains("sign in again"), "{}", form.body);
    let next = field_value(&form.body, "next").unwrap();
    let step = b
        .post(
            "/login",
            &[
                ("username", "nia"),
                ("password", PASSWORD),
                ("csrf", &form.csrf()),
                ("next", &next),
            ],
        )
        .await;
    let pending = field_value(&step.body, "pending").expect("the second-factor form");
    let done = b
        .post(
            "/login/second-factor",
            &[
                ("csrf", &step.csrf()),
                ("pending", &pending),
                ("code", code),
                ("next", &next),
            ],
        )
        .await;
    b.get(done.location.as_deref().unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acr_values_and_requested_authn_context_trigger_step_up() {
    let srv = TestServer::start_now(Backend::Embedded).await;
    srv.user("nia").await;
    let b = srv.browser();
    b.login("nia", PASSWORD).await;
    // This session was opened with a password only; a second factor comes after.
    let (secret, _) = enroll(&srv, &b).await;

    // OIDC: acr_values asks for MFA.
    let c = crate::oidc::client(&srv, crate::oidc::draft("stepup")).await;
    let url = crate::oidc::authorize_url(&srv, &c, &[("acr_values", "urn:portcullis:acr:mfa")]);
    let page = b.get_url(&url).await;
    let loc = page.location.unwrap();
    assert!(
        loc.starts_with("/login") && loc.contains("reauth=1"),
        "{loc}"
    );
    srv.clock.advance(chrono::Duration::seconds(30));
    let back = reauth(&b, &loc, &code_at(&secret, &srv)).await;
    let code = crate::oidc::param(back.location.as_deref().unwrap(), "code").unwrap();
    let (_, t) = crate::oidc::redeem(&srv, &c, &code, crate::oidc::VERIFIER).await;
    assert_eq!(
        crate::oidc::flow_payload(t["id_token"].as_str().unwrap())["acr"],
        "urn:portcullis:acr:mfa"
    );
    // Now strong enough: no more prompting.
    let again = b.get_url(&url).await;
    assert!(crate::oidc::param(again.location.as_deref().unwrap(), "code").is_some());

    // SAML: RequestedAuthnContext asks for MFA, from a password-only session.
    crate::saml::register_sp(&srv, portcullis::domain::NameIdFormat::Persistent).await;
    srv.user("oz").await;
    let weak = srv.browser();
    weak.login("oz", PASSWORD).await;
    let xml = crate::saml::authn_request(&srv, "_ctx", "").replace(
        "</samlp:AuthnRequest>",
        "<samlp:RequestedAuthnContext Comparison=\"minimum\"><saml:AuthnContextClassRef>urn:portcullis:acr:mfa</saml:AuthnContextClassRef></samlp:RequestedAuthnContext></samlp:AuthnRequest>",
    );
    let page = weak
        .get_url(&crate::saml::redirect_url(&srv, &xml, ""))
        .await;
    let loc = page.location.unwrap();
    assert!(loc.contains("reauth=1"), "{loc}");
    // oz has no second factor: after signing in again the SP hears NoAuthnContext.
    let form = weak.get(&loc).await;
    let next = field_value(&form.body, "next").unwrap();
    let done = weak
        .post(
            "/login",
            &[
                ("username", "oz"),
                ("password", PASSWORD),
                ("csrf", &form.csrf()),
                ("next", &next),
            ],
        )
        .await;
    let page = weak.get(done.location.as_deref().unwrap()).await;
    let resp = crate::saml::decode(&field_value(&page.body, "SAMLResponse").unwrap());
    assert!(
        resp.contains("urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext"),
        "{resp}"
    );

    // nia's session is MFA now: her assertion says so.
    let xml = crate::saml::authn_request(&srv, "_ctx2", "").replace(
        "</samlp:AuthnRequest>",
        "<samlp:RequestedAuthnContext Comparison=\"minimum\"><saml:AuthnContextClassRef>urn:portcullis:acr:mfa</saml:AuthnContextClassRef></samlp:RequestedAuthnContext></samlp:AuthnRequest>",
    );
    let page = b.get_url(&crate::saml::redirect_url(&srv, &xml, "")).await;
    let resp = crate::saml::decode(&field_value(&page.body, "SAMLResponse").unwrap());
    assert!(
        resp.contains(
            "<saml:AuthnContextClassRef>urn:portcullis:acr:mfa</saml:AuthnContextClassRef>"
        ),
        "{resp}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_see_and_end_their_sessions() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("nia").await;
    let laptop = srv.browser();
    let phone = srv.browser();
    laptop.login("nia", PASSWORD).await;
    phone.login("nia", PASSWORD).await;
    let page = laptop.get("/account/security").await;
    assert_eq!(
        page.body.matches("name=\"sid\"").count(),
        2,
        "{}",
        page.body
    );
    assert_eq!(page.body.matches("this browser").count(), 1);
    // The row without "this browser" is the phone's.
    let rows: Vec<&str> = page.body.split("<tr>").skip(2).collect();
    let phone_row = rows.iter().find(|r| !r.contains("this browser")).unwrap();
    let sid = field_value(phone_row, "sid").unwrap();
    let ended = laptop
        .post(
            "/account/security/sessions/end",
            &[("csrf", &page.csrf()), ("sid", &sid)],
        )
        .await;
    assert!(ended.body.contains("The session has ended."));
    assert_eq!(
        phone.get("/account").await.status,
        303,
        "the phone is signed out"
    );
    assert_eq!(laptop.get("/account").await.status, 200);

    let page = laptop.get("/account/security").await;
    let own = field_value(&page.body, "sid").unwrap();
    let out = laptop
        .post(
            "/account/security/sessions/end",
            &[("csrf", &page.csrf()), ("sid", &own)],
        )
        .await;
    assert_eq!(out.location.as_deref(), Some("/login?signed_out=1"));
    assert_eq!(laptop.get("/account").await.status, 303);
}

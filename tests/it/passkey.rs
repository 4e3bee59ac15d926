//! Passkeys over real HTTP with webauthn-rs' software authenticator: the
//! same JSON calls `static/webauthn.js` makes.
//!
//! The soft authenticator cannot store resident keys, so two adaptations
//! stand in for what a platform authenticator does (the browser test in
//! `browser.rs` covers the real thing): registration options are relaxed to
//! `residentKey: discouraged` after checking the server asked for `required`,
//! and a usernameless assertion is given the user handle a resident key
//! returns. Neither is covered by a signature, so the server's checks are the
//! same ones it runs for a browser.

use crate::common::{Backend, Browser, PASSWORD, TestServer, backends, field_value};
use portcullis::service::Actor;
use serde_json::{Value, json};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{
    AllowCredentials, CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse,
    ResidentKeyRequirement,
};

/// A software authenticator holding one credential.
pub struct Key {
    auth: SoftPasskey,
    origin: Url,
    cred_id: Option<Vec<u8>>,
    user_handle: Vec<u8>,
}

impl Key {
    pub fn new(srv: &TestServer) -> Self {
        Self {
            auth: SoftPasskey::new(true),
            origin: Url::parse(&srv.base).unwrap(),
            cred_id: None,
            user_handle: vec![],
        }
    }

    /// Answers creation options the way an authenticator would.
    pub fn create(&mut self, options: &Value, discoverable: bool) -> Value {
        let sel = &options["publicKey"]["authenticatorSelection"];
        assert_eq!(sel["userVerification"], "required");
        if discoverable {
            assert_eq!(
                sel["residentKey"], "required",
                "usernameless needs a resident key"
            );
        }
        let mut ccr: CreationChallengeResponse = serde_json::from_value(options.clone()).unwrap();
        if let Some(s) = ccr.public_key.authenticator_selection.as_mut() {
            s.require_resident_key = false;
            s.resident_key = Some(ResidentKeyRequirement::Discouraged);
        }
        self.user_handle = ccr.public_key.user.id.to_vec();
        let cred = self
            .auth
            .do_registration(self.origin.clone(), ccr)
            .expect("soft authenticator registers");
        self.cred_id = Some(cred.raw_id.clone());
        serde_json::to_value(cred).unwrap()
    }

    /// Answers request options; with no allowed credentials listed (a
    /// usernameless request) it picks its own and returns the user handle.
    pub fn get(&mut self, options: &Value) -> Value {
        assert_eq!(options["publicKey"]["userVerification"], "required");
        let mut rcr: RequestChallengeResponse = serde_json::from_value(options.clone()).unwrap();
        let usernameless = rcr.public_key.allow_credentials.is_empty();
        if usernameless {
            rcr.public_key.allow_credentials = vec![AllowCredentials {
                type_: "public-key".into(),
                id: self.cred_id.clone().expect("registered"),
                transports: None,
            }];
        }
        rcr.mediation = None;
        let mut cred: PublicKeyCredential = self
            .auth
            .do_authentication(self.origin.clone(), rcr)
            .expect("soft authenticator signs");
        if usernameless {
            cred.response.user_handle = Some(self.user_handle.clone());
        }
        serde_json::to_value(cred).unwrap()
    }
}

/// Adds a credential to the signed-in browser's account through the JSON API.
pub async fn register(b: &Browser, key: &mut Key, name: &str, kind: &str) -> (u16, Value) {
    let csrf = b.get("/account/security").await.csrf();
    let (st, c) = b
        .post_json(
            "/webauthn/register/start",
            &json!({"csrf": csrf, "kind": kind}),
        )
        .await;
    assert_eq!(st, 200, "{c}");
    let cred = key.create(&c["options"], kind == "passkey");
    b.post_json(
        "/webauthn/register/finish",
        &json!({"csrf": csrf, "ceremony": c["ceremony"], "name": name, "credential": cred}),
    )
    .await
}

/// A new user signed in with a password who then added a passkey.
pub async fn user_with_passkey(srv: &TestServer, name: &str) -> (Browser, Key) {
    srv.user(name).await;
    let b = srv.browser();
    b.login(name, PASSWORD).await;
    let mut key = Key::new(srv);
    let (st, v) = register(&b, &mut key, "Laptop", "passkey").await;
    assert_eq!(st, 200, "{v}");
    (b, key)
}

/// Signs a fresh browser in with the passkey alone; returns the answer.
pub async fn passkey_sign_in(srv: &TestServer, key: &mut Key, next: &str) -> (Browser, u16, Value) {
    let b = srv.browser();
    let (st, v) = sign_in_with_passkey(&b, key, "/login", next).await;
    (b, st, v)
}

/// The passkey button of the sign-in page at `login`, in browser `b`.
pub async fn sign_in_with_passkey(
    b: &Browser,
    key: &mut Key,
    login: &str,
    next: &str,
) -> (u16, Value) {
    let page = b.get(login).await;
    assert!(page.body.contains("data-webauthn=\"signin\""));
    assert!(page.body.contains("autocomplete=\"username webauthn\""));
    let csrf = page.csrf();
    let (st, c) = b
        .post_json("/webauthn/login/start", &json!({"csrf": csrf}))
        .await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["options"]["publicKey"]["allowCredentials"], json!([]));
    let cred = key.get(&c["options"]);
    b.post_json(
        "/webauthn/login/finish",
        &json!({"csrf": csrf, "ceremony": c["ceremony"], "credential": cred, "next": next}),
    )
    .await
}

/// The value of a `data-<name>` attribute: how pages hand the script its
/// CSRF token and pending sign-in.
pub fn data_attr(html: &str, name: &str) -> String {
    let marker = format!("data-{name}=\"");
    html.split(&marker)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no data-{name} in {html}"))
        .to_string()
}

async fn audit_actions(srv: &TestServer) -> Vec<String> {
    srv.services
        .recent_audit(200)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.entry.action)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_sign_in_without_username_rename_and_remove() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        srv.user("pia").await;
        let b = srv.browser();
        b.login("pia", PASSWORD).await;
        let mut key = Key::new(&srv);
        let (st, v) = register(&b, &mut key, "Work laptop", "passkey").await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["redirect"], "/account/security?added=1");
        let sec = b.get("/account/security?added=1").await;
        assert!(sec.body.contains("The passkey was added."));
        assert!(sec.body.contains("value=\"Work laptop\""), "{}", sec.body);
        assert!(sec.body.contains("never"), "not used yet");

        // Usernameless: the browser knows nobody, the passkey names pia.
        srv.clock.advance(chrono::Duration::minutes(3));
        let (pb, st, v) = passkey_sign_in(&srv, &mut key, "/account").await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["redirect"], "/account");
        let acct = pb.get("/account").await;
        assert!(acct.body.contains("id=\"who\">pia<"), "{}", acct.body);
        assert!(acct.body.contains("hwk, user, mfa"), "{}", acct.body);
        let sec = pb.get("/account/security").await;
        assert!(!sec.body.contains(">never<"), "last use recorded");

        // The same answer twice: the ceremony is spent.
        let csrf = sec.csrf();
        let (_, c) = pb
            .post_json("/webauthn/login/start", &json!({"csrf": csrf}))
            .await;
        let cred = key.get(&c["options"]);
        let body = json!({"csrf": csrf, "ceremony": c["ceremony"], "credential": cred});
        let (st, _) = pb.post_json("/webauthn/login/finish", &body).await;
        assert_eq!(st, 200);
        let (st, v) = pb.post_json("/webauthn/login/finish", &body).await;
        assert_eq!(st, 400, "{v}");
        assert!(v["error"].as_str().unwrap().contains("expired"), "{v}");

        // Rename, with a bad name refused.
        let id = field_value(&sec.body, "id").unwrap();
        let bad = pb
            .post(
                "/account/security/passkeys/rename",
                &[("csrf", &csrf), ("id", &id), ("name", "  ")],
            )
            .await;
        assert_eq!(bad.status, 400);
        assert!(bad.body.contains("Give the passkey a name"));
        let ok = pb
            .post(
                "/account/security/passkeys/rename",
                &[("csrf", &csrf), ("id", &id), ("name", "Old laptop")],
            )
            .await;
        assert!(ok.body.contains("value=\"Old laptop\""));

        // pia has a password, so the only passkey may go.
        let gone = pb
            .post(
                "/account/security/passkeys/remove",
                &[("csrf", &csrf), ("id", &id)],
            )
            .await;
        assert!(
            gone.body.contains("The passkey was removed."),
            "{}",
            gone.body
        );
        let (_, st, _) = passkey_sign_in(&srv, &mut key, "").await;
        assert_eq!(st, 401, "a removed passkey signs nobody in");

        let actions = audit_actions(&srv).await;
        for a in ["passkey.register", "passkey.rename", "passkey.remove"] {
            assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_key_as_second_factor_after_a_password() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("sol").await;
    let b = srv.browser();
    b.login("sol", PASSWORD).await;
    let mut key = Key::new(&srv);
    let (st, v) = register(&b, &mut key, "YubiKey", "security_key").await;
    assert_eq!(st, 200, "{v}");
    assert!(
        b.get("/account/security")
            .await
            .body
            .contains("Security key")
    );

    // Now the password alone opens nothing.
    let b2 = srv.browser();
    let page = b2.login("sol", PASSWORD).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-webauthn=\"second-factor\""));
    assert!(
        !page.body.contains("name=\"code\""),
        "no TOTP form without TOTP"
    );
    assert!(b2.get("/account").await.status == 303, "not signed in yet");
    let pending = data_attr(&page.body, "pending");
    let csrf = data_attr(&page.body, "csrf");
    let start = json!({"csrf": csrf, "pending": pending});
    let (st, c) = b2.post_json("/webauthn/second-factor/start", &start).await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(
        c["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let cred = key.get(&c["options"]);
    let (st, v) = b2
        .post_json(
            "/webauthn/second-factor/finish",
            &json!({"csrf": csrf, "ceremony": c["ceremony"], "credential": cred, "next": "/account"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let acct = b2.get("/account").await;
    assert!(acct.body.contains("pwd, hwk, user, mfa"), "{}", acct.body);

    // The pending sign-in was spent with it.
    let (st, _) = b2.post_json("/webauthn/second-factor/start", &start).await;
    assert_eq!(st, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_that_goes_backwards_is_refused_and_audited() {
    let srv = TestServer::start(Backend::Embedded).await;
    let (_, mut key) = user_with_passkey(&srv, "cai").await;
    let (_, st, _) = passkey_sign_in(&srv, &mut key, "").await;
    assert_eq!(st, 200);

    // Meanwhile the genuine authenticator was used 1000 times; this copy of
    // it is behind.
    let store = srv.services.store.clone();
    let cid = key
        .cred_id
        .as_ref()
        .map(|c| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, c))
        .unwrap();
    tokio::task::spawn_blocking(move || {
        store.tx(|r| {
            let p = r.passkey_by_credential_id(&cid)?.unwrap();
            let mut v: Value = serde_json::from_str(&p.credential).unwrap();
            v["cred"]["counter"] = json!(1000);
            r.record_passkey_use(&p.id, &v.to_string(), 1000, p.backup_state, p.created_at)
        })
    })
    .await
    .unwrap()
    .unwrap();
    let (_, st, v) = passkey_sign_in(&srv, &mut key, "").await;
    assert_eq!(st, 401, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("counter went backwards"),
        "{v}"
    );
    assert!(
        audit_actions(&srv)
            .await
            .contains(&"passkey.clone_suspected".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitation_links_work_once_and_expire() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let inv = srv
            .services
            .invite_user(&Actor::cli(), "ivy", Some("Ivy Invited".into()), None)
            .await
            .unwrap();
        assert!(inv.created);
        let path = inv.url.strip_prefix(&srv.base).unwrap().to_string();
        let b = srv.browser();
        let page = b.get(&path).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Welcome, Ivy Invited"));
        assert!(page.body.contains("data-webauthn=\"invite\""));
        let csrf = data_attr(&page.body, "csrf");
        let (st, c) = b
            .post_json(&format!("{path}/start"), &json!({"csrf": csrf}))
            .await;
        assert_eq!(st, 200, "{c}");
        let mut key = Key::new(&srv);
        let cred = key.create(&c["options"], true);
        let (st, v) = b
            .post_json(
                &format!("{path}/finish"),
                &json!({"csrf": csrf, "ceremony": c["ceremony"], "name": "Phone", "credential": cred}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["redirect"], "/account/security?welcome=1");
        let sec = b.get("/account/security?welcome=1").await;
        assert!(sec.body.contains("Welcome! Your passkey is set up"));
        assert!(sec.body.contains("None: you sign in with a passkey."));

        // Used once: the link now says so, and cannot start another ceremony.
        let again = srv.browser().get(&path).await;
        assert_eq!(again.status, 410);
        assert!(again.body.contains("already been used"));
        let (st, v) = b
            .post_json(&format!("{path}/start"), &json!({"csrf": csrf}))
            .await;
        assert_eq!(st, 400);
        assert!(v["error"].as_str().unwrap().contains("already been used"));

        // The only way in stays: removing the last passkey is refused.
        let id = field_value(&sec.body, "id").unwrap();
        let refused = b
            .post(
                "/account/security/passkeys/remove",
                &[("csrf", &sec.csrf()), ("id", &id)],
            )
            .await;
        assert_eq!(refused.status, 400);
        assert!(refused.body.contains("This is your only way to sign in."));
        let (_, st, _) = passkey_sign_in(&srv, &mut key, "").await;
        assert_eq!(st, 200, "the passkey still works");

        // A new link for an existing user; it expires after 72 hours.
        let inv2 = srv
            .services
            .invite_user(&Actor::cli(), "ivy", None, None)
            .await
            .unwrap();
        assert!(!inv2.created);
        let path2 = inv2.url.strip_prefix(&srv.base).unwrap().to_string();
        srv.clock.advance(chrono::Duration::hours(72));
        let late = srv.browser().get(&path2).await;
        assert_eq!(late.status, 410);
        assert!(late.body.contains("has expired"));
        let unknown = srv.browser().get("/invite/nonsense").await;
        assert_eq!(unknown.status, 404);
        assert!(unknown.body.contains("not valid"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_passkey_check_stands_in_for_the_password() {
    let srv = TestServer::start(Backend::Embedded).await;
    let (b, mut key) = user_with_passkey(&srv, "fay").await;

    // Password-only session: the current password is asked for.
    let form = b.get("/account/password").await;
    assert!(form.body.contains("name=\"current\""));
    assert!(form.body.contains("id=\"verify-instead\""));
    let no_current = b
        .post(
            "/account/password",
            &[
                ("csrf", &form.csrf()),
                ("new", "a brand new secret"),
                ("confirm", "a brand new secret"),
            ],
        )
        .await;
    assert_eq!(no_current.status, 401);
    assert!(
        no_current
            .body
            .contains("The current password is incorrect.")
    );

    // The check on its own: /account/verify, then the JSON ceremony.
    let page = b.get("/account/verify?next=/account/password").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-webauthn=\"verify\""));
    let csrf = data_attr(&page.body, "csrf");
    let (st, c) = b
        .post_json("/webauthn/verify/start", &json!({"csrf": csrf}))
        .await;
    assert_eq!(st, 200, "{c}");
    let cred = key.get(&c["options"]);
    let (st, v) = b
        .post_json(
            "/webauthn/verify/finish",
            &json!({"csrf": csrf, "ceremony": c["ceremony"], "credential": cred, "next": "/account/password"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["redirect"], "/account/password");
    let acct = b.get("/account").await;
    assert!(acct.body.contains("pwd, hwk, user, mfa"), "{}", acct.body);

    // Within five minutes the password can change without the old one.
    srv.clock.advance(chrono::Duration::minutes(4));
    let form = b.get("/account/password").await;
    assert!(form.body.contains("id=\"fresh-notice\""));
    assert!(!form.body.contains("name=\"current\""));
    let done = b
        .post(
            "/account/password",
            &[
                ("csrf", &form.csrf()),
                ("new", "a brand new secret"),
                ("confirm", "a brand new secret"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let again = srv.browser().login("fay", "a brand new secret").await;
    assert!(
        again.body.contains("data-webauthn=\"second-factor\""),
        "the new password is accepted"
    );

    // One second past the window it is not fresh any more.
    srv.clock.advance(chrono::Duration::seconds(61));
    let form = b.get("/account/password").await;
    assert!(form.body.contains("name=\"current\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phishing_resistant_step_up_with_a_passkey_for_oidc_and_saml() {
    let srv = TestServer::start_now(Backend::Embedded).await;
    let (b, mut key) = user_with_passkey(&srv, "ada").await;

    // The password session is too weak for acr_values=phr.
    let c = crate::oidc::client(&srv, crate::oidc::draft("phr-app")).await;
    let url = crate::oidc::authorize_url(&srv, &c, &[("acr_values", "urn:portcullis:acr:phr")]);
    let loc = b.get_url(&url).await.location.unwrap();
    assert!(
        loc.starts_with("/login") && loc.contains("reauth=1"),
        "{loc}"
    );
    let next = field_value(&b.get(&loc).await.body, "next").unwrap();
    let (st, v) = sign_in_with_passkey(&b, &mut key, &loc, &next).await;
    assert_eq!(st, 200, "{v}");
    let back = b.get(v["redirect"].as_str().unwrap()).await;
    let code = crate::oidc::param(back.location.as_deref().unwrap(), "code").unwrap();
    let (_, t) = crate::oidc::redeem(&srv, &c, &code, crate::oidc::VERIFIER).await;
    let claims = crate::oidc::flow_payload(t["id_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "urn:portcullis:acr:phr", "{claims}");
    assert_eq!(claims["amr"], json!(["hwk", "user", "mfa"]));

    // SAML asks for the same level: the passkey session meets it.
    crate::saml::register_sp(&srv, portcullis::domain::NameIdFormat::Persistent).await;
    let xml = crate::saml::authn_request(&srv, "_phr", "").replace(
        "</samlp:AuthnRequest>",
        "<samlp:RequestedAuthnContext Comparison=\"minimum\"><saml:AuthnContextClassRef>urn:portcullis:acr:phr</saml:AuthnContextClassRef></samlp:RequestedAuthnContext></samlp:AuthnRequest>",
    );
    let page = b.get_url(&crate::saml::redirect_url(&srv, &xml, "")).await;
    let resp = crate::saml::decode(&field_value(&page.body, "SAMLResponse").unwrap());
    assert!(
        resp.contains(
            "<saml:AuthnContextClassRef>urn:portcullis:acr:phr</saml:AuthnContextClassRef>"
        ),
        "{resp}"
    );
}

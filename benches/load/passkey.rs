//! Passkeys with webauthn-rs' software authenticator, through the same JSON
//! calls the pages' script makes. As in the integration tests, the soft
//! authenticator cannot keep resident keys: registration options are relaxed
//! to a non-resident key and a usernameless assertion is given the user
//! handle a resident key would return (neither is covered by a signature).

use crate::client::{Browser, Res, field_value};
use serde_json::{Value, json};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{
    AllowCredentials, CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse,
    ResidentKeyRequirement,
};

pub struct Key {
    auth: SoftPasskey,
    origin: Url,
    cred_id: Vec<u8>,
    user_handle: Vec<u8>,
}

impl Key {
    /// Enrolls a new passkey for the browser's signed-in user.
    pub async fn enroll(b: &mut Browser) -> Res<Self> {
        let mut key = Self {
            auth: SoftPasskey::new(true),
            origin: Url::parse(&b.base).map_err(|e| e.to_string())?,
            cred_id: vec![],
            user_handle: vec![],
        };
        let page = b.get("/account/security").await?;
        let csrf = field_value(&page.body, "csrf").ok_or("no CSRF on /account/security")?;
        let c = b
            .post_json(
                "/webauthn/register/start",
                &json!({"csrf": csrf, "kind": "passkey"}),
            )
            .await?;
        let cred = key.create(&c["options"])?;
        b.post_json(
            "/webauthn/register/finish",
            &json!({"csrf": csrf, "ceremony": c["ceremony"], "name": "bench", "credential": cred}),
        )
        .await?;
        Ok(key)
    }

    fn create(&mut self, options: &Value) -> Res<Value> {
        let mut ccr: CreationChallengeResponse =
            serde_json::from_value(options.clone()).map_err(|e| e.to_string())?;
        if let Some(s) = ccr.public_key.authenticator_selection.as_mut() {
            s.require_resident_key = false;
            s.resident_key = Some(ResidentKeyRequirement::Discouraged);
        }
        self.user_handle = ccr.public_key.user.id.to_vec();
        let cred = self
            .auth
            .do_registration(self.origin.clone(), ccr)
            .map_err(|e| format!("soft authenticator: {e:?}"))?;
        self.cred_id = cred.raw_id.clone();
        serde_json::to_value(cred).map_err(|e| e.to_string())
    }

    fn get(&mut self, options: &Value) -> Res<Value> {
        let mut rcr: RequestChallengeResponse =
            serde_json::from_value(options.clone()).map_err(|e| e.to_string())?;
        rcr.public_key.allow_credentials = vec![AllowCredentials {
            type_: "public-key".into(),
            id: self.cred_id.clone(),
            transports: None,
        }];
        rcr.mediation = None;
        let mut cred: PublicKeyCredential = self
            .auth
            .do_authentication(self.origin.clone(), rcr)
            .map_err(|e| format!("soft authenticator: {e:?}"))?;
        cred.response.user_handle = Some(self.user_handle.clone());
        serde_json::to_value(cred).map_err(|e| e.to_string())
    }

    /// A usernameless sign-in from an empty cookie jar: the sign-in page,
    /// the challenge, the assertion. Leaves the browser with a new session.
    pub async fn sign_in(&mut self, b: &mut Browser) -> Res<()> {
        b.forget();
        let page = b.get("/login").await?;
        let csrf = field_value(&page.body, "csrf").ok_or("no CSRF field on /login")?;
        let c = b
            .post_json("/webauthn/login/start", &json!({"csrf": csrf}))
            .await?;
        let cred = self.get(&c["options"])?;
        let done = b
            .post_json(
                "/webauthn/login/finish",
                &json!({"csrf": csrf, "ceremony": c["ceremony"], "credential": cred, "next": "/account"}),
            )
            .await?;
        if done["redirect"].is_string() {
            Ok(())
        } else {
            Err(format!("passkey sign-in: {done}"))
        }
    }
}

//! RP-initiated logout (OIDC RP-Initiated Logout 1.0) and back-channel
//! logout tokens (OIDC Back-Channel Logout 1.0).

use crate::crypto::jws;
use crate::crypto::random_token;
use crate::domain::{Client, SigningAlg};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::oidc::claims::{is_id_token_typ, sid_for};
use crate::protocol::oidc::uri::with_query;
use crate::service::Services;
use crate::service::{outbound, outbox};
use serde_json::json;
use std::time::Duration;

/// Why a self-registered client's back-channel logout was not sent.
const REFUSED: &str = "the back-channel logout URI does not lead to a public https address";
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The end-session endpoint's parameters.
#[derive(Debug, Clone, Default)]
pub struct EndSessionRequest {
    pub id_token_hint: Option<String>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
}

/// What the end-session endpoint decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutPlan {
    /// Where to send the browser afterwards, when the client asked and may.
    pub redirect: Option<String>,
    /// The `sub` of a valid `id_token_hint`, if one was given.
    pub hinted_subject: Option<String>,
    pub client_name: Option<String>,
}

fn bad(msg: &str) -> Error {
    Error::oauth(ErrorKind::InvalidInput, "invalid_request", msg.to_string())
}

impl Services {
    /// Validates an end-session request. Nothing is redirected anywhere that
    /// the client did not register.
    pub async fn plan_logout(&self, req: &EndSessionRequest) -> Result<LogoutPlan> {
        let mut client_id = req.client_id.clone();
        let mut hinted_subject = None;
        if let Some(claims) = self.id_token_hint(req.id_token_hint.as_deref()).await? {
            if claims["iss"].as_str() != Some(self.issuer.as_str()) {
                return Err(bad("id_token_hint was issued by someone else"));
            }
            let aud = match &claims["aud"] {
                serde_json::Value::String(a) => Some(a.clone()),
                serde_json::Value::Array(a) => {
                    a.first().and_then(|x| x.as_str()).map(str::to_string)
                }
                _ => None,
            };
            if let (Some(given), Some(aud)) = (&client_id, &aud)
                && given != aud
            {
                return Err(bad("client_id does not match the id_token_hint"));
            }
            client_id = client_id.or(aud);
            hinted_subject = claims["sub"].as_str().map(str::to_string);
        }
        let client = match &client_id {
            Some(id) => Some(
                self.client(id)
                    .await?
                    .ok_or_else(|| bad("unknown client_id"))?,
            ),
            None => None,
        };
        let redirect = match (&req.post_logout_redirect_uri, &client) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(bad(
                    "post_logout_redirect_uri needs client_id or id_token_hint",
                ));
            }
            (Some(uri), Some(c)) => {
                if !c.post_logout_redirect_uris.iter().any(|u| u == uri) {
                    return Err(bad(
                        "post_logout_redirect_uri is not registered for this client",
                    ));
                }
                let mut params = vec![];
                if let Some(s) = &req.state {
                    params.push(("state", s.as_str()));
                }
                Some(with_query(uri, &params))
            }
        };
        Ok(LogoutPlan {
            redirect,
            hinted_subject,
            client_name: client.map(|c| c.name),
        })
    }

    /// The claims of an `id_token_hint` signed here; `None` without one. An
    /// access token (or a logout token) of ours is no hint: resource servers
    /// see access tokens, and any of them could otherwise sign the user out
    /// unasked. It is ignored, so the user is asked as when no hint is given.
    async fn id_token_hint(&self, hint: Option<&str>) -> Result<Option<serde_json::Value>> {
        let Some(hint) = hint else {
            return Ok(None);
        };
        let ring = self.key_ring_for(hint).await;
        let keys = ring.verifiers(self.now(), chrono::Duration::days(3650));
        // An expired ID token is still a fine hint (the spec allows it);
        // the signature and issuer must hold.
        let claims = jws::verify_with(hint, &keys, &SigningAlg::ALL)
            .map_err(|_| bad("id_token_hint is not an ID token issued here"))?;
        Ok(match jws::decode_header(hint) {
            Ok(h) if is_id_token_typ(h.typ.as_deref()) => Some(claims),
            _ => None,
        })
    }

    /// Builds, signs and POSTs one logout token (an outbox attempt).
    pub(crate) async fn send_backchannel_logout(
        &self,
        uri: &str,
        n: &outbox::BackchannelNotice,
    ) -> std::result::Result<u16, String> {
        let client = match self.client(&n.client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err("the client no longer exists".into()),
            Err(e) => return Err(e.to_string()),
        };
        // A self-registered client's URL is called only at the public
        // addresses its name resolves to now; an administrator's as given.
        let http = if client.registered_dynamically {
            let checked = outbound::check_destination(uri, outbound::system_lookup).await;
            match checked.and_then(|c| c.client()) {
                Ok(h) => h,
                Err(why) => {
                    self.refuse_backchannel(&client.client_id, &why).await;
                    return Err(REFUSED.into());
                }
            }
        } else {
            self.http.clone()
        };
        let token = self
            .logout_token(&client, &n.session_digest, &n.user_id)
            .map_err(|e| e.to_string())?;
        http.post(uri)
            .timeout(ATTEMPT_TIMEOUT)
            .form(&[("logout_token", token.as_str())])
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    }

    /// Audits a refused destination (the outbox records the attempt too).
    /// The details, which quote what the client registered, go only to the
    /// log; the audit and the outbox get a fixed reason.
    async fn refuse_backchannel(&self, client_id: &str, why: &str) {
        tracing::warn!(client = %client_id, reason = %why, "back-channel logout refused: not a public address");
        let (cid, why, now) = (client_id.to_string(), REFUSED, self.now());
        let audited = self
            .db(move |r| {
                crate::service::record(
                    r,
                    now,
                    &crate::service::Actor::system(),
                    "oidc.backchannel_refused",
                    &cid,
                    json!({"why": why}),
                )
            })
            .await;
        if let Err(e) = audited {
            tracing::warn!(error = %e, "could not audit a refused back-channel logout");
        }
    }

    fn logout_token(&self, client: &Client, session_digest: &str, user_id: &str) -> Result<String> {
        let now = self.now().timestamp();
        let claims = json!({
            "iss": self.issuer,
            "aud": client.client_id,
            "iat": now,
            "exp": now + 120,
            "jti": random_token(),
            "sub": user_id,
            "sid": sid_for(session_digest),
            "events": { BACKCHANNEL_EVENT: {} },
        });
        self.sign_jwt(client.id_token_alg, "logout+jwt", &claims)
    }
}

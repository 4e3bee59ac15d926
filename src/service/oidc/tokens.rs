//! Minting and checking tokens: JWT access tokens (RFC 9068), ID tokens,
//! opaque refresh tokens.

use crate::crypto::jws::{self, left_half_hash};
use crate::crypto::{random_token, sha256_hex};
use crate::domain::{Client, Grant, RefreshToken, SigningAlg, User};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::oidc::claims::{Profile, sid_for, ts, user_claims};
use crate::protocol::oidc::scope;
use crate::service::pim::window_end;
use crate::service::{Services, lifecycle};
use crate::store::Repo;
use chrono::Duration;
use serde::Serialize;
use serde_json::{Map, Value, json};

pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The token endpoint's success response (RFC 6749 5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// The user side of a grant, loaded once per issuance.
pub struct Subject {
    pub user: User,
    pub groups: Vec<String>,
    /// Directory roles, plus the elevated ones when loaded for an issuance.
    pub roles: Vec<String>,
    /// Active elevations admitted for the issuance at hand.
    pub elevations: Vec<crate::service::pim::Elevation>,
}

/// A verified, live access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub claims: Value,
    pub grant: Grant,
    /// The grant's user's name, read with the liveness check.
    pub username: Option<String>,
}

impl AccessToken {
    pub fn scope(&self) -> Vec<String> {
        scope::parse(self.claims["scope"].as_str().unwrap_or(""))
    }
}

/// Rule 1's output: the elevated roles join `roles` (released for an active
/// window whatever the scope: that is what the window is for) and `pim`
/// says which activation granted each, and until when.
pub fn add_elevation_claims(m: &mut Map<String, Value>, scope: &[String], s: &Subject) {
    if s.elevations.is_empty() {
        return;
    }
    let mut roles: Vec<String> = if scope.iter().any(|x| x == "roles") {
        s.roles.clone()
    } else {
        Vec::new()
    };
    for e in &s.elevations {
        if !roles.contains(&e.role) {
            roles.push(e.role.clone());
        }
    }
    m.insert("roles".into(), json!(roles));
    m.insert(
        "pim".into(),
        json!(
            s.elevations
                .iter()
                .map(
                    |e| json!({"role": e.role, "activation": e.request_id, "until": ts(e.ends_at)})
                )
                .collect::<Vec<_>>()
        ),
    );
}

/// A new refresh token for `grant` and the digest stored for it.
pub(crate) fn refresh_token_for(
    grant: &Grant,
    now: chrono::DateTime<chrono::Utc>,
) -> (String, RefreshToken) {
    let token = random_token();
    let stored = RefreshToken {
        token_hash: sha256_hex(token.as_bytes()),
        grant_id: grant.id.clone(),
        created_at: now,
        expires_at: grant.expires_at,
        used_at: None,
    };
    (token, stored)
}

/// The user, their groups and directory roles, in the caller's transaction.
pub(crate) fn load_subject(
    r: &mut dyn crate::store::Repo,
    id: &crate::domain::UserId,
) -> Result<Option<Subject>> {
    let Some(user) = r.user_by_id(id)? else {
        return Ok(None);
    };
    Ok(Some(Subject {
        groups: r
            .groups_of(&user.id)?
            .into_iter()
            .map(|g| g.name.to_string())
            .collect(),
        roles: r
            .roles_of(&user.id)?
            .into_iter()
            .map(|x| x.name.to_string())
            .collect(),
        elevations: Vec::new(),
        user,
    }))
}

/// When an access token issued at `now` ends: the client's lifetime,
/// capped by the server's maximum and (rule 2) by the earliest window.
pub(crate) fn access_token_expiry(
    client: &Client,
    max_lifetime: i64,
    subject: Option<&Subject>,
    now: chrono::DateTime<chrono::Utc>,
) -> chrono::DateTime<chrono::Utc> {
    let exp = now + Duration::seconds(client.access_token_ttl.min(max_lifetime));
    subject
        .and_then(|s| window_end(&s.elevations))
        .map_or(exp, |w| exp.min(w))
}

impl Services {
    pub async fn subject(&self, user_id: &str) -> Result<Option<Subject>> {
        let id = crate::domain::UserId::from_stored(user_id);
        self.db(move |r| load_subject(r, &id)).await
    }

    /// Signs the tokens for a grant. `scope` may be narrower than the grant's.
    pub fn mint_tokens(
        &self,
        client: &Client,
        grant: &Grant,
        scope: &[String],
        subject: Option<&Subject>,
        nonce: Option<&str>,
        refresh_token: Option<String>,
    ) -> Result<TokenResponse> {
        let now = self.now();
        // Rule 2: nothing carrying an elevation outlives its window.
        let window_end = subject.and_then(|s| window_end(&s.elevations));
        let cap = |t: chrono::DateTime<chrono::Utc>| window_end.map_or(t, |w| t.min(w));
        let exp = access_token_expiry(
            client,
            self.max_token_lifetime().num_seconds(),
            subject,
            now,
        );
        let at_ttl = (exp - now).num_seconds().max(0);
        let sub = subject
            .map(|s| s.user.id.to_string())
            .unwrap_or_else(|| client.client_id.clone());
        let mut at = json!({
            "iss": self.issuer,
            "sub": sub,
            "aud": client.client_id,
            "client_id": client.client_id,
            "iat": ts(now),
            "exp": ts(exp),
            "jti": format!("{}.{}", grant.id, &random_token()[..16]),
            "scope": scope::join(scope),
        });
        let profile = subject.map(|s| Profile {
            user: &s.user,
            groups: &s.groups,
            roles: &s.roles,
        });
        if let Some(p) = &profile {
            let m = at.as_object_mut().expect("object literal");
            for key in ["groups", "roles"] {
                if let Some(v) = user_claims(scope, p).remove(key) {
                    m.insert(key.into(), v);
                }
            }
            if let Some(s) = subject {
                add_elevation_claims(m, scope, s);
            }
            if let Some(t) = grant.auth_time {
                m.insert("auth_time".into(), json!(ts(t)));
            }
            if let Some(a) = &grant.acr {
                m.insert("acr".into(), json!(a));
            }
        }
        let access_token = self.sign_jwt(client.access_token_alg, ACCESS_TOKEN_TYP, &at)?;

        let id_token = match (&profile, scope.iter().any(|s| s == "openid")) {
            (Some(p), true) => {
                let id_ttl = client
                    .id_token_ttl
                    .min(self.max_token_lifetime().num_seconds());
                let mut claims: Map<String, Value> = user_claims(scope, p);
                claims.insert("iss".into(), json!(self.issuer));
                claims.insert("sub".into(), json!(p.user.id));
                claims.insert("aud".into(), json!(client.client_id));
                claims.insert("iat".into(), json!(ts(now)));
                claims.insert(
                    "exp".into(),
                    json!(ts(cap(now + Duration::seconds(id_ttl)))),
                );
                if let Some(s) = subject {
                    add_elevation_claims(&mut claims, scope, s);
                }
                claims.insert(
                    "at_hash".into(),
                    json!(left_half_hash(client.id_token_alg, &access_token)),
                );
                if let Some(t) = grant.auth_time {
                    claims.insert("auth_time".into(), json!(ts(t)));
                }
                if let Some(n) = nonce {
                    claims.insert("nonce".into(), json!(n));
                }
                if let Some(a) = &grant.acr {
                    claims.insert("acr".into(), json!(a));
                }
                if !grant.amr.is_empty() {
                    claims.insert("amr".into(), json!(grant.amr));
                }
                if let Some(d) = &grant.session_digest {
                    claims.insert("sid".into(), json!(sid_for(d)));
                }
                Some(self.sign_jwt(client.id_token_alg, "JWT", &Value::Object(claims))?)
            }
            _ => None,
        };
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: at_ttl,
            scope: scope::join(scope),
            refresh_token,
            id_token,
        })
    }

    /// Checks an access token: our signature, `at+jwt`, our issuer, not
    /// expired, not revoked, and its grant still live. Any of our algorithms
    /// will do: each client picks its own, and may change it while tokens
    /// signed with the old one are still out there.
    pub async fn verify_access_token(&self, token: &str) -> Result<AccessToken> {
        let signed = self.verify_access_token_signature(token).await?;
        let (now, idle) = (self.now(), self.idle_timeout()?);
        // Liveness in one round trip: the grant, its user, its session, the
        // revoked jti list and the elevation windows, read together.
        self.db(move |r| access_token_liveness_in(r, &signed, now, idle))
            .await?
    }

    /// The checks that need no database: signature, type, issuer, expiry.
    pub(crate) async fn verify_access_token_signature(
        &self,
        token: &str,
    ) -> Result<SignedAccessToken> {
        let header = jws::decode_header(token)
            .map_err(|_| invalid_token("the access token is malformed"))?;
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(invalid_token("not an access token"));
        }
        let ring = self.key_ring_for(token).await;
        let keys = ring.verifiers(self.now(), self.max_token_lifetime());
        let claims = jws::verify_with(token, &keys, &SigningAlg::ALL)
            .map_err(|_| invalid_token("the access token signature is not valid"))?;
        if claims["iss"].as_str() != Some(self.issuer.as_str()) {
            return Err(invalid_token("the access token was issued by someone else"));
        }
        if claims["exp"]
            .as_i64()
            .is_none_or(|e| e <= self.now().timestamp())
        {
            return Err(invalid_token("the access token has expired"));
        }
        Ok(SignedAccessToken { claims })
    }
}

fn invalid_token(why: &str) -> Error {
    Error::oauth(ErrorKind::Unauthenticated, "invalid_token", why.to_string())
}

/// An access token whose signature, issuer and expiry hold; whether it is
/// still live is for [`access_token_liveness_in`] to say.
#[derive(Clone)]
pub(crate) struct SignedAccessToken {
    claims: Value,
}

/// Whether a signed access token is still live, in the caller's
/// transaction: its grant, its `jti` not revoked, its user active, its
/// sign-in alive (unless granted for offline use) and (rule 4) every window
/// it carried still active. A refusal is `Ok(Err(..))`, so that a timed-out
/// session ended on the way stays ended.
pub(crate) fn access_token_liveness_in(
    r: &mut dyn Repo,
    signed: &SignedAccessToken,
    now: chrono::DateTime<chrono::Utc>,
    idle: Duration,
) -> Result<Result<AccessToken>> {
    let claims = &signed.claims;
    let jti = claims["jti"].as_str().unwrap_or("");
    let grant_id = jti.split('.').next().unwrap_or("");
    let activations: Vec<String> = claims["pim"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["activation"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let revoked = || Ok(Err(invalid_token("the access token has been revoked")));
    let Some(grant) = r.grant(grant_id)?.filter(|g| g.is_live(now)) else {
        return revoked();
    };
    if r.is_jti_revoked(jti)? {
        return revoked();
    }
    // A token of a user who was disabled since is dead too.
    let username = match &grant.user_id {
        Some(u) => match r.user_by_id(u)? {
            Some(u) if u.is_active() => Some(u.username.to_string()),
            _ => return revoked(),
        },
        None => None,
    };
    // And so is one whose sign-in has ended (a timed-out session is ended
    // here), unless it was granted for offline use.
    if !lifecycle::survives_session(r, &grant)?
        && let Some(d) = &grant.session_digest
        && lifecycle::live_session_in(r, d, now, idle)?.is_none()
    {
        return revoked();
    }
    if !crate::service::pim::elevations_still_active_in(r, &activations, now)? {
        return Ok(Err(invalid_token(
            "the elevation this token carried has ended",
        )));
    }
    Ok(Ok(AccessToken {
        claims: claims.clone(),
        grant,
        username,
    }))
}

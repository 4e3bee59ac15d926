//! Userinfo (OIDC Core 5.3), introspection (RFC 7662) and revocation (RFC 7009).

use super::client_auth::ClientCredentials;
use super::tokens::{SignedAccessToken, access_token_liveness_in};
use crate::crypto::sha256_hex;
use crate::domain::Grant;
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::oidc::claims::{Profile, user_claims};
use crate::protocol::oidc::scope;
use crate::service::Services;
use crate::store::Repo;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

enum Found {
    Access(super::tokens::AccessToken),
    Refresh {
        grant: Grant,
        expires_at: i64,
        live: bool,
        username: Option<String>,
    },
    Nothing,
}

impl Services {
    /// Claims about the token's user, as its scopes allow.
    pub async fn userinfo(&self, bearer: &str) -> Result<Value> {
        let token = self.verify_access_token(bearer).await?;
        let scopes = token.scope();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(Error::oauth(
                ErrorKind::Forbidden,
                "insufficient_scope",
                "userinfo needs the openid scope",
            ));
        }
        let user_id = token.claims["sub"].as_str().unwrap_or("").to_string();
        let subject = self
            .subject_for_issue(&user_id, token.grant.client_ip.as_deref())
            .await?;
        let subject = match (&token.grant.user_id, subject) {
            (Some(_), Some(s)) if s.user.is_active() => s,
            _ => {
                return Err(Error::oauth(
                    ErrorKind::Unauthenticated,
                    "invalid_token",
                    "the user is no longer active",
                ));
            }
        };
        let p = Profile {
            user: &subject.user,
            groups: &subject.groups,
            roles: &subject.roles,
        };
        let mut m: Map<String, Value> = user_claims(&scopes, &p);
        super::tokens::add_elevation_claims(&mut m, &scopes, &subject);
        m.insert("sub".into(), json!(subject.user.id));
        Ok(Value::Object(m))
    }

    /// What the presented token is, as far as can be told without the
    /// database: a signed access token (signature, issuer and expiry hold),
    /// something that may be a refresh token, or nothing of ours.
    async fn presented(&self, token: &str) -> Result<Presented> {
        if token.matches('.').count() != 2 {
            return Ok(Presented::Opaque(sha256_hex(token.as_bytes())));
        }
        match self.verify_access_token_signature(token).await {
            Ok(t) => Ok(Presented::Signed(t)),
            Err(e) if e.kind == ErrorKind::Unauthenticated => Ok(Presented::Nothing),
            Err(e) => Err(e),
        }
    }

    /// RFC 7662. A client learns only about tokens issued to it; anything
    /// else, like anything expired, revoked or unknown, is `active: false`.
    /// The client's authentication, the token's liveness and the names the
    /// answer carries are read in one transaction.
    pub async fn introspect(&self, creds: &ClientCredentials, token: &str) -> Result<Value> {
        let caller = self.caller(creds).await?;
        let presented = self.presented(token).await?;
        let (now, idle) = (self.now(), self.idle_timeout()?);
        let (client, found) = self
            .db(move |r| {
                let client = caller.client_in(r)?;
                let found = found_in(r, &presented, now, idle)?;
                Ok((client, found))
            })
            .await?;
        Ok(match found {
            Found::Access(t) if t.grant.client_id == client.client_id => {
                let mut v = t.claims.clone();
                v["active"] = json!(true);
                v["token_type"] = json!("Bearer");
                if let Some(name) = &t.username {
                    v["username"] = json!(name);
                }
                v
            }
            Found::Refresh {
                grant,
                expires_at,
                live: true,
                username,
            } if grant.client_id == client.client_id => {
                let mut v = json!({
                    "active": true,
                    "token_type": "refresh_token",
                    "client_id": grant.client_id,
                    "scope": scope::join(&grant.scope),
                    "exp": expires_at,
                    "iat": grant.created_at.timestamp(),
                    "iss": self.issuer,
                });
                if let Some(u) = &grant.user_id {
                    v["sub"] = json!(u);
                }
                if let Some(name) = username {
                    v["username"] = json!(name);
                }
                v
            }
            _ => json!({"active": false}),
        })
    }

    /// RFC 7009: revoking a refresh token ends its grant; revoking an access
    /// token ends that token. Unknown tokens and other clients' tokens are
    /// ignored without saying so. One transaction, like introspection.
    pub async fn revoke(&self, creds: &ClientCredentials, token: &str) -> Result<()> {
        let caller = self.caller(creds).await?;
        let presented = self.presented(token).await?;
        let (now, idle) = (self.now(), self.idle_timeout()?);
        self.db(move |r| {
            let client = caller.client_in(r)?;
            let (action, detail) = match found_in(r, &presented, now, idle)? {
                Found::Access(t) if t.grant.client_id == client.client_id => {
                    let jti = t.claims["jti"].as_str().unwrap_or("").to_string();
                    let exp = t.claims["exp"].as_i64().unwrap_or(0);
                    let exp = chrono::DateTime::from_timestamp(exp, 0).unwrap_or(now);
                    r.revoke_jti(&jti, exp)?;
                    ("oidc.revoke_access_token", json!({"jti": jti}))
                }
                Found::Refresh { grant, .. } if grant.client_id == client.client_id => {
                    r.revoke_grant(&grant.id, now)?;
                    ("oidc.revoke_grant", json!({"grant": grant.id}))
                }
                _ => return Ok(()),
            };
            let system = crate::service::Actor::system();
            crate::service::record(r, now, &system, action, &client.client_id, detail)
        })
        .await
    }
}

/// A presented token, before its liveness is read.
enum Presented {
    Signed(SignedAccessToken),
    /// The SHA-256 of what may be a refresh token.
    Opaque(String),
    Nothing,
}

/// The token behind `presented`, in the caller's transaction. A dead
/// access token is `Nothing`; a refresh token is found whatever its state.
fn found_in(
    r: &mut dyn Repo,
    presented: &Presented,
    now: DateTime<Utc>,
    idle: chrono::Duration,
) -> Result<Found> {
    Ok(match presented {
        Presented::Signed(t) => match access_token_liveness_in(r, t, now, idle)? {
            Ok(t) => Found::Access(t),
            Err(_) => Found::Nothing,
        },
        Presented::Opaque(hash) => {
            let Some(t) = r.refresh_token(hash)? else {
                return Ok(Found::Nothing);
            };
            let Some(g) = r.grant(&t.grant_id)? else {
                return Ok(Found::Nothing);
            };
            let username = match &g.user_id {
                Some(id) => r.user_by_id(id)?.map(|u| u.username.to_string()),
                None => None,
            };
            Found::Refresh {
                live: t.used_at.is_none() && t.expires_at > now && g.is_live(now),
                expires_at: t.expires_at.timestamp(),
                grant: g,
                username,
            }
        }
        Presented::Nothing => Found::Nothing,
    })
}

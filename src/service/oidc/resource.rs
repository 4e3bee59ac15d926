//! Userinfo (OIDC Core 5.3), introspection (RFC 7662) and revocation (RFC 7009).

use crate::crypto::sha256_hex;
use crate::domain::{Client, Grant};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::oidc::claims::{Profile, user_claims};
use crate::protocol::oidc::scope;
use crate::service::Services;
use serde_json::{Map, Value, json};

enum Found {
    Access(super::tokens::AccessToken),
    Refresh {
        grant: Grant,
        expires_at: i64,
        live: bool,
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

    async fn find_token(&self, token: &str) -> Result<Found> {
        if token.matches('.').count() == 2 {
            return Ok(match self.verify_access_token(token).await {
                Ok(t) => Found::Access(t),
                Err(e) if e.kind == ErrorKind::Unauthenticated => Found::Nothing,
                Err(e) => return Err(e),
            });
        }
        let hash = sha256_hex(token.as_bytes());
        let now = self.now();
        let found = self
            .db(move |r| match r.refresh_token(&hash)? {
                Some(t) => Ok(r.grant(&t.grant_id)?.map(|g| (t, g))),
                None => Ok(None),
            })
            .await?;
        Ok(match found {
            Some((t, g)) => Found::Refresh {
                live: t.used_at.is_none() && t.expires_at > now && g.is_live(now),
                expires_at: t.expires_at.timestamp(),
                grant: g,
            },
            None => Found::Nothing,
        })
    }

    /// RFC 7662. A client learns only about tokens issued to it; anything
    /// else, like anything expired, revoked or unknown, is `active: false`.
    pub async fn introspect(&self, caller: &Client, token: &str) -> Result<Value> {
        let inactive = json!({"active": false});
        Ok(match self.find_token(token).await? {
            Found::Access(t) if t.grant.client_id == caller.client_id => {
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
            } if grant.client_id == caller.client_id => {
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
                if let Some(name) = self.username_of(&grant).await? {
                    v["username"] = json!(name);
                }
                v
            }
            _ => inactive,
        })
    }

    async fn username_of(&self, grant: &Grant) -> Result<Option<String>> {
        let Some(id) = grant.user_id.clone() else {
            return Ok(None);
        };
        Ok(self
            .db(move |r| r.user_by_id(&id))
            .await?
            .map(|u| u.username.to_string()))
    }

    /// RFC 7009: revoking a refresh token ends its grant; revoking an access
    /// token ends that token. Unknown tokens and other clients' tokens are
    /// ignored without saying so.
    pub async fn revoke(&self, caller: &Client, token: &str) -> Result<()> {
        let now = self.now();
        match self.find_token(token).await? {
            Found::Access(t) if t.grant.client_id == caller.client_id => {
                let jti = t.claims["jti"].as_str().unwrap_or("").to_string();
                let exp =
                    chrono::DateTime::from_timestamp(t.claims["exp"].as_i64().unwrap_or(0), 0)
                        .unwrap_or(now);
                let cid = caller.client_id.clone();
                self.db(move |r| {
                    r.revoke_jti(&jti, exp)?;
                    crate::service::record(
                        r,
                        now,
                        &crate::service::Actor::system(),
                        "oidc.revoke_access_token",
                        &cid,
                        json!({"jti": jti}),
                    )
                })
                .await
            }
            Found::Refresh { grant, .. } if grant.client_id == caller.client_id => {
                let cid = caller.client_id.clone();
                self.db(move |r| {
                    r.revoke_grant(&grant.id, now)?;
                    crate::service::record(
                        r,
                        now,
                        &crate::service::Actor::system(),
                        "oidc.revoke_grant",
                        &cid,
                        json!({"grant": grant.id}),
                    )
                })
                .await
            }
            _ => Ok(()),
        }
    }
}

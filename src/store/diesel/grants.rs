//! Grants, refresh tokens, revoked access tokens and signing keys.

use super::clients::{from_json, to_json};
use super::schema::{grants as g, refresh_tokens as rt, revoked_tokens, signing_keys as k};
use super::{DbConn, from_ts, to_ts};
use crate::domain::{Grant, RefreshToken, SigningAlg, StoredKey, UserId};
use crate::error::{Error, Result};
use crate::store::{GrantRepo, KeyRepo};
use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

/// The advisory lock under which nodes starting together create what must
/// exist once.
const FIRST_START_LOCK: i64 = 0x0066_6972_7374;

#[derive(Queryable, Insertable)]
#[diesel(table_name = g)]
struct GrantRow {
    id: String,
    client_id: String,
    user_id: Option<String>,
    session_digest: Option<String>,
    scope: String,
    auth_time: Option<i64>,
    acr: Option<String>,
    amr: String,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    client_ip: Option<String>,
    activation_id: Option<String>,
}

impl GrantRow {
    fn from_domain(x: &Grant) -> Self {
        Self {
            id: x.id.clone(),
            client_id: x.client_id.clone(),
            user_id: x.user_id.as_ref().map(|u| u.to_string()),
            session_digest: x.session_digest.clone(),
            scope: x.scope.join(" "),
            auth_time: x.auth_time.map(to_ts),
            acr: x.acr.clone(),
            amr: x.amr.join(" "),
            created_at: to_ts(x.created_at),
            expires_at: to_ts(x.expires_at),
            revoked_at: x.revoked_at.map(to_ts),
            client_ip: x.client_ip.clone(),
            activation_id: x.activation_id.clone(),
        }
    }

    fn into_domain(self) -> Grant {
        Grant {
            id: self.id,
            client_id: self.client_id,
            user_id: self.user_id.map(UserId::from_stored),
            session_digest: self.session_digest,
            scope: self.scope.split_whitespace().map(str::to_string).collect(),
            auth_time: self.auth_time.map(from_ts),
            acr: self.acr,
            amr: self.amr.split_whitespace().map(str::to_string).collect(),
            created_at: from_ts(self.created_at),
            expires_at: from_ts(self.expires_at),
            revoked_at: self.revoked_at.map(from_ts),
            client_ip: self.client_ip,
            activation_id: self.activation_id,
        }
    }
}

type RefreshRow = (String, String, i64, i64, Option<i64>);

impl GrantRepo for DbConn {
    fn insert_grant(&mut self, grant: &Grant) -> Result<()> {
        diesel::insert_into(g::table)
            .values(GrantRow::from_domain(grant))
            .execute(self)?;
        Ok(())
    }

    fn grant(&mut self, id: &str) -> Result<Option<Grant>> {
        Ok(g::table
            .find(id)
            .first::<GrantRow>(self)
            .optional()?
            .map(GrantRow::into_domain))
    }

    fn revoke_grant(&mut self, id: &str, now: DateTime<Utc>) -> Result<()> {
        diesel::update(g::table.find(id).filter(g::revoked_at.is_null()))
            .set(g::revoked_at.eq(Some(to_ts(now))))
            .execute(self)?;
        Ok(())
    }

    fn revoke_grants_of_user(
        &mut self,
        user: &UserId,
        keep: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mine = g::table
            .filter(g::user_id.eq(user.as_str()))
            .filter(g::revoked_at.is_null());
        let set = g::revoked_at.eq(Some(to_ts(now)));
        Ok(match keep {
            None => diesel::update(mine).set(set).execute(self)?,
            Some(k) => {
                diesel::update(mine.filter(g::session_digest.ne(k).or(g::session_digest.is_null())))
                    .set(set)
                    .execute(self)?
            }
        } as u64)
    }

    fn grants_of_session(&mut self, session_digest: &str) -> Result<Vec<Grant>> {
        Ok(g::table
            .filter(g::session_digest.eq(session_digest))
            .filter(g::revoked_at.is_null())
            .order(g::created_at.asc())
            .load::<GrantRow>(self)?
            .into_iter()
            .map(GrantRow::into_domain)
            .collect())
    }

    fn grants_of_client(&mut self, client_id: &str) -> Result<Vec<Grant>> {
        Ok(g::table
            .filter(g::client_id.eq(client_id))
            .order(g::created_at.asc())
            .load::<GrantRow>(self)?
            .into_iter()
            .map(GrantRow::into_domain)
            .collect())
    }

    fn insert_refresh_token(&mut self, t: &RefreshToken) -> Result<()> {
        diesel::insert_into(rt::table)
            .values((
                rt::token_hash.eq(&t.token_hash),
                rt::grant_id.eq(&t.grant_id),
                rt::created_at.eq(to_ts(t.created_at)),
                rt::expires_at.eq(to_ts(t.expires_at)),
                rt::used_at.eq(t.used_at.map(to_ts)),
            ))
            .execute(self)?;
        Ok(())
    }

    fn refresh_token(&mut self, token_hash: &str) -> Result<Option<RefreshToken>> {
        Ok(rt::table
            .find(token_hash)
            .first::<RefreshRow>(self)
            .optional()?
            .map(|r| RefreshToken {
                token_hash: r.0,
                grant_id: r.1,
                created_at: from_ts(r.2),
                expires_at: from_ts(r.3),
                used_at: r.4.map(from_ts),
            }))
    }

    fn use_refresh_token(&mut self, token_hash: &str, now: DateTime<Utc>) -> Result<bool> {
        let n = diesel::update(rt::table.find(token_hash).filter(rt::used_at.is_null()))
            .set(rt::used_at.eq(Some(to_ts(now))))
            .execute(self)?;
        Ok(n == 1)
    }

    fn revoke_jti(&mut self, jti: &str, expires_at: DateTime<Utc>) -> Result<()> {
        if self.is_jti_revoked(jti)? {
            return Ok(());
        }
        diesel::insert_into(revoked_tokens::table)
            .values((
                revoked_tokens::jti.eq(jti),
                revoked_tokens::expires_at.eq(to_ts(expires_at)),
            ))
            .execute(self)?;
        Ok(())
    }

    fn is_jti_revoked(&mut self, jti: &str) -> Result<bool> {
        Ok(revoked_tokens::table
            .find(jti)
            .count()
            .get_result::<i64>(self)?
            > 0)
    }

    fn purge_expired_grants(&mut self, now: DateTime<Utc>) -> Result<u64> {
        let t = to_ts(now);
        let a = diesel::delete(rt::table.filter(rt::expires_at.le(t))).execute(self)?;
        let b = diesel::delete(revoked_tokens::table.filter(revoked_tokens::expires_at.le(t)))
            .execute(self)?;
        let c = diesel::delete(g::table.filter(g::expires_at.le(t))).execute(self)?;
        Ok((a + b + c) as u64)
    }
}

type KeyRow = (String, String, String, String, i64, i64);

impl KeyRepo for DbConn {
    fn insert_key(&mut self, key: &StoredKey) -> Result<()> {
        diesel::insert_into(k::table)
            .values((
                k::kid.eq(&key.kid),
                k::alg.eq(key.alg.as_str()),
                k::private_key.eq(&key.sealed_private_key),
                k::public_jwk.eq(to_json(&key.public_jwk)),
                k::created_at.eq(to_ts(key.created_at)),
                k::activates_at.eq(to_ts(key.activates_at)),
            ))
            .execute(self)?;
        Ok(())
    }

    fn lock_first_start(&mut self) -> Result<()> {
        if matches!(self, DbConn::Pg(_)) {
            self.batch_execute(&format!("SELECT pg_advisory_xact_lock({FIRST_START_LOCK})"))?;
        }
        Ok(())
    }

    fn keys(&mut self) -> Result<Vec<StoredKey>> {
        k::table
            .order(k::activates_at.asc())
            .load::<KeyRow>(self)?
            .into_iter()
            .map(|r| {
                Ok(StoredKey {
                    alg: SigningAlg::parse(&r.1)
                        .ok_or_else(|| Error::internal(format!("stored key alg {}", r.1)))?,
                    kid: r.0,
                    sealed_private_key: r.2,
                    public_jwk: from_json("public JWK", &r.3)?,
                    created_at: from_ts(r.4),
                    activates_at: from_ts(r.5),
                })
            })
            .collect()
    }

    fn delete_key(&mut self, kid: &str) -> Result<()> {
        diesel::delete(k::table.find(kid)).execute(self)?;
        Ok(())
    }
}

use super::schema::{invites as inv, webauthn_credentials as wc};
use super::{DbConn, from_ts, to_ts};
use crate::domain::UserId;
use crate::error::Result;
use crate::store::{InviteRepo, PasskeyRepo, StoredInvite, StoredPasskey};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

#[derive(Queryable, Insertable)]
#[diesel(table_name = wc)]
struct PasskeyRow {
    id: String,
    user_id: String,
    credential_id: String,
    name: String,
    discoverable: bool,
    credential: String,
    aaguid: Option<String>,
    sign_count: i64,
    backup_eligible: bool,
    backup_state: bool,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl PasskeyRow {
    fn from_domain(p: &StoredPasskey) -> Self {
        Self {
            id: p.id.clone(),
            user_id: p.user_id.to_string(),
            credential_id: p.credential_id.clone(),
            name: p.name.clone(),
            discoverable: p.discoverable,
            credential: p.credential.clone(),
            aaguid: p.aaguid.clone(),
            sign_count: p.sign_count,
            backup_eligible: p.backup_eligible,
            backup_state: p.backup_state,
            created_at: to_ts(p.created_at),
            last_used_at: p.last_used_at.map(to_ts),
        }
    }

    fn into_domain(self) -> StoredPasskey {
        StoredPasskey {
            id: self.id,
            user_id: UserId::from_stored(self.user_id),
            credential_id: self.credential_id,
            name: self.name,
            discoverable: self.discoverable,
            credential: self.credential,
            aaguid: self.aaguid,
            sign_count: self.sign_count,
            backup_eligible: self.backup_eligible,
            backup_state: self.backup_state,
            created_at: from_ts(self.created_at),
            last_used_at: self.last_used_at.map(from_ts),
        }
    }
}

impl PasskeyRepo for DbConn {
    fn insert_passkey(&mut self, p: &StoredPasskey) -> Result<()> {
        diesel::insert_into(wc::table)
            .values(PasskeyRow::from_domain(p))
            .execute(self)?;
        Ok(())
    }

    fn passkeys_of(&mut self, user: &UserId) -> Result<Vec<StoredPasskey>> {
        Ok(wc::table
            .filter(wc::user_id.eq(user.as_str()))
            .order((wc::created_at.asc(), wc::id.asc()))
            .load::<PasskeyRow>(self)?
            .into_iter()
            .map(PasskeyRow::into_domain)
            .collect())
    }

    fn passkey_by_credential_id(&mut self, credential_id: &str) -> Result<Option<StoredPasskey>> {
        Ok(wc::table
            .filter(wc::credential_id.eq(credential_id))
            .first::<PasskeyRow>(self)
            .optional()?
            .map(PasskeyRow::into_domain))
    }

    fn record_passkey_use(
        &mut self,
        id: &str,
        credential: &str,
        sign_count: i64,
        backup_state: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        diesel::update(wc::table.find(id))
            .set((
                wc::credential.eq(credential),
                wc::sign_count.eq(sign_count),
                wc::backup_state.eq(backup_state),
                wc::last_used_at.eq(Some(to_ts(now))),
            ))
            .execute(self)?;
        Ok(())
    }

    fn rename_passkey(&mut self, user: &UserId, id: &str, name: &str) -> Result<bool> {
        let n = diesel::update(wc::table.find(id).filter(wc::user_id.eq(user.as_str())))
            .set(wc::name.eq(name))
            .execute(self)?;
        Ok(n == 1)
    }

    fn delete_passkey(&mut self, user: &UserId, id: &str) -> Result<bool> {
        let n = diesel::delete(wc::table.find(id).filter(wc::user_id.eq(user.as_str())))
            .execute(self)?;
        Ok(n == 1)
    }
}

impl InviteRepo for DbConn {
    fn insert_invite(&mut self, i: &StoredInvite) -> Result<()> {
        diesel::insert_into(inv::table)
            .values((
                inv::digest.eq(&i.digest),
                inv::user_id.eq(i.user_id.as_str()),
                inv::created_at.eq(to_ts(i.created_at)),
                inv::expires_at.eq(to_ts(i.expires_at)),
                inv::used_at.eq(i.used_at.map(to_ts)),
            ))
            .execute(self)?;
        Ok(())
    }

    fn invite(&mut self, digest: &str) -> Result<Option<StoredInvite>> {
        Ok(inv::table
            .find(digest)
            .select((
                inv::digest,
                inv::user_id,
                inv::created_at,
                inv::expires_at,
                inv::used_at,
            ))
            .first::<(String, String, i64, i64, Option<i64>)>(self)
            .optional()?
            .map(|(digest, user, created, expires, used)| StoredInvite {
                digest,
                user_id: UserId::from_stored(user),
                created_at: from_ts(created),
                expires_at: from_ts(expires),
                used_at: used.map(from_ts),
            }))
    }

    fn spend_invite(&mut self, digest: &str, now: DateTime<Utc>) -> Result<bool> {
        let n = diesel::update(inv::table.find(digest).filter(inv::used_at.is_null()))
            .set(inv::used_at.eq(Some(to_ts(now))))
            .execute(self)?;
        Ok(n == 1)
    }

    fn void_invites_of(&mut self, user: &UserId, now: DateTime<Utc>) -> Result<()> {
        diesel::update(
            inv::table
                .filter(inv::user_id.eq(user.as_str()))
                .filter(inv::used_at.is_null()),
        )
        .set(inv::used_at.eq(Some(to_ts(now))))
        .execute(self)?;
        Ok(())
    }
}

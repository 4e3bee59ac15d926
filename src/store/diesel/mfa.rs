use super::schema::{recovery_codes as rc, totp_credentials as tc};
use super::{DbConn, from_ts, to_ts};
use crate::domain::UserId;
use crate::error::Result;
use crate::store::{MfaRepo, StoredRecoveryCode, StoredTotp};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

impl MfaRepo for DbConn {
    fn totp(&mut self, user: &UserId) -> Result<Option<StoredTotp>> {
        Ok(tc::table
            .find(user.as_str())
            .select((tc::secret, tc::created_at, tc::last_step))
            .first::<(String, i64, i64)>(self)
            .optional()?
            .map(|(s, c, l)| StoredTotp {
                sealed_secret: s,
                created_at: from_ts(c),
                last_step: l,
            }))
    }

    fn set_totp(&mut self, user: &UserId, t: &StoredTotp) -> Result<()> {
        diesel::delete(tc::table.find(user.as_str())).execute(self)?;
        diesel::insert_into(tc::table)
            .values((
                tc::user_id.eq(user.as_str()),
                tc::secret.eq(&t.sealed_secret),
                tc::created_at.eq(to_ts(t.created_at)),
                tc::last_step.eq(t.last_step),
            ))
            .execute(self)?;
        Ok(())
    }

    fn delete_totp(&mut self, user: &UserId) -> Result<()> {
        diesel::delete(tc::table.find(user.as_str())).execute(self)?;
        Ok(())
    }

    fn advance_totp_step(&mut self, user: &UserId, step: i64) -> Result<bool> {
        let n = diesel::update(tc::table.find(user.as_str()).filter(tc::last_step.lt(step)))
            .set(tc::last_step.eq(step))
            .execute(self)?;
        Ok(n == 1)
    }

    fn recovery_codes(&mut self, user: &UserId) -> Result<Vec<StoredRecoveryCode>> {
        Ok(rc::table
            .filter(rc::user_id.eq(user.as_str()))
            .select((rc::id, rc::code_hash, rc::used_at))
            .load::<(String, String, Option<i64>)>(self)?
            .into_iter()
            .map(|(id, code_hash, used)| StoredRecoveryCode {
                id,
                code_hash,
                used: used.is_some(),
            })
            .collect())
    }

    fn replace_recovery_codes(
        &mut self,
        user: &UserId,
        hashes: &[String],
        now: DateTime<Utc>,
    ) -> Result<()> {
        diesel::delete(rc::table.filter(rc::user_id.eq(user.as_str()))).execute(self)?;
        for h in hashes {
            diesel::insert_into(rc::table)
                .values((
                    rc::id.eq(uuid::Uuid::new_v4().simple().to_string()),
                    rc::user_id.eq(user.as_str()),
                    rc::code_hash.eq(h),
                    rc::created_at.eq(to_ts(now)),
                ))
                .execute(self)?;
        }
        Ok(())
    }

    fn spend_recovery_code(&mut self, id: &str, now: DateTime<Utc>) -> Result<bool> {
        let n = diesel::update(rc::table.find(id).filter(rc::used_at.is_null()))
            .set(rc::used_at.eq(Some(to_ts(now))))
            .execute(self)?;
        Ok(n == 1)
    }
}

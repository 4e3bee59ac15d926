use super::schema::browser_sessions as s;
use super::{DbConn, from_ts, to_ts};
use crate::domain::{Session, UserId};
use crate::error::Result;
use crate::store::SessionRepo;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use std::collections::BTreeMap;

#[derive(Queryable, Insertable)]
#[diesel(table_name = s)]
struct SessionRow {
    id_digest: String,
    user_id: String,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    auth_time: i64,
    amr: String,
    ip: Option<String>,
    user_agent: Option<String>,
    factors: String,
}

fn factors_json(f: &BTreeMap<String, DateTime<Utc>>) -> String {
    let m: BTreeMap<&str, i64> = f.iter().map(|(k, v)| (k.as_str(), to_ts(*v))).collect();
    serde_json::to_string(&m).unwrap_or_else(|_| "{}".into())
}

fn factors_from_json(s: &str) -> BTreeMap<String, DateTime<Utc>> {
    serde_json::from_str::<BTreeMap<String, i64>>(s)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, from_ts(v)))
        .collect()
}

impl SessionRow {
    fn from_domain(x: &Session) -> Self {
        Self {
            id_digest: x.id_digest.clone(),
            user_id: x.user_id.to_string(),
            created_at: to_ts(x.created_at),
            last_seen_at: to_ts(x.last_seen_at),
            expires_at: to_ts(x.expires_at),
            auth_time: to_ts(x.auth_time),
            amr: x.amr.join(" "),
            ip: x.ip.clone(),
            user_agent: x.user_agent.clone(),
            factors: factors_json(&x.factors),
        }
    }

    fn into_domain(self) -> Session {
        Session {
            id_digest: self.id_digest,
            user_id: UserId::from_stored(self.user_id),
            created_at: from_ts(self.created_at),
            last_seen_at: from_ts(self.last_seen_at),
            expires_at: from_ts(self.expires_at),
            auth_time: from_ts(self.auth_time),
            amr: self.amr.split_whitespace().map(str::to_string).collect(),
            ip: self.ip,
            user_agent: self.user_agent,
            factors: factors_from_json(&self.factors),
        }
    }
}

impl SessionRepo for DbConn {
    fn insert_session(&mut self, session: &Session) -> Result<()> {
        diesel::insert_into(s::table)
            .values(SessionRow::from_domain(session))
            .execute(self)?;
        Ok(())
    }

    fn session(&mut self, id_digest: &str) -> Result<Option<Session>> {
        Ok(s::table
            .find(id_digest)
            .first::<SessionRow>(self)
            .optional()?
            .map(SessionRow::into_domain))
    }

    fn touch_session(&mut self, id_digest: &str, now: DateTime<Utc>) -> Result<()> {
        diesel::update(s::table.find(id_digest))
            .set(s::last_seen_at.eq(to_ts(now)))
            .execute(self)?;
        Ok(())
    }

    fn record_factors(
        &mut self,
        id_digest: &str,
        amr: &[String],
        factors: &BTreeMap<String, DateTime<Utc>>,
        auth_time: DateTime<Utc>,
    ) -> Result<()> {
        diesel::update(s::table.find(id_digest))
            .set((
                s::amr.eq(amr.join(" ")),
                s::factors.eq(factors_json(factors)),
                s::auth_time.eq(to_ts(auth_time)),
            ))
            .execute(self)?;
        Ok(())
    }

    fn delete_session(&mut self, id_digest: &str) -> Result<()> {
        diesel::delete(s::table.find(id_digest)).execute(self)?;
        Ok(())
    }

    fn delete_sessions_of(&mut self, user: &UserId) -> Result<u64> {
        Ok(diesel::delete(s::table.filter(s::user_id.eq(user.as_str()))).execute(self)? as u64)
    }

    fn sessions_of(&mut self, user: &UserId) -> Result<Vec<Session>> {
        Ok(s::table
            .filter(s::user_id.eq(user.as_str()))
            .order(s::last_seen_at.desc())
            .load::<SessionRow>(self)?
            .into_iter()
            .map(SessionRow::into_domain)
            .collect())
    }

    fn delete_expired_sessions(&mut self, now: DateTime<Utc>) -> Result<u64> {
        Ok(diesel::delete(s::table.filter(s::expires_at.le(to_ts(now)))).execute(self)? as u64)
    }

    fn timed_out_sessions(
        &mut self,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Session>> {
        Ok(s::table
            .filter(
                s::expires_at
                    .le(to_ts(now))
                    .or(s::last_seen_at.le(to_ts(idle_since))),
            )
            .order(s::expires_at.asc())
            .limit(limit)
            .load::<SessionRow>(self)?
            .into_iter()
            .map(SessionRow::into_domain)
            .collect())
    }
}

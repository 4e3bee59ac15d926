//! The hash-chained audit log and the small key/value `meta` table.

use super::schema::{audit_log as a, meta};
use super::{DbConn, from_ts, to_ts};
use crate::crypto::audit::AuditKey;
use crate::domain::{AuditEntry, NewAuditEntry};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{AuditRepo, MetaRepo};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use std::cell::RefCell;
use std::sync::Arc;

pub use crate::crypto::AUDIT_GENESIS as GENESIS;

/// Advisory-lock key for appends to the audit chain.
const AUDIT_LOCK: i64 = 0x0061_7564_6974;

thread_local! {
    /// The audit key of the store whose transaction runs on this thread.
    /// A transaction runs start to end on one thread, so the repository
    /// methods (which see only the connection) find the key here.
    static KEY: RefCell<Option<Arc<AuditKey>>> = const { RefCell::new(None) };
}

/// Makes `key` the audit key on this thread until dropped.
pub(super) struct KeyScope(Option<Arc<AuditKey>>);

impl KeyScope {
    pub(super) fn enter(key: Option<Arc<AuditKey>>) -> Self {
        Self(KEY.with(|k| k.replace(key)))
    }
}

impl Drop for KeyScope {
    fn drop(&mut self) {
        let outer = self.0.take();
        KEY.with(|k| *k.borrow_mut() = outer);
    }
}

fn current_key() -> Result<Arc<AuditKey>> {
    KEY.with(|k| k.borrow().clone())
        .ok_or_else(|| Error::internal("the audit log is read-only here: no audit key was given"))
}

type AuditRow = (
    i64,
    i64,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
);

fn entry_from(r: AuditRow) -> AuditEntry {
    AuditEntry {
        seq: r.0,
        entry: NewAuditEntry {
            at: from_ts(r.1),
            actor: r.2,
            action: r.3,
            subject: r.4,
            ip: r.5,
            detail: serde_json::from_str(&r.6).unwrap_or(serde_json::Value::String(r.6)),
        },
        prev_hash: r.7,
        hash: r.8,
    }
}

impl AuditRepo for DbConn {
    fn append_audit(&mut self, e: &NewAuditEntry) -> Result<AuditEntry> {
        let key = current_key()?;
        if matches!(self, DbConn::Pg(_)) {
            // Writers take turns on the chain's tail until they commit, so
            // concurrent appends queue instead of colliding. (SQLite's
            // BEGIN IMMEDIATE already serialises writers.)
            self.batch_execute(&format!("SELECT pg_advisory_xact_lock({AUDIT_LOCK})"))?;
        }
        let last: Option<(i64, String)> = a::table
            .order(a::seq.desc())
            .select((a::seq, a::hash))
            .first(self)
            .optional()?;
        let (seq, prev_hash) = match last {
            Some((s, h)) => (s + 1, h),
            None => (1, GENESIS.to_string()),
        };
        let entry = AuditEntry {
            seq,
            entry: e.clone(),
            hash: key.tag(&prev_hash, seq, e),
            prev_hash,
        };
        diesel::insert_into(a::table)
            .values((
                a::seq.eq(seq),
                a::at.eq(to_ts(e.at)),
                a::actor.eq(&e.actor),
                a::action.eq(&e.action),
                a::subject.eq(&e.subject),
                a::ip.eq(&e.ip),
                a::detail.eq(e.detail.to_string()),
                a::prev_hash.eq(&entry.prev_hash),
                a::hash.eq(&entry.hash),
            ))
            .execute(self)
            .map_err(|err| {
                let err = Error::from(err);
                if err.kind == ErrorKind::Conflict {
                    // Another writer took this sequence number; rerun the transaction.
                    Error::new(ErrorKind::Contention, "please retry")
                        .with_detail("audit sequence taken")
                } else {
                    err
                }
            })?;
        Ok(entry)
    }

    fn recent_audit(&mut self, limit: i64) -> Result<Vec<AuditEntry>> {
        Ok(a::table
            .order(a::seq.desc())
            .limit(limit)
            .load::<AuditRow>(self)?
            .into_iter()
            .map(entry_from)
            .collect())
    }

    fn audit_after(&mut self, after: i64, limit: i64) -> Result<Vec<AuditEntry>> {
        Ok(a::table
            .filter(a::seq.gt(after))
            .order(a::seq.asc())
            .limit(limit)
            .load::<AuditRow>(self)?
            .into_iter()
            .map(entry_from)
            .collect())
    }

    fn count_audit(
        &mut self,
        action: &str,
        subject: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<i64> {
        Ok(a::table
            .filter(a::action.eq(action))
            .filter(a::subject.eq(subject))
            .filter(a::at.ge(to_ts(since)))
            .count()
            .get_result(self)?)
    }

    fn audit_ips(
        &mut self,
        action: &str,
        subject: &str,
        before: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> Result<Vec<String>> {
        Ok(a::table
            .filter(a::action.eq(action))
            .filter(a::subject.eq(subject))
            .filter(a::at.lt(to_ts(before)))
            .filter(a::ip.is_not_null())
            .select(a::ip.assume_not_null())
            .distinct()
            .limit(limit)
            .load(self)?)
    }
}

impl MetaRepo for DbConn {
    fn meta(&mut self, key: &str) -> Result<Option<String>> {
        Ok(meta::table
            .find(key)
            .select(meta::value)
            .first(self)
            .optional()?)
    }

    fn insert_meta(&mut self, key: &str, value: &str) -> Result<()> {
        diesel::insert_into(meta::table)
            .values((meta::key.eq(key), meta::value.eq(value)))
            .execute(self)?;
        Ok(())
    }
}

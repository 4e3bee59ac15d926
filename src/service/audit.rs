//! Reading and verifying the audit chain.

use super::Services;
use crate::crypto::audit::{ChainCheck, Checkpoint, KEYED_AFTER};
use crate::domain::AuditEntry;
use crate::error::Result;

const PAGE: i64 = 1000;

/// What a walk over the whole chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Entries verified (up to the break, if there is one).
    pub entries: i64,
    /// Entries written before keying began (checked by plain hash only).
    pub unkeyed: i64,
    /// The head reached: sequence number and tag of the last entry.
    pub head: Option<Checkpoint>,
    /// Why the chain does not hold, in one line.
    pub problem: Option<String>,
}

impl Services {
    pub async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        self.db(move |r| r.recent_audit(limit)).await
    }

    /// Walks the whole chain and recomputes every link; with a
    /// `checkpoint`, also checks that the chain still reaches it unchanged.
    pub async fn verify_audit(&self, checkpoint: Option<Checkpoint>) -> Result<ChainReport> {
        let marker = self.db(|r| r.meta(KEYED_AFTER)).await?;
        let Some(keyed_after) = marker.and_then(|v| v.parse::<i64>().ok()) else {
            return Ok(ChainReport {
                entries: 0,
                unkeyed: 0,
                head: None,
                problem: Some(format!(
                    "the audit log's keying marker ({KEYED_AFTER} in the meta table) is missing or altered"
                )),
            });
        };
        let key = self.keys.audit_key();
        let mut check = ChainCheck::new(&key, keyed_after, checkpoint);
        let broken = |check: &ChainCheck, problem: String| ChainReport {
            entries: check.entries(),
            unkeyed: keyed_after.min(check.entries()),
            head: None,
            problem: Some(problem),
        };
        loop {
            let after = check.entries();
            let page = self.db(move |r| r.audit_after(after, PAGE)).await?;
            if page.is_empty() {
                break;
            }
            for e in &page {
                if let Err(problem) = check.step(e) {
                    return Ok(broken(&check, problem));
                }
            }
        }
        let entries = check.entries();
        Ok(match check.finish() {
            Ok(head) => ChainReport {
                entries,
                unkeyed: keyed_after.min(entries),
                head: Some(head),
                problem: None,
            },
            Err(problem) => ChainReport {
                entries,
                unkeyed: keyed_after.min(entries),
                head: None,
                problem: Some(problem),
            },
        })
    }
}

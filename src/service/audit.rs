//! Reading and verifying the audit chain.

use super::Services;
use crate::crypto::AUDIT_GENESIS as GENESIS;
use crate::crypto::audit_chain_hash;
use crate::domain::AuditEntry;
use crate::error::Result;

const PAGE: i64 = 1000;

/// Where the chain breaks, if it does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainReport {
    pub entries: i64,
    /// The first sequence number whose link does not hold.
    pub broken_at: Option<i64>,
}

impl Services {
    pub async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        self.db(move |r| r.recent_audit(limit)).await
    }

    /// Walks the whole chain and recomputes every link.
    pub async fn verify_audit(&self) -> Result<ChainReport> {
        let mut after = 0;
        let mut prev = GENESIS.to_string();
        let mut count = 0;
        loop {
            let page = self.db(move |r| r.audit_after(after, PAGE)).await?;
            if page.is_empty() {
                return Ok(ChainReport {
                    entries: count,
                    broken_at: None,
                });
            }
            for e in page {
                let expected = audit_chain_hash(&prev, e.seq, &e.entry);
                if e.seq != after + 1 || e.prev_hash != prev || e.hash != expected {
                    return Ok(ChainReport {
                        entries: count,
                        broken_at: Some(after + 1),
                    });
                }
                count += 1;
                after = e.seq;
                prev = e.hash;
            }
        }
    }
}

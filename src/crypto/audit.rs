//! The audit chain's links and how a chain is checked.
//!
//! Each entry carries a tag over its own fields and its predecessor's tag.
//! Entries written since keying began are tagged with HMAC-SHA256 under a key
//! derived from the at-rest key (which lives outside the database), so
//! someone who can only write to the database cannot recompute them. Entries
//! written before the upgrade keep their plain SHA-256 links; the first keyed
//! entry chains on from the last of them. Where keying began is the
//! `audit_keyed_after` marker in the `meta` table, set once by a migration.

use super::constant_time_eq;
use super::seal::Sealer;
use crate::domain::{AuditEntry, NewAuditEntry};
use zeroize::Zeroizing;

/// The `prev_hash` of the first audit entry.
pub const AUDIT_GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The `meta` key holding the last sequence number written before keying.
pub const KEYED_AFTER: &str = "audit_keyed_after";

fn canonical(prev_hash: &str, seq: i64, e: &NewAuditEntry) -> String {
    serde_json::json!([
        prev_hash,
        seq,
        e.at.timestamp(),
        e.actor,
        e.action,
        e.subject,
        e.ip,
        e.detail.to_string(),
    ])
    .to_string()
}

/// The unkeyed link used before keying began: SHA-256 over the predecessor's
/// hash and the entry's fields. Anyone can recompute it.
pub fn audit_chain_hash(prev_hash: &str, seq: i64, e: &NewAuditEntry) -> String {
    super::sha256_hex(canonical(prev_hash, seq, e).as_bytes())
}

/// The secret that keys the audit chain.
pub struct AuditKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey { .. }")
    }
}

impl AuditKey {
    /// Derived from the at-rest key, so every node that holds that key
    /// computes the same tags.
    pub fn derive(sealer: &Sealer) -> Self {
        Self(Zeroizing::new(sealer.mac("audit-chain-key", b"")))
    }

    /// The keyed link: HMAC-SHA256 over the predecessor's tag and the
    /// entry's fields, lower-case hex.
    pub fn tag(&self, prev_hash: &str, seq: i64, e: &NewAuditEntry) -> String {
        use hmac::{Hmac, Mac};
        let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.0.as_ref())
            .expect("HMAC takes any key length");
        m.update(canonical(prev_hash, seq, e).as_bytes());
        m.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A head of the chain, written `SEQ:TAG`, to be kept somewhere else and
/// compared later: the chain must still reach it, with the same tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub tag: String,
}

impl Checkpoint {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || "a checkpoint looks like 42:<64 hex digits>, as `audit checkpoint` prints it";
        let (seq, tag) = s.trim().split_once(':').ok_or_else(bad)?;
        let seq: i64 = seq.parse().map_err(|_| bad())?;
        let tag = tag.to_ascii_lowercase();
        if seq < 0 || tag.len() != 64 || !tag.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad().into());
        }
        Ok(Self { seq, tag })
    }
}

impl std::fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.tag)
    }
}

/// Walks a chain in order, one entry at a time, and says where it breaks.
pub struct ChainCheck<'a> {
    key: &'a AuditKey,
    keyed_after: i64,
    checkpoint: Option<Checkpoint>,
    prev: String,
    last: i64,
}

impl<'a> ChainCheck<'a> {
    pub fn new(key: &'a AuditKey, keyed_after: i64, checkpoint: Option<Checkpoint>) -> Self {
        Self {
            key,
            keyed_after,
            checkpoint,
            prev: AUDIT_GENESIS.to_string(),
            last: 0,
        }
    }

    /// The entries checked so far (sequence numbers start at 1, no gaps).
    pub fn entries(&self) -> i64 {
        self.last
    }

    /// Checks the next entry; the error is one line.
    pub fn step(&mut self, e: &AuditEntry) -> Result<(), String> {
        let expected = if e.seq <= self.keyed_after {
            audit_chain_hash(&self.prev, e.seq, &e.entry)
        } else {
            self.key.tag(&self.prev, e.seq, &e.entry)
        };
        if e.seq != self.last + 1
            || e.prev_hash != self.prev
            || !constant_time_eq(e.hash.as_bytes(), expected.as_bytes())
        {
            return Err(format!(
                "audit chain broken at entry {} ({} entries verified before it)",
                self.last + 1,
                self.last
            ));
        }
        if let Some(cp) = &self.checkpoint
            && cp.seq == e.seq
            && !constant_time_eq(cp.tag.as_bytes(), e.hash.as_bytes())
        {
            return Err(format!(
                "audit entry {} does not match the checkpoint: the log was rewritten",
                e.seq
            ));
        }
        self.last = e.seq;
        self.prev = e.hash.clone();
        Ok(())
    }

    /// After the last entry: the head, or why the chain falls short.
    pub fn finish(self) -> Result<Checkpoint, String> {
        if self.keyed_after > self.last {
            return Err(format!(
                "audit log ends at entry {}, before entry {} where keying began: entries were removed",
                self.last, self.keyed_after
            ));
        }
        if let Some(cp) = &self.checkpoint
            && cp.seq > self.last
        {
            return Err(format!(
                "audit log ends at entry {} but the checkpoint is at entry {}: entries were removed",
                self.last, cp.seq
            ));
        }
        Ok(Checkpoint {
            seq: self.last,
            tag: self.prev,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn key() -> AuditKey {
        AuditKey::derive(&Sealer::from_base64(&Sealer::generate_key_base64()).unwrap())
    }

    fn event(i: i64) -> NewAuditEntry {
        NewAuditEntry {
            at: chrono::Utc.timestamp_opt(1_800_000_000 + i, 0).unwrap(),
            actor: "cli".into(),
            action: "test.event".into(),
            subject: format!("s{i}"),
            ip: None,
            detail: serde_json::json!({"i": i}),
        }
    }

    /// `n` entries, the first `unkeyed` of them linked the old way.
    fn chain(key: &AuditKey, n: i64, unkeyed: i64) -> Vec<AuditEntry> {
        let mut prev = AUDIT_GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let entry = event(seq);
                let hash = if seq <= unkeyed {
                    audit_chain_hash(&prev, seq, &entry)
                } else {
                    key.tag(&prev, seq, &entry)
                };
                AuditEntry {
                    seq,
                    entry,
                    prev_hash: std::mem::replace(&mut prev, hash.clone()),
                    hash,
                }
            })
            .collect()
    }

    fn check(
        key: &AuditKey,
        keyed_after: i64,
        cp: Option<Checkpoint>,
        es: &[AuditEntry],
    ) -> Result<Checkpoint, String> {
        let mut c = ChainCheck::new(key, keyed_after, cp);
        for e in es {
            c.step(e)?;
        }
        c.finish()
    }

    #[test]
    fn an_intact_chain_verifies_old_links_then_keyed_ones() {
        let k = key();
        let es = chain(&k, 6, 2);
        let head = check(&k, 2, None, &es).unwrap();
        assert_eq!(head.seq, 6);
        assert_eq!(head.tag, es[5].hash);
        assert_eq!(check(&k, 2, Some(head.clone()), &es), Ok(head));
        // An empty log has the genesis head.
        assert_eq!(
            check(&k, 0, None, &[]).unwrap().to_string(),
            format!("0:{AUDIT_GENESIS}")
        );
    }

    #[test]
    fn an_edit_relinked_without_the_key_is_found() {
        let k = key();
        let mut es = chain(&k, 5, 0);
        // The attacker edits entry 3 and recomputes every later link with
        // the public hash.
        es[2].entry.subject = "someone-else".into();
        for i in 2..es.len() {
            let prev = es[i - 1].hash.clone();
            es[i].prev_hash = prev.clone();
            es[i].hash = audit_chain_hash(&prev, es[i].seq, &es[i].entry);
        }
        assert_eq!(
            check(&k, 0, None, &es).unwrap_err(),
            "audit chain broken at entry 3 (2 entries verified before it)"
        );
        // Moving keyed entries before the boundary is found as well: the
        // first keyed entry no longer links.
        let es = chain(&k, 5, 3);
        assert!(check(&k, 2, None, &es).is_err());
        // Another key's tags do not verify.
        assert!(check(&key(), 0, None, &chain(&k, 2, 0)).is_err());
    }

    #[test]
    fn a_checkpoint_finds_truncation_and_rewriting() {
        let k = key();
        let es = chain(&k, 5, 0);
        let head = check(&k, 0, None, &es).unwrap();
        assert_eq!(
            check(&k, 0, Some(head.clone()), &es[..3]).unwrap_err(),
            "audit log ends at entry 3 but the checkpoint is at entry 5: entries were removed"
        );
        // Truncated and refilled with a different entry 5 (by the server,
        // which has the key): the tag at the checkpoint differs.
        let mut refilled = es[..4].to_vec();
        let mut e5 = event(99);
        e5.action = "other".into();
        refilled.push(AuditEntry {
            seq: 5,
            hash: k.tag(&es[3].hash, 5, &e5),
            prev_hash: es[3].hash.clone(),
            entry: e5,
        });
        assert_eq!(
            check(&k, 0, Some(head), &refilled).unwrap_err(),
            "audit entry 5 does not match the checkpoint: the log was rewritten"
        );
        // Removing entries from before the keying boundary is found too.
        assert!(check(&k, 5, None, &chain(&k, 3, 3)).is_err());
    }

    #[test]
    fn checkpoints_parse_and_print() {
        let t = "ab".repeat(32);
        let cp = Checkpoint::parse(&format!(" 12:{} \n", t.to_uppercase())).unwrap();
        assert_eq!(cp.to_string(), format!("12:{t}"));
        for bad in [
            "",
            "12",
            "x:ab",
            "-1:ab",
            &format!("12:{}", "g".repeat(64)),
            "12:abcd",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad}");
        }
    }
}

//! In-process ephemeral store: sharded maps with expiry by the injected clock
//! and a bound on the number of entries.
//!
//! Nothing live is ever evicted to make room: the entries here are throttle
//! counters, codes, replay caches and ceremony state, and dropping one would
//! undo a security decision. A full store refuses new entries instead (503),
//! and refuses new anonymous work (`begin`) a little earlier, so the last
//! tenth stays for the counters and codes of people already under way.

use super::Ephemeral;
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

const SHARDS: usize = 16;

struct Entry {
    value: Vec<u8>,
    expires: DateTime<Utc>,
}

type Shard = HashMap<String, Entry>;

pub struct MemoryStore {
    shards: Vec<Mutex<Shard>>,
    max_per_shard: usize,
    clock: SharedClock,
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl MemoryStore {
    pub fn new(max_entries: usize, clock: SharedClock) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            max_per_shard: max_entries.div_ceil(SHARDS).max(1),
            clock,
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let i = (h.finish() as usize) % SHARDS;
        // A panic while holding the lock cannot leave a map half-updated in a
        // way that matters here, so a poisoned lock is simply reused.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live entry for `key`, dropping it first if it has expired.
    fn live<'a>(shard: &'a mut Shard, key: &str, now: DateTime<Utc>) -> Option<&'a mut Entry> {
        if shard.get(key).is_some_and(|e| e.expires <= now) {
            shard.remove(key);
        }
        shard.get_mut(key)
    }

    /// Room for one more entry under `limit`: expired entries are dropped
    /// when needed, live ones never.
    fn has_room(shard: &mut Shard, limit: usize, now: DateTime<Utc>) -> bool {
        if shard.len() < limit {
            return true;
        }
        shard.retain(|_, e| e.expires > now);
        shard.len() < limit
    }

    /// The limit for anonymous work: nine tenths of a shard.
    fn soft_limit(&self) -> usize {
        (self.max_per_shard - self.max_per_shard / 10).max(1)
    }

    fn insert(
        &self,
        shard: &mut Shard,
        key: &str,
        value: &[u8],
        ttl: Duration,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<()> {
        if !shard.contains_key(key) && !Self::has_room(shard, limit, now) {
            return Err(full());
        }
        shard.insert(
            key.to_string(),
            Entry {
                value: value.to_vec(),
                expires: now + to_chrono(ttl),
            },
        );
        Ok(())
    }
}

#[async_trait]
impl Ephemeral for MemoryStore {
    async fn put_ttl(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        self.insert(&mut shard, key, value, ttl, now, self.max_per_shard)
    }

    async fn begin(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        self.insert(&mut shard, key, value, ttl, now, self.soft_limit())
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        if Self::live(&mut shard, key, now).is_some() {
            return Ok(false);
        }
        self.insert(&mut shard, key, value, ttl, now, self.max_per_shard)?;
        Ok(true)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        Ok(Self::live(&mut shard, key, now).map(|e| e.value.clone()))
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        Ok(shard
            .remove(key)
            .filter(|e| e.expires > now)
            .map(|e| e.value))
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64> {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        if let Some(e) = Self::live(&mut shard, key, now) {
            let n = parse_count(&e.value) + 1;
            e.value = n.to_string().into_bytes();
            return Ok(n);
        }
        self.insert(&mut shard, key, b"1", ttl, now, self.max_per_shard)?;
        Ok(1)
    }

    async fn decr(&self, key: &str) -> Result<()> {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        if let Some(e) = Self::live(&mut shard, key, now) {
            let n = parse_count(&e.value).saturating_sub(1);
            e.value = n.to_string().into_bytes();
        }
        Ok(())
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        Ok(
            Self::live(&mut shard, key, now)
                .map(|e| (e.expires - now).to_std().unwrap_or_default()),
        )
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.shard(key).remove(key);
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

fn full() -> Error {
    Error::new(
        crate::error::ErrorKind::Unavailable,
        "the server is too busy to start this now (the in-memory store is full; see ephemeral.max_entries); try again in a few minutes",
    )
}

fn parse_count(v: &[u8]) -> u64 {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::error::ErrorKind;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    #[tokio::test]
    async fn a_full_store_refuses_instead_of_evicting() {
        let clock = FixedClock::new(t(0));
        // Ten entries per shard.
        let store = MemoryStore::new(SHARDS * 10, clock.clone());
        let counter = "fail:account:alice";
        store.incr(counter, Duration::from_secs(900)).await.unwrap();
        let mut refused = 0;
        for i in 0..(SHARDS * 20) {
            if let Err(e) = store
                .put_ttl(&format!("k{i}"), b"v", Duration::from_secs(7200))
                .await
            {
                assert_eq!(e.kind, ErrorKind::Unavailable);
                refused += 1;
            }
        }
        assert!(refused > 0, "the bound was never reached");
        // The counter, nearest to expiry, is still there and still counts.
        assert_eq!(
            store.incr(counter, Duration::from_secs(900)).await.unwrap(),
            2
        );
    }

    #[tokio::test]
    async fn anonymous_work_stops_first_and_expired_entries_make_room() {
        let clock = FixedClock::new(t(0));
        let store = MemoryStore::new(SHARDS * 10, clock.clone());
        let mut began = 0;
        for i in 0..(SHARDS * 20) {
            if store
                .begin(&format!("tx{i}"), b"v", Duration::from_secs(60))
                .await
                .is_ok()
            {
                began += 1;
            }
        }
        assert!(began <= SHARDS * 9, "began {began}");
        // Security state still fits beside the refused anonymous work.
        for i in 0..SHARDS {
            let _ = store.incr(&format!("c{i}"), Duration::from_secs(60)).await;
        }
        let held: usize = store.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(held > began, "no headroom was left");
        clock.set(t(61));
        store
            .begin("tx-late", b"v", Duration::from_secs(60))
            .await
            .unwrap();
    }
}

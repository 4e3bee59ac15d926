//! In-process ephemeral store: sharded maps with expiry by the injected clock
//! and a bound on the number of entries.

use super::Ephemeral;
use crate::clock::SharedClock;
use crate::error::Result;
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

    /// Makes room for one more entry: expired ones go first, then the one
    /// closest to expiry.
    fn make_room(&self, shard: &mut Shard, now: DateTime<Utc>) {
        if shard.len() < self.max_per_shard {
            return;
        }
        shard.retain(|_, e| e.expires > now);
        if shard.len() >= self.max_per_shard
            && let Some(k) = shard
                .iter()
                .min_by_key(|(_, e)| e.expires)
                .map(|(k, _)| k.clone())
        {
            shard.remove(&k);
        }
    }

    fn insert(
        &self,
        shard: &mut Shard,
        key: &str,
        value: &[u8],
        ttl: Duration,
        now: DateTime<Utc>,
    ) {
        if !shard.contains_key(key) {
            self.make_room(shard, now);
        }
        shard.insert(
            key.to_string(),
            Entry {
                value: value.to_vec(),
                expires: now + to_chrono(ttl),
            },
        );
    }
}

#[async_trait]
impl Ephemeral for MemoryStore {
    async fn put_ttl(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        self.insert(&mut shard, key, value, ttl, now);
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        if Self::live(&mut shard, key, now).is_some() {
            return Ok(false);
        }
        self.insert(&mut shard, key, value, ttl, now);
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
        self.insert(&mut shard, key, b"1", ttl, now);
        Ok(1)
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
    use std::sync::Arc;

    #[tokio::test]
    async fn bound_evicts_the_entry_closest_to_expiry() {
        let clock = FixedClock::new(DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        // One entry per shard.
        let store = MemoryStore::new(SHARDS, clock.clone());
        let total: usize = 200;
        for i in 0..total {
            store
                .put_ttl(&format!("k{i}"), b"v", Duration::from_secs(60 + i as u64))
                .await
                .unwrap();
        }
        let held: usize = store.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(held <= SHARDS, "held {held}");
        // The newest (longest-lived) key survives.
        assert!(
            store
                .get(&format!("k{}", total - 1))
                .await
                .unwrap()
                .is_some()
        );
        let _ = Arc::clone(&store.clock);
    }
}

//! Short-lived shared state: authorization codes, login transactions, ceremony
//! state, CSRF tokens, replay caches and rate-limit counters.
//!
//! In memory for one node; in Redis when several nodes share the work. A
//! single-use item is *taken* atomically, so two nodes can never both redeem it.

mod memory;
mod redis;

pub use memory::MemoryStore;
pub use redis::RedisStore;

use crate::clock::SharedClock;
use crate::config::EphemeralSettings;
use crate::error::Result;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

#[async_trait]
pub trait Ephemeral: Send + Sync + 'static {
    /// Stores `value` under `key` for `ttl`, replacing what was there.
    async fn put_ttl(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()>;
    /// Stores the state of new work anyone may start (a login transaction, a
    /// ceremony). Unlike `put_ttl` it is refused while the store is nearly
    /// full, so anonymous traffic cannot take the room that counters and
    /// codes need.
    async fn begin(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        self.put_ttl(key, value, ttl).await
    }
    /// Stores only when `key` is absent; false when it was present. Replay caches use this.
    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Returns and removes the value in one step: of several concurrent callers
    /// exactly one gets it.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Adds one to a counter and returns the new count. The first increment
    /// starts the counter's `ttl`; later ones do not extend it.
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64>;
    /// Takes one back from a counter that exists and is above zero (an
    /// attempt counted in advance that turned out fine); never creates one.
    async fn decr(&self, key: &str) -> Result<()>;
    /// Time left before `key` expires; `None` when it does not exist.
    async fn ttl(&self, key: &str) -> Result<Option<Duration>>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// Fails when the backing service cannot be reached.
    async fn ping(&self) -> Result<()>;
}

pub type SharedEphemeral = Arc<dyn Ephemeral>;

/// Chooses the backend named by `ephemeral.url`.
pub async fn connect(settings: &EphemeralSettings, clock: SharedClock) -> Result<SharedEphemeral> {
    let url = settings.url.expose();
    if url == "memory" {
        Ok(Arc::new(MemoryStore::new(settings.max_entries, clock)))
    } else {
        Ok(Arc::new(
            RedisStore::connect(url, &settings.key_prefix).await?,
        ))
    }
}

/// True for a Redis `maxmemory-policy` that may drop keys of this store:
/// every `allkeys-*` policy, and every `volatile-*` one too, since every key
/// here has an expiry. Only `noeviction` keeps security state.
pub fn evicts(policy: &str) -> bool {
    policy != "noeviction"
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_noeviction_keeps_security_state() {
        assert!(!super::evicts("noeviction"));
        for p in [
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "volatile-lru",
            "volatile-ttl",
        ] {
            assert!(super::evicts(p), "{p}");
        }
    }
}

//! Redis-backed ephemeral store for several nodes. Single use is `GETDEL`;
//! the connection manager reconnects by itself after Redis restarts.

use super::Ephemeral;
use crate::error::{Error, Result};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
}

fn unavailable(e: redis::RedisError) -> Error {
    Error::unavailable(format!("redis: {e}"))
}

fn millis(ttl: Duration) -> u64 {
    ttl.as_millis().clamp(1, u128::from(u64::MAX)) as u64
}

impl RedisStore {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::invalid(format!("ephemeral.url is not a valid Redis URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(3)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }
}

#[async_trait]
impl Ephemeral for RedisStore {
    async fn put_ttl(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(millis(ttl))
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(set.is_some())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>> {
        redis::cmd("GETDEL")
            .arg(self.key(key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64> {
        let k = self.key(key);
        // One atomic block: the counter and its expiry can never be apart.
        let (count, _): (u64, i64) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(&k)
            .cmd("PEXPIRE")
            .arg(&k)
            .arg(millis(ttl))
            .arg("NX")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(count)
    }

    async fn decr(&self, key: &str) -> Result<()> {
        // Atomic, and never creates the key or takes it below zero.
        let script = redis::Script::new(
            "local v = tonumber(redis.call('GET', KEYS[1]) or '0') \
             if v > 0 then return redis.call('DECR', KEYS[1]) end return 0",
        );
        script
            .key(self.key(key))
            .invoke_async::<i64>(&mut self.conn.clone())
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        let ms: i64 = redis::cmd("PTTL")
            .arg(self.key(key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(match ms {
            -2 => None,
            // Exists without expiry: cannot happen through this API.
            -1 => Some(Duration::MAX),
            ms => Some(Duration::from_millis(ms.max(0) as u64)),
        })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        redis::cmd("DEL")
            .arg(self.key(key))
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    async fn ping(&self) -> Result<()> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        // Some managed services hide CONFIG; then the policy cannot be known.
        let policy: Option<Vec<String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut self.conn.clone())
            .await
            .ok();
        match policy.as_deref() {
            Some([_, p]) if super::evicts(p) => Err(Error::new(
                crate::error::ErrorKind::Unavailable,
                format!(
                    "redis maxmemory-policy is {p}: Redis may evict throttle counters, codes and replay caches \
                 (every key here has an expiry); set maxmemory-policy noeviction"
                ),
            )),
            _ => Ok(()),
        }
    }
}

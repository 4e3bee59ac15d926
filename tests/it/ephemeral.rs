//! The ephemeral-store contract, run against memory and Redis alike.

use crate::common::{redis_url, skip, t0, unique};
use portcullis::clock::FixedClock;
use portcullis::ephemeral::{Ephemeral, MemoryStore, RedisStore};
use std::sync::Arc;
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

async fn conformance(store: Arc<dyn Ephemeral>) {
    // put / get / overwrite / delete
    store.put_ttl("a", b"1", MIN).await.unwrap();
    assert_eq!(store.get("a").await.unwrap().as_deref(), Some(&b"1"[..]));
    store.put_ttl("a", b"2", MIN).await.unwrap();
    assert_eq!(store.get("a").await.unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(
        store.get("a").await.unwrap().as_deref(),
        Some(&b"2"[..]),
        "get does not consume"
    );
    store.delete("a").await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), None);
    assert_eq!(store.get("never-set").await.unwrap(), None);

    // take is single use
    store.put_ttl("code", b"xyz", MIN).await.unwrap();
    assert_eq!(
        store.take("code").await.unwrap().as_deref(),
        Some(&b"xyz"[..])
    );
    assert_eq!(store.take("code").await.unwrap(), None);
    assert_eq!(store.get("code").await.unwrap(), None);

    // ...also when two tasks race for it, many times over
    for i in 0..50 {
        let key = format!("race{i}");
        store.put_ttl(&key, b"v", MIN).await.unwrap();
        let (s1, s2) = (store.clone(), store.clone());
        let (k1, k2) = (key.clone(), key.clone());
        let a = tokio::spawn(async move { s1.take(&k1).await.unwrap() });
        let b = tokio::spawn(async move { s2.take(&k2).await.unwrap() });
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert!(
            a.is_some() ^ b.is_some(),
            "exactly one taker wins ({a:?}, {b:?})"
        );
    }

    // put_if_absent: a replay cache
    assert!(store.put_if_absent("jti", b"1", MIN).await.unwrap());
    assert!(!store.put_if_absent("jti", b"2", MIN).await.unwrap());
    assert_eq!(store.get("jti").await.unwrap().as_deref(), Some(&b"1"[..]));

    // counters and their remaining time
    assert_eq!(store.incr("n", MIN).await.unwrap(), 1);
    assert_eq!(store.incr("n", MIN).await.unwrap(), 2);
    assert_eq!(store.incr("n", MIN).await.unwrap(), 3);
    // An attempt counted in advance can be given back, never below zero,
    // and giving back never creates a counter.
    store.decr("n").await.unwrap();
    assert_eq!(store.incr("n", MIN).await.unwrap(), 3);
    store.decr("absent").await.unwrap();
    assert_eq!(store.get("absent").await.unwrap(), None);
    store.incr("one", MIN).await.unwrap();
    store.decr("one").await.unwrap();
    store.decr("one").await.unwrap();
    assert_eq!(store.incr("one", MIN).await.unwrap(), 1);
    let left = store.ttl("n").await.unwrap().unwrap();
    assert!(left <= MIN && left > Duration::from_secs(50), "{left:?}");
    assert_eq!(store.ttl("absent").await.unwrap(), None);

    // binary values survive
    let bin = [0u8, 255, 10, 13, 0];
    store.put_ttl("bin", &bin, MIN).await.unwrap();
    assert_eq!(store.take("bin").await.unwrap().as_deref(), Some(&bin[..]));

    store.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conformance() {
    let clock = FixedClock::new(t0());
    conformance(Arc::new(MemoryStore::new(10_000, clock))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_honours_ttl_by_the_clock() {
    let clock = FixedClock::new(t0());
    let store = MemoryStore::new(100, clock.clone());
    store.put_ttl("k", b"v", MIN).await.unwrap();
    assert_eq!(store.incr("c", MIN).await.unwrap(), 1);
    clock.advance(chrono::Duration::seconds(59));
    assert!(store.get("k").await.unwrap().is_some());
    assert_eq!(store.ttl("k").await.unwrap(), Some(Duration::from_secs(1)));
    // Later increments do not extend the window.
    assert_eq!(store.incr("c", MIN).await.unwrap(), 2);
    clock.advance(chrono::Duration::seconds(1));
    assert_eq!(store.get("k").await.unwrap(), None);
    assert_eq!(store.take("k").await.unwrap(), None);
    assert_eq!(
        store.incr("c", MIN).await.unwrap(),
        1,
        "an expired counter starts again"
    );
    assert!(store.put_if_absent("k", b"again", MIN).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_stays_within_its_bound() {
    let clock = FixedClock::new(t0());
    let store = MemoryStore::new(64, clock);
    // Beyond the bound new entries are refused, never made room for by
    // evicting live ones.
    let mut refused = 0;
    for i in 0..10_000 {
        if store.put_ttl(&format!("k{i}"), b"v", MIN).await.is_err() {
            refused += 1;
        }
    }
    assert!(refused > 0);
    let mut held = 0;
    for i in 0..10_000 {
        if store.get(&format!("k{i}")).await.unwrap().is_some() {
            held += 1;
        }
    }
    assert!(held <= 64, "held {held}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_conformance() {
    let Some(url) = redis_url() else {
        return skip("redis_store_conformance", "PORTCULLIS_TEST_REDIS_URL");
    };
    let prefix = unique("portcullis-test:") + ":";
    let store = Arc::new(RedisStore::connect(&url, &prefix).await.unwrap());
    conformance(store.clone()).await;

    // Keys live under the prefix and carry a real expiry in Redis itself.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    store
        .put_ttl("ttl-check", b"v", Duration::from_secs(30))
        .await
        .unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}ttl-check"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(pttl > 25_000 && pttl <= 30_000, "{pttl}");

    // Another prefix sees none of it.
    let other = RedisStore::connect(&url, &unique("portcullis-test:"))
        .await
        .unwrap();
    assert_eq!(other.get("ttl-check").await.unwrap(), None);

    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

//! Signing keys: created on first start, sealed at rest, held in memory,
//! rotated with pre-publication, and kept in the JWKS until every token they
//! signed has expired.

use super::{Actor, Services, record};
use crate::crypto::jws::{self, SigningKey, VerifyingKey};
use crate::crypto::seal::Sealer;
use crate::domain::{SigningAlg, StoredKey};
use crate::error::{Error, Result};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A key ready to sign, with when it starts and (once superseded) stops.
pub struct LoadedKey {
    pub stored: StoredKey,
    pub signer: Arc<SigningKey>,
    /// The published JWK parsed once, so checking a token parses nothing.
    pub verifier: VerifyingKey,
}

/// All keys, oldest activation first.
#[derive(Default)]
pub struct KeyRing {
    keys: Vec<LoadedKey>,
}

impl KeyRing {
    /// The key that signs `alg` tokens at `now`: the latest already active.
    pub fn active(&self, alg: SigningAlg, now: DateTime<Utc>) -> Option<&LoadedKey> {
        self.keys
            .iter()
            .filter(|k| k.stored.alg == alg && k.stored.activates_at <= now)
            .max_by_key(|k| (k.stored.activates_at, k.stored.kid.clone()))
    }

    /// Whether this ring holds the key `kid`, published or not.
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.stored.kid == kid)
    }

    /// When a later key of the same algorithm took over from `key`, if one has.
    fn superseded_at(&self, key: &StoredKey, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.keys
            .iter()
            .map(|k| &k.stored)
            .filter(|k| {
                k.alg == key.alg
                    && k.activates_at <= now
                    && (k.activates_at, &k.kid) > (key.activates_at, &key.kid)
            })
            .map(|k| k.activates_at)
            .min()
    }

    /// The keys to publish at `now`: upcoming ones, the active ones, and
    /// retired ones whose tokens may still be alive.
    fn published_keys(
        &self,
        now: DateTime<Utc>,
        max_token_lifetime: Duration,
    ) -> impl Iterator<Item = &LoadedKey> {
        self.keys
            .iter()
            .filter(move |k| match self.superseded_at(&k.stored, now) {
                None => true,
                Some(t) => t + max_token_lifetime > now,
            })
    }

    /// The public JWKs to publish at `now`.
    pub fn published(&self, now: DateTime<Utc>, max_token_lifetime: Duration) -> Vec<Value> {
        self.published_keys(now, max_token_lifetime)
            .map(|k| k.stored.public_jwk.clone())
            .collect()
    }

    /// The published keys, parsed, for checking tokens signed here.
    pub fn verifiers(
        &self,
        now: DateTime<Utc>,
        max_token_lifetime: Duration,
    ) -> Vec<&VerifyingKey> {
        self.published_keys(now, max_token_lifetime)
            .map(|k| &k.verifier)
            .collect()
    }

    /// Keys that may be removed from storage: retired and past publication.
    fn expired(&self, now: DateTime<Utc>, max_token_lifetime: Duration) -> Vec<String> {
        self.keys
            .iter()
            .filter(|k| {
                self.superseded_at(&k.stored, now)
                    .is_some_and(|t| t + max_token_lifetime <= now)
            })
            .map(|k| k.stored.kid.clone())
            .collect()
    }
}

/// The process's view of the key table, refreshed when it changes.
pub struct KeyCache {
    sealer: Sealer,
    ring: RwLock<Arc<KeyRing>>,
    /// When a token naming an unknown key last made this node re-read the
    /// key table; held while the re-read runs, so concurrent misses share it.
    miss_reload: tokio::sync::Mutex<Option<std::time::Instant>>,
}

impl KeyCache {
    pub fn new(sealer: Sealer) -> Self {
        Self {
            sealer,
            ring: RwLock::new(Arc::new(KeyRing::default())),
            miss_reload: tokio::sync::Mutex::new(None),
        }
    }

    /// Encrypts other private keys (the SAML signing key) the same way.
    pub fn seal(&self, data: &[u8], aad: &[u8]) -> String {
        self.sealer.seal(data, aad)
    }

    /// A keyed tag (HMAC) for `purpose`, the same on every node.
    pub fn mac(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        self.sealer.mac(purpose, data)
    }

    /// The key that tags audit entries, derived from the at-rest key.
    pub fn audit_key(&self) -> crate::crypto::audit::AuditKey {
        crate::crypto::audit::AuditKey::derive(&self.sealer)
    }

    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>> {
        self.sealer
            .open(sealed, aad)
            .map_err(|e| Error::internal(format!("cannot unseal a stored key: {e}")))
    }

    fn current(&self) -> Arc<KeyRing> {
        self.ring.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn aad(kid: &str) -> Vec<u8> {
        format!("portcullis-signing-key:{kid}").into_bytes()
    }

    /// Rebuilds the ring from stored rows, parsing only keys not held yet.
    fn refresh(&self, stored: Vec<StoredKey>) -> Result<Arc<KeyRing>> {
        let old = self.current();
        let mut known: HashMap<&str, &LoadedKey> = old
            .keys
            .iter()
            .map(|k| (k.stored.kid.as_str(), k))
            .collect();
        let mut keys = Vec::with_capacity(stored.len());
        for s in stored {
            let (signer, verifier) = match known.remove(s.kid.as_str()) {
                Some(k) => (k.signer.clone(), k.verifier.clone()),
                None => {
                    let der = self.sealer.open(&s.sealed_private_key, &Self::aad(&s.kid)).map_err(|e| {
                        Error::internal(format!("cannot unseal key {}: {e} (is keys.encryption_key the one it was sealed with?)", s.kid))
                    })?;
                    let signer = SigningKey::from_pkcs8_der(s.alg, &der)
                        .map_err(|e| Error::internal(format!("stored key {}: {e}", s.kid)))?;
                    (Arc::new(signer), VerifyingKey::parse(s.public_jwk.clone()))
                }
            };
            keys.push(LoadedKey {
                stored: s,
                signer,
                verifier,
            });
        }
        let ring = Arc::new(KeyRing { keys });
        *self.ring.write().unwrap_or_else(|p| p.into_inner()) = ring.clone();
        Ok(ring)
    }
}

impl Services {
    pub(crate) fn max_token_lifetime(&self) -> Duration {
        Duration::from_std(self.settings.oidc.max_token_lifetime).unwrap_or(Duration::hours(1))
    }

    async fn new_key(&self, alg: SigningAlg, activates_at: DateTime<Utc>) -> Result<StoredKey> {
        let key = Self::cpu(move || SigningKey::generate(alg))
            .await?
            .map_err(|e| Error::internal(format!("key generation: {e}")))?;
        let der = key
            .to_pkcs8_der()
            .map_err(|e| Error::internal(format!("key encoding: {e}")))?;
        Ok(StoredKey {
            kid: key.kid().to_string(),
            alg,
            sealed_private_key: self.keys.sealer.seal(&der, &KeyCache::aad(key.kid())),
            public_jwk: key.public_jwk(),
            created_at: self.now(),
            activates_at,
        })
    }

    /// Creates a key for every algorithm that has none (first start),
    /// exactly once however many nodes start together: the keys are made
    /// outside the transaction, then inserted under a lock only for the
    /// algorithms still without one; a node that lost the race discards its
    /// own and loads the winner's.
    pub async fn ensure_keys(&self) -> Result<()> {
        let stored = self.db(|r| r.keys()).await?;
        let now = self.now();
        let mut fresh = Vec::new();
        for alg in SigningAlg::ALL {
            if !stored.iter().any(|k| k.alg == alg) {
                fresh.push(self.new_key(alg, now).await?);
            }
        }
        if !fresh.is_empty() {
            self.db(move |r| {
                r.lock_first_start()?;
                let stored = r.keys()?;
                let missing: Vec<&StoredKey> = fresh
                    .iter()
                    .filter(|k| !stored.iter().any(|s| s.alg == k.alg))
                    .collect();
                if missing.is_empty() {
                    return Ok(());
                }
                for k in &missing {
                    r.insert_key(k)?;
                }
                let kids: Vec<&str> = missing.iter().map(|k| k.kid.as_str()).collect();
                record(
                    r,
                    now,
                    &Actor::system(),
                    "keys.create",
                    "",
                    json!({"kids": kids}),
                )
            })
            .await?;
        }
        self.reload_keys().await.map(|_| ())
    }

    /// Reads the key table again (another node or the CLI may have rotated).
    pub async fn reload_keys(&self) -> Result<Arc<KeyRing>> {
        let stored = self.db(|r| r.keys()).await?;
        self.keys.refresh(stored)
    }

    /// The keys as this process holds them.
    pub fn key_ring(&self) -> Arc<KeyRing> {
        self.keys.current()
    }

    /// The keys to check `token` with. When it names a key this node does
    /// not hold (another node or the CLI may have just rotated), the key
    /// table is read again first, at most once a second per node, so tokens
    /// with made-up key IDs cannot turn every request into a database read.
    pub(crate) async fn key_ring_for(&self, token: &str) -> Arc<KeyRing> {
        let ring = self.key_ring();
        let Some(kid) = jws::decode_header(token).ok().and_then(|h| h.kid) else {
            return ring;
        };
        if ring.knows(&kid) {
            return ring;
        }
        let mut last = self.keys.miss_reload.lock().await;
        // Another request may have re-read the table while this one waited.
        let ring = self.key_ring();
        let recently = last.is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1));
        if ring.knows(&kid) || recently {
            return ring;
        }
        *last = Some(std::time::Instant::now());
        match self.reload_keys().await {
            Ok(ring) => ring,
            Err(e) => {
                tracing::warn!(error = %e, "re-reading signing keys for an unknown kid failed");
                ring
            }
        }
    }

    /// Adds a new key per algorithm, published now and signing from
    /// `keys.publish_ahead` on (or at once when `immediately`), and removes
    /// keys whose tokens have all expired.
    pub async fn rotate_keys(&self, actor: &Actor, immediately: bool) -> Result<Vec<StoredKey>> {
        let now = self.now();
        let ahead = if immediately {
            Duration::zero()
        } else {
            Duration::from_std(self.settings.keys.publish_ahead).unwrap_or(Duration::hours(1))
        };
        let mut created = Vec::new();
        for alg in SigningAlg::ALL {
            created.push(self.new_key(alg, now + ahead).await?);
        }
        let ring = self.reload_keys().await?;
        let expired = ring.expired(now, self.max_token_lifetime());
        let (keys, actor) = (created.clone(), actor.clone());
        self.db(move |r| {
            for k in &keys {
                r.insert_key(k)?;
            }
            for kid in &expired {
                r.delete_key(kid)?;
            }
            let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
            record(
                r,
                now,
                &actor,
                "keys.rotate",
                "",
                json!({"new": kids, "removed": expired}),
            )
        })
        .await?;
        self.reload_keys().await?;
        Ok(created)
    }

    /// The JWK Set to publish now.
    pub fn jwks(&self) -> Value {
        json!({"keys": self.key_ring().published(self.now(), self.max_token_lifetime())})
    }

    /// Signs claims with the active key for `alg`.
    pub fn sign_jwt(&self, alg: SigningAlg, typ: &str, claims: &Value) -> Result<String> {
        let ring = self.key_ring();
        let key = ring
            .active(alg, self.now())
            .ok_or_else(|| Error::internal(format!("no active {alg} key")))?;
        key.signer
            .sign(typ, claims)
            .map_err(|e| Error::internal(format!("signing: {e}")))
    }
}

//! Orchestration: protocol rules + store + ephemeral state + clock. The only
//! owner of transactions and single-use consumption.

pub mod attestation;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod budget;
pub mod csrf;
pub mod directory;
pub mod invite;
pub mod keys;
pub mod lifecycle;
pub mod mfa;
pub mod oidc;
pub mod outbound;
pub mod outbox;
pub mod passkey;
pub mod pim;
pub mod saml;
mod throttle;
pub mod webauthn;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::crypto::working_memory::WorkingMemory;
use crate::domain::NewAuditEntry;
use crate::ephemeral::SharedEphemeral;
use crate::error::{Error, Result};
use crate::store::{Repo, SharedStore};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Everything a request or a CLI command needs; cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub store: SharedStore,
    pub ephemeral: SharedEphemeral,
    pub clock: SharedClock,
    pub settings: Arc<Settings>,
    pub keys: Arc<keys::KeyCache>,
    /// The public base URL (`iss` of everything issued).
    pub issuer: String,
    /// Outgoing HTTP (back-channel logout), pooled.
    pub http: reqwest::Client,
    /// The WebAuthn relying party (passkeys, security keys); `None` when
    /// the issuer is an IP address and no `webauthn.rp_id` is set.
    pub webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    /// The CAs a registering authenticator's attestation must chain to
    /// (`webauthn.attestation_ca_files`); `None` when not configured.
    pub attestation_cas: Option<Arc<webauthn_rs::prelude::AttestationCaList>>,
    /// One permit per password hashing the memory budget allows at once.
    pub hashing_slots: Arc<tokio::sync::Semaphore>,
    /// The working memories of the hashing slots not running now.
    pub hashing_memory: Arc<crate::crypto::working_memory::MemoryPool>,
}

/// Who caused an action, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub ip: Option<String>,
}

impl Actor {
    pub fn cli() -> Self {
        Self {
            name: "cli".into(),
            ip: None,
        }
    }

    pub fn system() -> Self {
        Self {
            name: "system".into(),
            ip: None,
        }
    }

    pub fn user(name: &str, ip: Option<String>) -> Self {
        Self {
            name: name.into(),
            ip,
        }
    }
}

impl Services {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Runs `f` in one database transaction on the blocking pool.
    pub async fn db<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut dyn Repo) -> Result<T> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.tx(f))
            .await
            .map_err(|e| Error::internal(format!("database task failed: {e}")))?
    }

    /// Runs password hashing or verification (Argon2id: 19 MiB and tens of
    /// milliseconds each) off the async workers, as many at once as
    /// `login.password_hashing_memory_mib` holds (at most one a core): a
    /// flood of sign-ins waits
    /// its turn (up to `login.password_hashing_wait`, then 503) instead of
    /// taking every blocking thread and gigabytes of memory.
    /// Each runs in a slot's working memory, kept while sign-ins keep
    /// coming (see [`crate::crypto::working_memory`]).
    pub async fn hashing<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WorkingMemory) -> T + Send + 'static,
    {
        let wait = self.settings.login.password_hashing_wait;
        let permit = tokio::time::timeout(wait, self.hashing_slots.acquire())
            .await
            .map_err(|_| {
                Error::new(
                    crate::error::ErrorKind::Unavailable,
                    "Too many sign-ins at once; please try again in a moment.",
                )
            })?
            .map_err(|e| Error::internal(format!("hashing limiter: {e}")))?;
        let mut memory = self.hashing_memory.take();
        let (out, memory) = Self::cpu(move || (f(&mut memory), memory)).await?;
        self.hashing_memory.put_back(memory);
        drop(permit);
        Ok(out)
    }

    /// Runs CPU-heavy work (key generation, encryption) off the async workers.
    pub async fn cpu<T, F>(f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| Error::internal(format!("worker task failed: {e}")))
    }
}

impl Services {
    /// The level a user needs for an application: the strongest of the
    /// global `login.required_acr`, the application's own and the user's
    /// groups'. `None` when a password is enough.
    pub async fn required_acr(
        &self,
        user: &crate::domain::User,
        app: Option<&str>,
    ) -> Result<Option<String>> {
        use crate::protocol::oidc::claims::{acr_rank, parse_acr_level, strongest};
        let id = user.id.clone();
        let groups = self.db(move |r| r.groups_of(&id)).await?;
        let global = parse_acr_level(&self.settings.login.required_acr);
        let from_groups = groups.iter().filter_map(|g| g.required_acr.as_deref());
        Ok(strongest(global.into_iter().chain(app).chain(from_groups))
            .filter(|l| acr_rank(l) > 1)
            .map(str::to_string))
    }
}

/// Checks a `pwd` / `mfa` / `phr` setting of a client or SP and stores it
/// as the full `acr` URN.
pub fn required_level(level: &Option<String>) -> Result<Option<String>> {
    match level {
        None => Ok(None),
        Some(l) => crate::protocol::oidc::claims::parse_acr_level(l)
            .map(|a| Some(a.to_string()))
            .ok_or_else(|| {
                Error::invalid(format!("unknown required level {l}; use pwd, mfa or phr"))
            }),
    }
}

/// Refuses to continue a multi-step transaction from a browser other than
/// the one that started it: `stored` is the SHA-256 of the starting
/// browser's binding cookie, `binding` the cookie this request brought.
pub(crate) fn same_browser(stored: &str, binding: &str) -> Result<()> {
    let digest = crate::crypto::sha256_hex(binding.as_bytes());
    if binding.is_empty() || !crate::crypto::constant_time_eq(stored.as_bytes(), digest.as_bytes())
    {
        return Err(Error::forbidden(
            "This sign-in request was started in another browser. Go back to the application and start again here.",
        ));
    }
    Ok(())
}

/// Appends one event to the audit chain inside the caller's transaction.
pub fn record(
    repo: &mut dyn Repo,
    now: DateTime<Utc>,
    actor: &Actor,
    action: &str,
    subject: &str,
    detail: serde_json::Value,
) -> Result<()> {
    repo.append_audit(&NewAuditEntry {
        at: now,
        actor: actor.name.clone(),
        action: action.into(),
        subject: subject.into(),
        ip: actor.ip.clone(),
        detail,
    })?;
    Ok(())
}

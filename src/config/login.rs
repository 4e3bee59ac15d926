//! The `[login]` section: sign-in throttling, password rules and the
//! memory password checks may hold.

use super::{ConfigError, key_error};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginSettings {
    /// Failed sign-ins for one account before it is locked for `lockout`.
    pub max_failures_per_account: u32,
    /// Failed sign-ins from one client address before it is locked for `lockout`.
    pub max_failures_per_ip: u32,
    /// Sign-ins one client address (IPv6: one /64) may start in five
    /// minutes: authorization requests, SAML requests, passkey challenges.
    /// Each keeps state for a while; the bound keeps one address from
    /// filling the ephemeral store for everyone.
    pub max_starts_per_ip: u32,
    #[serde(with = "humantime_serde")]
    pub lockout: Duration,
    pub password_min_length: usize,
    /// The weakest sign-in any application accepts: `pwd` (default), `mfa`
    /// or `phr`. Clients and SPs can ask for more.
    pub required_acr: String,
    /// Memory password hashing may hold at once, in MiB. Each Argon2id
    /// hashing takes 19 MiB; more sign-ins than fit wait their turn.
    pub password_hashing_memory_mib: usize,
    /// How long a sign-in waits for its turn before it gets 503 with
    /// `Retry-After`.
    #[serde(with = "humantime_serde")]
    pub password_hashing_wait: Duration,
}

impl LoginSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_starts_per_ip == 0 {
            return Err(key_error("login.max_starts_per_ip", "must be at least 1"));
        }
        if self.max_failures_per_account == 0 || self.max_failures_per_ip == 0 {
            return Err(key_error(
                "login.max_failures_per_account",
                "failure limits must be at least 1",
            ));
        }
        if crate::protocol::oidc::claims::parse_acr_level(&self.required_acr).is_none() {
            return Err(key_error("login.required_acr", "must be pwd, mfa or phr"));
        }
        if self.password_hashing_memory_mib * 1024 * 1024
            < crate::crypto::password::MEMORY_PER_HASHING
        {
            return Err(key_error(
                "login.password_hashing_memory_mib",
                "must be at least 19 (one Argon2id hashing takes 19 MiB)",
            ));
        }
        if self.password_min_length < 8 {
            return Err(key_error("login.password_min_length", "must be at least 8"));
        }
        Ok(())
    }

    /// How many password hashings may run at once: as many as the budget
    /// holds, but no more than `cores` (more would only share the cores and
    /// hold more memory), and at least one.
    pub fn password_hashings_at_once(&self, cores: usize) -> usize {
        let fit = self.password_hashing_memory_mib * 1024 * 1024
            / crate::crypto::password::MEMORY_PER_HASHING;
        fit.min(cores).max(1)
    }
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            max_failures_per_ip: 50,
            max_starts_per_ip: 600,
            lockout: Duration::from_secs(15 * 60),
            password_min_length: 10,
            required_acr: "pwd".into(),
            password_hashing_memory_mib: 64,
            password_hashing_wait: Duration::from_secs(5),
        }
    }
}

//! Sign-in throttling: failures counted per account and per client
//! address in the ephemeral store, and the lock they lead to.

use super::Services;
use crate::crypto::sha256_hex;
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::login::{
    FailureCounts, ThrottleDecision, ThrottleLimits, human_wait, throttle,
};

pub(super) fn account_key(username: &str) -> String {
    format!("loginfail:acct:{}", sha256_hex(username.as_bytes()))
}

/// What a locked account or address is told.
pub(super) fn locked(retry_after: std::time::Duration) -> Error {
    Error::new(
        ErrorKind::Throttled,
        format!(
            "Too many failed sign-in attempts. Try again in {}.",
            human_wait(retry_after)
        ),
    )
}

pub(super) fn ip_key(ip: &str) -> String {
    format!(
        "loginfail:ip:{}",
        crate::protocol::client_ip::throttle_unit(ip)
    )
}

impl Services {
    fn limits(&self) -> ThrottleLimits {
        let l = &self.settings.login;
        ThrottleLimits {
            per_account: l.max_failures_per_account,
            per_ip: l.max_failures_per_ip,
            lockout: l.lockout,
        }
    }

    pub(super) async fn throttle_decision(
        &self,
        username: &str,
        ip: &str,
    ) -> Result<ThrottleDecision> {
        let (ak, ik) = (account_key(username), ip_key(ip));
        let count = |v: Option<Vec<u8>>| {
            v.and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let counts = FailureCounts {
            account: count(self.ephemeral.get(&ak).await?),
            ip: count(self.ephemeral.get(&ik).await?),
        };
        let decision = throttle(counts, self.limits(), None);
        if let ThrottleDecision::Locked { .. } = decision {
            let a = self.ephemeral.ttl(&ak).await?.unwrap_or_default();
            let i = self.ephemeral.ttl(&ik).await?.unwrap_or_default();
            return Ok(throttle(counts, self.limits(), Some(a.max(i))));
        }
        Ok(decision)
    }

    pub(super) async fn count_failure(&self, username: &str, ip: &str) -> Result<()> {
        self.count_attempt(username, ip).await.map(|_| ())
    }

    /// Counts an attempt against the account and the address; the counts.
    async fn count_attempt(&self, username: &str, ip: &str) -> Result<FailureCounts> {
        let lockout = self.settings.login.lockout;
        Ok(FailureCounts {
            account: self.ephemeral.incr(&account_key(username), lockout).await?,
            ip: self.ephemeral.incr(&ip_key(ip), lockout).await?,
        })
    }

    /// Counts a password attempt as a failure before the password is
    /// checked, so that guesses sent at once cannot outrun the lockout: each
    /// takes one of the checks a window allows, and those past the limit
    /// are refused unchecked. A store that cannot count refuses the attempt
    /// (an error, 503): unlimited uncounted guesses are never the fallback.
    pub(super) async fn reserve_attempt(
        &self,
        username: &str,
        ip: &str,
    ) -> Result<ThrottleDecision> {
        let counts = self.count_attempt(username, ip).await?;
        // Decided on the attempts before this one, as every check is.
        let before = FailureCounts {
            account: counts.account.saturating_sub(1),
            ip: counts.ip.saturating_sub(1),
        };
        Ok(throttle(before, self.limits(), None))
    }

    /// Gives back an attempt counted in advance whose password was right.
    pub(super) async fn release_attempt(&self, username: &str, ip: &str) -> Result<()> {
        self.ephemeral.decr(&account_key(username)).await?;
        self.ephemeral.decr(&ip_key(ip)).await
    }
}

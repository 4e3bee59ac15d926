//! The budget of anonymous work per client address. Starting a sign-in
//! (an authorization or SAML request, a passkey challenge) keeps state in the
//! ephemeral store for minutes; without a bound per address one client could
//! fill the store and turn everyone else's sign-in away with 503s.

use super::Services;
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::client_ip::throttle_unit;
use std::time::Duration;

/// The window `login.max_starts_per_ip` counts in.
const WINDOW: Duration = Duration::from_secs(5 * 60);

impl Services {
    /// Counts one start of anonymous work for `ip`; refuses (429) once the
    /// address used its budget for the current five minutes.
    pub async fn spend_start(&self, ip: Option<&str>) -> Result<()> {
        let unit = throttle_unit(ip.unwrap_or("unknown"));
        let key = format!("starts:{}", crate::crypto::sha256_hex(unit.as_bytes()));
        let n = self.ephemeral.incr(&key, WINDOW).await?;
        if n > u64::from(self.settings.login.max_starts_per_ip) {
            return Err(Error::new(
                ErrorKind::Throttled,
                "Too many sign-ins were started from your network in the last few minutes. Please wait a few minutes and try again.",
            ));
        }
        Ok(())
    }
}

//! CSRF tokens: random, kept in the ephemeral store, bound to a per-browser
//! cookie so a token copied from one browser does not work in another.

use super::Services;
use crate::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::error::Result;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(2 * 3600);

fn key(token: &str) -> String {
    format!("csrf:{}", sha256_hex(token.as_bytes()))
}

impl Services {
    /// A fresh token for a form shown to the browser holding `binding`.
    pub async fn issue_csrf(&self, binding: &str) -> Result<String> {
        let token = random_token();
        self.ephemeral
            .put_ttl(&key(&token), sha256_hex(binding.as_bytes()).as_bytes(), TTL)
            .await?;
        Ok(token)
    }

    /// True when `token` was issued to the browser holding `binding` and has
    /// not expired.
    pub async fn check_csrf(&self, token: &str, binding: &str) -> Result<bool> {
        if token.is_empty() || binding.is_empty() || token.len() > 128 {
            return Ok(false);
        }
        let expected = sha256_hex(binding.as_bytes());
        Ok(match self.ephemeral.get(&key(token)).await? {
            Some(v) => constant_time_eq(&v, expected.as_bytes()),
            None => false,
        })
    }
}

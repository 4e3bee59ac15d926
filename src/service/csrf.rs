//! CSRF tokens: a keyed tag of the browser's own binding cookie. Showing a
//! form stores nothing, so anonymous page views cannot fill the ephemeral
//! store; a token copied from one browser does not work in another.

use super::Services;
use crate::crypto::constant_time_eq;
use crate::error::Result;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl Services {
    fn csrf_for(&self, binding: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.keys.mac("csrf", binding.as_bytes()))
    }

    /// The token for forms shown to the browser holding `binding`.
    pub async fn issue_csrf(&self, binding: &str) -> Result<String> {
        Ok(self.csrf_for(binding))
    }

    /// True when `token` belongs to the browser holding `binding`.
    pub async fn check_csrf(&self, token: &str, binding: &str) -> Result<bool> {
        if token.is_empty() || binding.is_empty() || token.len() > 128 || binding.len() > 128 {
            return Ok(false);
        }
        Ok(constant_time_eq(
            token.as_bytes(),
            self.csrf_for(binding).as_bytes(),
        ))
    }
}

//! The `[webauthn]` section: passkeys and security keys.

use super::{ConfigError, key_error};
use serde::Deserialize;
use std::time::Duration;

/// What registration asks the authenticator to prove about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AttestationPolicy {
    /// Ask for nothing (the default): any authenticator may register.
    #[default]
    None,
    /// Ask for the authenticator's attestation statement; its signature is
    /// checked and its AAGUID recorded. With `attestation_ca_files`, the
    /// statement must also chain to one of those CAs.
    Direct,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebauthnSettings {
    /// The relying-party ID credentials are bound to; unset means the
    /// issuer's host. Changing it later orphans every registered passkey.
    pub rp_id: Option<String>,
    /// The name authenticators show next to the credential.
    pub rp_name: String,
    pub attestation: AttestationPolicy,
    /// When non-empty, only authenticators whose AAGUID is listed may
    /// register (for example a company's approved security-key models).
    /// Needs `attestation_ca_files`: an AAGUID counts only when an
    /// attestation that chains to one of those CAs vouches for it.
    pub allowed_aaguids: Vec<uuid::Uuid>,
    /// PEM files with the attestation root CAs (from the vendors' or the FIDO
    /// metadata) that a registering authenticator's attestation must chain
    /// to. Read at start-up.
    pub attestation_ca_files: Vec<std::path::PathBuf>,
    /// How recent a user-verified passkey check must be to count as fresh
    /// (password change, elevation).
    #[serde(with = "humantime_serde")]
    pub fresh_within: Duration,
    /// How long an enrollment invitation (`user invite`) stays valid.
    #[serde(with = "humantime_serde")]
    pub invite_lifetime: Duration,
}

impl Default for WebauthnSettings {
    fn default() -> Self {
        Self {
            rp_id: None,
            rp_name: "portcullis".into(),
            attestation: AttestationPolicy::None,
            allowed_aaguids: Vec::new(),
            attestation_ca_files: Vec::new(),
            fresh_within: Duration::from_secs(5 * 60),
            invite_lifetime: Duration::from_secs(72 * 3600),
        }
    }
}

impl WebauthnSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(id) = &self.rp_id
            && (id.is_empty() || id.contains(['/', ':', ' ']))
        {
            return Err(key_error("webauthn.rp_id", "must be a bare domain name"));
        }
        if self.rp_name.trim().is_empty() {
            return Err(key_error("webauthn.rp_name", "must not be empty"));
        }
        if self.fresh_within.is_zero() {
            return Err(key_error("webauthn.fresh_within", "must be positive"));
        }
        if self.invite_lifetime < Duration::from_secs(60)
            || self.invite_lifetime > Duration::from_secs(30 * 24 * 3600)
        {
            return Err(key_error(
                "webauthn.invite_lifetime",
                "must be between 1m and 30d",
            ));
        }
        if !self.allowed_aaguids.is_empty() && self.attestation == AttestationPolicy::None {
            return Err(key_error(
                "webauthn.allowed_aaguids",
                "needs webauthn.attestation = \"direct\" (without it browsers may hide the AAGUID)",
            ));
        }
        if !self.allowed_aaguids.is_empty() && self.attestation_ca_files.is_empty() {
            return Err(key_error(
                "webauthn.allowed_aaguids",
                "needs webauthn.attestation_ca_files (the CA certificates attestations must chain to): \
                 without them any authenticator can claim any model",
            ));
        }
        if !self.attestation_ca_files.is_empty() && self.attestation == AttestationPolicy::None {
            return Err(key_error(
                "webauthn.attestation_ca_files",
                "needs webauthn.attestation = \"direct\"",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;

    #[test]
    fn defaults_and_checks() {
        let s = Settings::from_toml("").unwrap();
        assert_eq!(s.webauthn.rp_id, None);
        assert_eq!(s.webauthn.fresh_within.as_secs(), 300);
        let e = Settings::from_toml("[webauthn]\nrp_id = \"https://x\"").unwrap_err();
        assert!(e.0.contains("webauthn.rp_id"), "{e}");
        let e = Settings::from_toml(
            "[webauthn]\nallowed_aaguids = [\"ee882879-721c-4913-9775-3dfcce97072a\"]",
        )
        .unwrap_err();
        assert!(e.0.contains("webauthn.allowed_aaguids"), "{e}");
        // A listed model without CAs to check its claim against is refused.
        let e = Settings::from_toml(
            "[webauthn]\nattestation = \"direct\"\nallowed_aaguids = [\"ee882879-721c-4913-9775-3dfcce97072a\"]",
        )
        .unwrap_err();
        assert!(e.0.contains("webauthn.allowed_aaguids"), "{e}");
        assert!(e.0.contains("webauthn.attestation_ca_files"), "{e}");
        assert_eq!(e.0.lines().count(), 1, "{e}");
        let e = Settings::from_toml("[webauthn]\nattestation_ca_files = [\"ca.pem\"]").unwrap_err();
        assert!(e.0.contains("webauthn.attestation_ca_files"), "{e}");
        let ok = Settings::from_toml(
            "[webauthn]\nattestation = \"direct\"\nattestation_ca_files = [\"ca.pem\"]\n\
             allowed_aaguids = [\"ee882879-721c-4913-9775-3dfcce97072a\"]",
        )
        .unwrap();
        assert_eq!(ok.webauthn.allowed_aaguids.len(), 1);
        assert_eq!(ok.webauthn.attestation_ca_files.len(), 1);
    }
}

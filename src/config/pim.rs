//! The `[pim]` section: elevation requests, their sweeping, and webhooks.

use super::secret::Secret;
use super::{ConfigError, key_error};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PimSettings {
    /// A pending request nobody decided on expires after this.
    #[serde(with = "humantime_serde")]
    pub pending_lifetime: Duration,
    /// How often windows that started or ended, pending requests that
    /// expired and due webhooks are processed. Claims never depend on it:
    /// every issuance checks the window itself.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// How far ahead a scheduled start may lie.
    #[serde(with = "humantime_serde")]
    pub max_schedule_ahead: Duration,
    /// From this risk score (0-100) on, a request needs approval even when
    /// its role's policy approves automatically.
    pub risk_approval_threshold: u32,
    /// Who approves such a request when the requester has no manager.
    pub risk_approver_group: String,
    /// After a request that needed approval for its risk was withdrawn,
    /// denied or left to expire, the user's requests need approval for this
    /// long (so withdrawing and asking again launders nothing).
    #[serde(with = "humantime_serde")]
    pub risk_cool_down: Duration,
    /// The time zone that defines office hours (07:00-19:00, Mon-Fri) for
    /// the risk score.
    pub office_time_zone: String,
    /// Members of this group see every open request and window through the
    /// API and may revoke them.
    pub admin_group: String,
    pub webhooks: Vec<WebhookSettings>,
}

impl Default for PimSettings {
    fn default() -> Self {
        Self {
            pending_lifetime: Duration::from_secs(24 * 3600),
            sweep_interval: Duration::from_secs(2),
            max_schedule_ahead: Duration::from_secs(14 * 24 * 3600),
            risk_approval_threshold: 60,
            risk_approver_group: "pim-approvers".into(),
            risk_cool_down: Duration::from_secs(24 * 3600),
            office_time_zone: "UTC".into(),
            admin_group: "admins".into(),
            webhooks: Vec::new(),
        }
    }
}

/// A receiver of PIM events: each POST is signed with HMAC-SHA256.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    pub url: String,
    pub secret: Secret,
    /// Which events to send; empty means all.
    #[serde(default)]
    pub events: Vec<String>,
}

impl PimSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.sweep_interval.is_zero() {
            return Err(key_error("pim.sweep_interval", "must be positive"));
        }
        if self.risk_approval_threshold > 100 {
            return Err(key_error(
                "pim.risk_approval_threshold",
                "is a score from 0 to 100",
            ));
        }
        if self.office_time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(key_error(
                "pim.office_time_zone",
                "must be a time zone name such as Europe/Berlin",
            ));
        }
        for h in &self.webhooks {
            if !(h.url.starts_with("https://") || h.url.starts_with("http://")) {
                return Err(key_error("pim.webhooks.url", "must be an http(s) URL"));
            }
            if h.secret.expose().len() < 16 {
                return Err(key_error(
                    "pim.webhooks.secret",
                    "must be at least 16 characters",
                ));
            }
            if let Some(bad) = h
                .events
                .iter()
                .find(|e| !crate::protocol::pim::webhook::EVENTS.contains(&e.as_str()))
            {
                return Err(key_error(
                    "pim.webhooks.events",
                    format!("unknown event {bad}"),
                ));
            }
        }
        Ok(())
    }
}

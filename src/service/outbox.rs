//! The outbox: every message portcullis sends to another system —
//! back-channel logout tokens, SAML SOAP logout requests, PIM webhooks — is
//! a row in the database first, written by the change that causes it. The
//! running servers deliver due rows (any node: each attempt is claimed with a
//! conditional update, so one node sends it), retry with backoff, and record
//! the real outcome in the audit trail. The CLI and request handlers never
//! send anything themselves; what they queue goes out from a server.
//!
//! Logout tokens and SOAP requests are built and signed at send time, so
//! queuing needs no signing key (the CLI has none loaded) and what is sent
//! is never older than its attempt.

use crate::error::Result;
use crate::protocol::pim::webhook::{MAX_ATTEMPTS, backoff};
use crate::service::{Actor, Services, record};
use crate::store::{Repo, StoredDelivery};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The `event` of a back-channel logout notice.
pub const BACKCHANNEL_LOGOUT: &str = "logout.backchannel";
/// The `event` of a SAML SOAP LogoutRequest.
pub const SAML_SOAP_LOGOUT: &str = "logout.saml_soap";

/// How long one node holds an attempt.
const LEASE: i64 = 60;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BackchannelNotice {
    pub client_id: String,
    pub session_digest: String,
    pub user_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SoapLogoutNotice {
    pub entity_id: String,
    pub name_id: String,
    pub session_index: String,
}

/// A new message, due at once.
pub(crate) fn row(url: String, event: &str, body: String, now: DateTime<Utc>) -> StoredDelivery {
    StoredDelivery {
        id: uuid::Uuid::new_v4().simple().to_string(),
        url,
        event: event.to_string(),
        body,
        state: "pending".into(),
        attempts: 0,
        next_attempt_at: now,
        last_status: None,
        last_error: None,
        created_at: now,
        delivered_at: None,
    }
}

/// Queues a back-channel logout for `client_id` inside the caller's
/// transaction. False when the client registered no back-channel URI.
pub(crate) fn queue_backchannel_logout(
    r: &mut dyn Repo,
    now: DateTime<Utc>,
    client_id: &str,
    session_digest: &str,
    user_id: &str,
) -> Result<bool> {
    let Some(uri) = r.client(client_id)?.and_then(|c| c.backchannel_logout_uri) else {
        return Ok(false);
    };
    let body = serde_json::to_string(&BackchannelNotice {
        client_id: client_id.into(),
        session_digest: session_digest.into(),
        user_id: user_id.into(),
    })
    .map_err(|e| crate::error::Error::internal(e.to_string()))?;
    r.insert_delivery(&row(uri, BACKCHANNEL_LOGOUT, body, now))?;
    Ok(true)
}

/// Queues a SAML SOAP LogoutRequest inside the caller's transaction. False
/// when the SP has no SOAP logout endpoint.
pub(crate) fn queue_saml_soap_logout(
    r: &mut dyn Repo,
    now: DateTime<Utc>,
    entity_id: &str,
    name_id: &str,
    session_index: &str,
) -> Result<bool> {
    let Some(url) = r.sp(entity_id)?.and_then(|sp| sp.soap_slo_url) else {
        return Ok(false);
    };
    let body = serde_json::to_string(&SoapLogoutNotice {
        entity_id: entity_id.into(),
        name_id: name_id.into(),
        session_index: session_index.into(),
    })
    .map_err(|e| crate::error::Error::internal(e.to_string()))?;
    r.insert_delivery(&row(url, SAML_SOAP_LOGOUT, body, now))?;
    Ok(true)
}

/// What an attempt came to: the receiver's HTTP status, or why there was none.
type Attempt = std::result::Result<u16, String>;

impl Services {
    /// Sends what is due; returns how many attempts were made.
    pub async fn deliver_outbox(&self) -> Result<usize> {
        let now = self.now();
        let due = self.db(move |r| r.due_deliveries(now, 20)).await?;
        let mut attempted = 0;
        for d in due {
            // Claim the attempt first, so two nodes never send the same one.
            let before = d.attempts;
            let claim = StoredDelivery {
                attempts: before + 1,
                next_attempt_at: now + Duration::seconds(LEASE),
                ..d.clone()
            };
            let c = claim.clone();
            if !self.db(move |r| r.record_attempt(&c, before)).await? {
                continue;
            }
            attempted += 1;
            let outcome = self.send(&d).await;
            self.settle_delivery(claim, outcome).await?;
        }
        Ok(attempted)
    }

    async fn send(&self, d: &StoredDelivery) -> Attempt {
        match d.event.as_str() {
            BACKCHANNEL_LOGOUT => {
                let n: BackchannelNotice =
                    serde_json::from_str(&d.body).map_err(|e| format!("unreadable notice: {e}"))?;
                self.send_backchannel_logout(&d.url, &n).await
            }
            SAML_SOAP_LOGOUT => {
                let n: SoapLogoutNotice =
                    serde_json::from_str(&d.body).map_err(|e| format!("unreadable notice: {e}"))?;
                self.send_saml_soap_logout(&d.url, &n).await
            }
            _ => self.send_webhook(d).await,
        }
    }

    /// Stores the attempt's outcome; a delivery or a final failure goes into
    /// the audit trail in the same transaction.
    async fn settle_delivery(&self, claim: StoredDelivery, outcome: Attempt) -> Result<()> {
        let done = self.now();
        let attempts = claim.attempts;
        let result = match outcome {
            Ok(status) if (200..300).contains(&status) => StoredDelivery {
                state: "delivered".into(),
                last_status: Some(i64::from(status)),
                last_error: None,
                delivered_at: Some(done),
                ..claim
            },
            other => {
                let (status, error) = match other {
                    Ok(s) => (Some(i64::from(s)), format!("the receiver answered {s}")),
                    Err(e) => (None, e),
                };
                let gave_up = attempts >= i64::from(MAX_ATTEMPTS);
                tracing::warn!(event = %claim.event, attempts, error = %error, "outbound message not delivered");
                StoredDelivery {
                    state: if gave_up { "failed" } else { "pending" }.into(),
                    next_attempt_at: done + backoff(attempts as u32 + 1),
                    last_status: status,
                    last_error: Some(error),
                    ..claim
                }
            }
        };
        self.db(move |r| {
            if !r.record_attempt(&result, attempts)? {
                return Ok(());
            }
            let action = match result.state.as_str() {
                "delivered" => "outbox.delivered",
                "failed" => "outbox.failed",
                _ => return Ok(()),
            };
            record(
                r,
                done,
                &Actor::system(),
                action,
                &result.event,
                json!({
                    "id": result.id,
                    "to": origin_of(&result.url),
                    "attempts": result.attempts,
                    "last_status": result.last_status,
                    "last_error": result.last_error,
                }),
            )
        })
        .await
    }
}

/// Scheme, host and port of a receiver: enough for the audit, without a
/// path or query that might carry a secret.
fn origin_of(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "(unparsable URL)".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_audit_names_the_receiver_without_its_path() {
        assert_eq!(
            super::origin_of("https://rp.example:8443/logout?token=secret"),
            "https://rp.example:8443"
        );
        assert_eq!(super::origin_of("not a url"), "(unparsable URL)");
    }
}

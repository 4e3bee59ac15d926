//! Webhooks: every PIM event is queued in the same transaction as the change
//! it reports, then delivered (signed, retried with backoff) from the outbox
//! (`service::outbox`) by a running server.

use crate::config::PimSettings;
use crate::error::Result;
use crate::protocol::pim::webhook::signature;
use crate::service::{Actor, Services};
use crate::store::{Repo, StoredDelivery, StoredRequest};
use chrono::{DateTime, Utc};
use serde_json::json;

/// The header carrying `sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`.
pub const SIGNATURE_HEADER: &str = "X-Portcullis-Signature";
/// The header carrying the Unix timestamp that was signed.
pub const TIMESTAMP_HEADER: &str = "X-Portcullis-Timestamp";
pub const EVENT_HEADER: &str = "X-Portcullis-Event";

const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Queues `event` about `q` for every webhook that wants it.
pub(crate) fn enqueue(
    r: &mut dyn Repo,
    pim: &PimSettings,
    now: DateTime<Utc>,
    event: &str,
    q: &StoredRequest,
    actor: &Actor,
) -> Result<()> {
    if pim.webhooks.is_empty() {
        return Ok(());
    }
    let role = r
        .list_roles()?
        .into_iter()
        .find(|x| x.id.as_str() == q.role_id)
        .map(|x| x.name.to_string())
        .unwrap_or_default();
    let user = r
        .user_by_id(&q.user_id)?
        .map(|u| u.username.to_string())
        .unwrap_or_default();
    for hook in &pim.webhooks {
        if !hook.events.is_empty() && !hook.events.iter().any(|e| e == event) {
            continue;
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let body = json!({
            "id": id,
            "event": event,
            "occurred_at": now,
            "actor": actor.name,
            "request": {
                "id": q.id, "role": role, "user": user, "state": q.state,
                "reason": q.reason, "ticket": q.ticket,
                "starts_at": q.starts_at, "ends_at": q.ends_at,
                "approval": q.approval, "risk_score": q.risk_score,
                "close_reason": q.close_reason,
            },
        });
        r.insert_delivery(&StoredDelivery {
            id,
            ..crate::service::outbox::row(hook.url.clone(), event, body.to_string(), now)
        })?;
    }
    Ok(())
}

impl Services {
    /// One POST; the HTTP status, or why there was none.
    pub(crate) async fn send_webhook(
        &self,
        d: &StoredDelivery,
    ) -> std::result::Result<u16, String> {
        let Some(hook) = self.settings.pim.webhooks.iter().find(|h| h.url == d.url) else {
            return Err("this webhook is no longer configured".into());
        };
        let ts = self.now().timestamp();
        let sig = signature(hook.secret.expose().as_bytes(), ts, d.body.as_bytes());
        self.http
            .post(&d.url)
            .timeout(ATTEMPT_TIMEOUT)
            .header("Content-Type", "application/json")
            .header(SIGNATURE_HEADER, sig)
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(EVENT_HEADER, &d.event)
            .body(d.body.clone())
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    }

    /// The newest outbound messages (webhooks and logout notices) and how
    /// their delivery went, for `pim webhooks`.
    pub async fn webhook_log(&self, limit: i64) -> Result<Vec<StoredDelivery>> {
        self.db(move |r| r.recent_deliveries(limit)).await
    }
}

//! Windows end by themselves: the sweeper moves requests on as time passes
//! (start, end, pending timeout), tells every recipient of elevated tokens
//! when a window closes, and delivers webhooks. Every node may run it: a
//! change is claimed with a conditional update, so one node acts on it.

use super::notify::enqueue;
use super::request::{OPEN, event_name};
use super::view::{Names, current_state};
use crate::domain::UserId;
use crate::error::Result;
use crate::protocol::pim::state::{Event, State, transition};
use crate::service::outbox;
use crate::service::{Actor, Services, record};
use crate::store::{StateChange, StoredRequest};
use serde_json::json;

/// Which event moved a request from its stored state to the current one.
fn due_event(stored: State, current: State) -> Option<Event> {
    match (stored, current) {
        (State::Pending, State::Expired) => Some(Event::PendingTimedOut),
        (State::Approved, State::Active) => Some(Event::Started),
        (State::Approved | State::Active, State::Ended) => Some(Event::WindowElapsed),
        _ => None,
    }
}

impl Services {
    /// Moves every request whose time has come; returns how many moved.
    pub async fn pim_sweep(&self) -> Result<usize> {
        // First what lost its basis (an eligibility expired, say): such a
        // window neither starts nor runs on.
        let mut moved = self
            .end_unsupported_elevations(None, &Actor::system(), "the eligibility ended")
            .await?;
        let now = self.now();
        let open = self.db(|r| r.requests_in(&OPEN)).await?;
        for q in open {
            let Some(stored) = State::parse(&q.state) else {
                continue;
            };
            let current = current_state(&q, now);
            let Some(event) = due_event(stored, current) else {
                continue;
            };
            if transition(stored, event).is_err() && event != Event::WindowElapsed {
                continue;
            }
            if self.apply_due(&q, event, current).await? {
                moved += 1;
                if event == Event::WindowElapsed {
                    self.after_window_closed(&q.id).await?;
                }
            }
        }
        Ok(moved)
    }

    async fn apply_due(&self, q: &StoredRequest, event: Event, to: State) -> Result<bool> {
        let (q, pim, now) = (q.clone(), self.settings.pim.clone(), self.now());
        self.db(move |r| {
            let (closed, why) = match event {
                Event::PendingTimedOut => (Some(q.pending_until), "no decision in time"),
                Event::WindowElapsed => (Some(q.ends_at), "the window ended"),
                _ => (None, ""),
            };
            let change = StateChange {
                to: to.as_str().into(),
                starts_at: None,
                ends_at: None,
                closed: closed.map(|at| (at, "system".to_string(), why.to_string())),
            };
            if !r.change_request(&q.id, &q.state, &change)? {
                return Ok(false);
            }
            let names = Names::load(r)?;
            let name = event_name(event);
            let detail = match event {
                Event::WindowElapsed => json!({"request": q.id, "ended_at": q.ends_at}),
                Event::Started => json!({"request": q.id, "ends_at": q.ends_at}),
                _ => json!({"request": q.id, "pending_until": q.pending_until}),
            };
            let action = match event {
                Event::WindowElapsed => "pim.window_ended".to_string(),
                _ => format!("pim.{name}"),
            };
            record(
                r,
                now,
                &Actor::system(),
                &action,
                &names.role(&q.role_id),
                detail,
            )?;
            let q2 = r.request(&q.id)?.unwrap_or(q.clone());
            enqueue(r, &pim, now, name, &q2, &Actor::system())?;
            Ok(true)
        })
        .await
    }

    /// After a window closed: a back-channel logout queued for every OIDC
    /// client and SAML SP that received tokens or assertions under it, and
    /// an audit entry saying who will be told, in one transaction. A running
    /// server sends them (`service::outbox`) and audits the real outcome.
    pub(crate) async fn after_window_closed(&self, request_id: &str) -> Result<()> {
        let (rid, now) = (request_id.to_string(), self.now());
        self.db(move |r| {
            let Some(user) = r.request(&rid)?.map(|q| q.user_id) else {
                return Ok(());
            };
            let issued = r.issuances_of(&rid)?;
            let mut told: Vec<String> = Vec::new();
            let mut seen = std::collections::BTreeSet::new();
            for i in &issued {
                let key = (
                    i.protocol.clone(),
                    i.recipient.clone(),
                    i.session_digest.clone(),
                    i.session_index.clone(),
                );
                if !seen.insert(key) {
                    continue;
                }
                let queued = match (i.protocol.as_str(), &i.session_digest) {
                    ("oidc", Some(d)) => {
                        outbox::queue_backchannel_logout(r, now, &i.recipient, d, user.as_str())?
                    }
                    ("saml", _) => match (&i.name_id, &i.session_index) {
                        (Some(n), Some(s)) => {
                            outbox::queue_saml_soap_logout(r, now, &i.recipient, n, s)?
                        }
                        _ => false,
                    },
                    _ => false,
                };
                told.push(format!(
                    "{}:{}:{}",
                    i.protocol,
                    i.recipient,
                    if queued {
                        "logout queued"
                    } else {
                        "no back-channel endpoint"
                    }
                ));
            }
            record(
                r,
                now,
                &Actor::system(),
                "pim.recipients_told",
                &rid,
                json!({"recipients": told}),
            )
        })
        .await
    }

    /// Disabling a user (call after the status is stored): their direct
    /// eligibilities go, and every open request and window ends at once.
    pub async fn end_all_elevations_of(&self, user: &UserId, actor: &Actor) -> Result<()> {
        let (uid, now) = (user.clone(), self.now());
        self.db(move |r| {
            let removed = r.delete_eligibilities_of(&uid)?;
            if removed > 0 {
                record(
                    r,
                    now,
                    &Actor::system(),
                    "pim.eligibility_removed",
                    uid.as_str(),
                    json!({"count": removed, "why": "user disabled"}),
                )?;
            }
            Ok(())
        })
        .await?;
        self.end_unsupported_elevations(Some(user), actor, "the user was disabled")
            .await?;
        Ok(())
    }

    /// Runs the sweeper and the outbox sender every `pim.sweep_interval`,
    /// for as long as the server runs.
    pub async fn run_pim_worker(&self) {
        let mut tick = tokio::time::interval(self.settings.pim.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.pim_sweep().await {
                tracing::warn!(error = %e, "PIM sweep failed");
            }
            if let Err(e) = self.deliver_outbox().await {
                tracing::warn!(error = %e, "outbox delivery failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_time_driven_moves_are_due() {
        use State as S;
        assert_eq!(
            due_event(S::Pending, S::Expired),
            Some(Event::PendingTimedOut)
        );
        assert_eq!(due_event(S::Approved, S::Active), Some(Event::Started));
        assert_eq!(due_event(S::Approved, S::Ended), Some(Event::WindowElapsed));
        assert_eq!(due_event(S::Active, S::Ended), Some(Event::WindowElapsed));
        for s in S::ALL {
            assert_eq!(due_event(s, s), None, "{s:?} stays");
        }
        assert_eq!(due_event(S::Revoked, S::Ended), None);
    }
}

//! What pages, the JSON API and the CLI show of PIM records.

use crate::domain::UserId;
use crate::error::Result;
use crate::protocol::pim::state::{State, effective};
use crate::store::{Repo, StoredDecision, StoredEligibility, StoredRequest};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// IDs to names for a listing: every role and group (few), and the users
/// the listing names (the directory may be large).
pub(crate) struct Names {
    roles: HashMap<String, String>,
    users: HashMap<String, String>,
    groups: HashMap<String, String>,
}

impl Names {
    pub(crate) fn load(r: &mut dyn Repo) -> Result<Self> {
        Ok(Self {
            roles: r
                .list_roles()?
                .into_iter()
                .map(|x| (x.id.to_string(), x.name.to_string()))
                .collect(),
            users: HashMap::new(),
            groups: r
                .list_groups()?
                .into_iter()
                .map(|g| (g.id.to_string(), g.name.to_string()))
                .collect(),
        })
    }

    /// Looks up the users a listing is about to name.
    pub(crate) fn add_users<'a>(
        &mut self,
        r: &mut dyn Repo,
        ids: impl IntoIterator<Item = &'a UserId>,
    ) -> Result<()> {
        for id in ids {
            if self.users.contains_key(id.as_str()) {
                continue;
            }
            if let Some(u) = r.user_by_id(id)? {
                self.users.insert(id.to_string(), u.username.to_string());
            }
        }
        Ok(())
    }

    pub(crate) fn role(&self, id: &str) -> String {
        self.roles.get(id).cloned().unwrap_or_else(|| id.into())
    }

    pub(crate) fn user(&self, id: &str) -> String {
        self.users.get(id).cloned().unwrap_or_else(|| id.into())
    }

    pub(crate) fn eligibility_json(&self, e: &StoredEligibility) -> Value {
        let principal = match (&e.user_id, &e.group_id) {
            (Some(u), _) => self.user(u.as_str()),
            (None, Some(g)) => format!(
                "group:{}",
                self.groups.get(g).cloned().unwrap_or_else(|| g.clone())
            ),
            (None, None) => String::new(),
        };
        json!({
            "id": e.id,
            "role": self.role(&e.role_id),
            "principal": principal,
            "starts_at": e.starts_at,
            "ends_at": e.ends_at,
            "created_at": e.created_at,
            "created_by": e.created_by,
        })
    }
}

/// One decision on a request.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionView {
    pub approver: String,
    pub decision: String,
    pub comment: String,
    pub at: DateTime<Utc>,
}

/// A request as its requester and approvers see it. `state` is the state
/// time implies (an approved window whose start has come is `active`).
#[derive(Debug, Clone, Serialize)]
pub struct RequestView {
    pub id: String,
    pub role: String,
    pub user: String,
    pub state: String,
    pub reason: String,
    pub ticket: Option<String>,
    pub duration_seconds: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub pending_until: DateTime<Utc>,
    pub approval: String,
    pub risk_score: i64,
    pub risk_factors: Vec<String>,
    pub decisions: Vec<DecisionView>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    pub close_reason: Option<String>,
}

impl RequestView {
    pub(crate) fn build(
        q: &StoredRequest,
        names: &Names,
        now: DateTime<Utc>,
        decisions: Vec<StoredDecision>,
    ) -> Self {
        Self {
            id: q.id.clone(),
            role: names.role(&q.role_id),
            user: names.user(q.user_id.as_str()),
            state: current_state(q, now).as_str().to_string(),
            reason: q.reason.clone(),
            ticket: q.ticket.clone(),
            duration_seconds: q.duration,
            starts_at: q.starts_at,
            ends_at: q.ends_at,
            created_at: q.created_at,
            pending_until: q.pending_until,
            approval: q.approval.clone(),
            risk_score: q.risk_score,
            risk_factors: q.risk_factors.clone(),
            decisions: decisions
                .into_iter()
                .map(|d| DecisionView {
                    approver: names.user(d.approver_id.as_str()),
                    decision: d.decision,
                    comment: d.comment,
                    at: d.at,
                })
                .collect(),
            closed_at: q.closed_at,
            closed_by: q.closed_by.clone(),
            close_reason: q.close_reason.clone(),
        }
    }

    pub fn is(&self, s: State) -> bool {
        self.state == s.as_str()
    }
}

/// The state a stored request is in at `now`: stored states are moved on by
/// the sweeper, but every decision reads the time itself. A pending request
/// past its deadline counts as expired.
pub(crate) fn current_state(q: &StoredRequest, now: DateTime<Utc>) -> State {
    let stored = State::parse(&q.state).unwrap_or(State::Revoked);
    if stored == State::Pending && now >= q.pending_until {
        return State::Expired;
    }
    effective(stored, q.starts_at, q.ends_at, now)
}

/// A role the user may request, and what its policy asks.
#[derive(Debug, Clone, Serialize)]
pub struct EligibilityView {
    pub role: String,
    pub description: String,
    pub until: Option<DateTime<Utc>>,
    pub max_duration_seconds: i64,
    pub approval: String,
    pub require_justification: bool,
    pub ticket_required: bool,
    pub require_mfa: bool,
    pub windows: Vec<String>,
    pub networks: Vec<String>,
    pub allow_scheduled: bool,
    /// The user's live window for this role, if any.
    pub active: Option<RequestView>,
}

/// A request waiting for this approver, with what helps decide.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalItem {
    pub request: RequestView,
    /// The requester's earlier requests, newest first.
    pub history: Vec<RequestView>,
}

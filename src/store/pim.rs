//! Repository traits for Privileged Identity Management and webhooks.
//!
//! Records are kept close to their rows; the service turns them into the
//! protocol's types (policies, states) where the rules need them.

use crate::domain::UserId;
use crate::error::Result;
use chrono::{DateTime, Utc};

/// A privileged role's activation policy, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    pub role_id: String,
    pub max_duration: i64,
    pub require_justification: bool,
    pub justification_min_len: i64,
    pub ticket_required: bool,
    pub ticket_pattern: Option<String>,
    /// `none`, `manager` or `group:<name>:<count>`.
    pub approval: String,
    pub require_mfa: bool,
    pub mfa_within: i64,
    /// Window specs, e.g. `Mon-Fri 14:00-16:00 Europe/Berlin`.
    pub windows: Vec<String>,
    /// CIDR networks.
    pub networks: Vec<String>,
    pub max_concurrent: Option<i64>,
    pub allow_scheduled: bool,
    pub updated_at: DateTime<Utc>,
}

/// A user, or every member of a group, may request a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEligibility {
    pub id: String,
    pub role_id: String,
    pub user_id: Option<UserId>,
    pub group_id: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// An activation request and, once granted, its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    pub id: String,
    pub role_id: String,
    pub user_id: UserId,
    /// A `protocol::pim::state::State` name.
    pub state: String,
    pub reason: String,
    pub ticket: Option<String>,
    /// Seconds asked for.
    pub duration: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// A pending request not decided by then expires.
    pub pending_until: DateTime<Utc>,
    /// What this request needs: `none`, `manager` or `group:<name>:<count>`.
    pub approval: String,
    pub risk_score: i64,
    pub risk_factors: Vec<String>,
    pub ip: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    pub close_reason: Option<String>,
}

/// One approver's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDecision {
    pub request_id: String,
    pub approver_id: UserId,
    /// `approve` or `deny`.
    pub decision: String,
    pub comment: String,
    pub at: DateTime<Utc>,
}

/// A token or assertion that carried an elevation, and who received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIssuance {
    pub id: String,
    pub request_id: String,
    /// `oidc` or `saml`.
    pub protocol: String,
    /// The client ID or SP entity ID.
    pub recipient: String,
    pub session_digest: Option<String>,
    pub grant_id: Option<String>,
    pub name_id: Option<String>,
    pub session_index: Option<String>,
    pub at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What changes when a request moves on: the new state and, for an ending,
/// who ended it and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub to: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub closed: Option<(DateTime<Utc>, String, String)>,
}

pub trait PimRepo {
    fn upsert_policy(&mut self, p: &StoredPolicy) -> Result<()>;
    fn policy(&mut self, role_id: &str) -> Result<Option<StoredPolicy>>;
    /// Holds the role's policy row until the transaction ends, so checks
    /// that count a role's requests (one open request per user, at most
    /// N windows at once) run one at a time per role. SQLite's single
    /// writer already serialises them.
    fn lock_policy(&mut self, role_id: &str) -> Result<()>;
    fn list_policies(&mut self) -> Result<Vec<StoredPolicy>>;

    fn insert_eligibility(&mut self, e: &StoredEligibility) -> Result<()>;
    /// False when there was none with that ID.
    fn delete_eligibility(&mut self, id: &str) -> Result<bool>;
    fn list_eligibilities(&mut self) -> Result<Vec<StoredEligibility>>;
    /// Direct eligibilities of the user and those of the given groups.
    fn eligibilities_for(
        &mut self,
        user: &UserId,
        group_ids: &[String],
    ) -> Result<Vec<StoredEligibility>>;
    /// Removes the user's direct eligibilities; returns how many.
    fn delete_eligibilities_of(&mut self, user: &UserId) -> Result<u64>;

    fn insert_request(&mut self, r: &StoredRequest) -> Result<()>;
    fn request(&mut self, id: &str) -> Result<Option<StoredRequest>>;
    /// The user's requests, newest first.
    fn requests_of(&mut self, user: &UserId, limit: i64) -> Result<Vec<StoredRequest>>;
    /// Requests in any of `states`, oldest first.
    fn requests_in(&mut self, states: &[&str]) -> Result<Vec<StoredRequest>>;
    /// Moves a request from `from` on; false when it was not in `from` any
    /// more (another node or request got there first).
    fn change_request(&mut self, id: &str, from: &str, change: &StateChange) -> Result<bool>;

    fn insert_decision(&mut self, d: &StoredDecision) -> Result<()>;
    fn decisions_of(&mut self, request_id: &str) -> Result<Vec<StoredDecision>>;

    fn insert_issuance(&mut self, i: &StoredIssuance) -> Result<()>;
    fn issuances_of(&mut self, request_id: &str) -> Result<Vec<StoredIssuance>>;
}

/// One webhook notice and how its delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    pub id: String,
    pub url: String,
    pub event: String,
    pub body: String,
    /// `pending`, `delivered` or `failed` (gave up).
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

pub trait WebhookRepo {
    fn insert_delivery(&mut self, d: &StoredDelivery) -> Result<()>;
    /// Pending deliveries due at `now`, oldest first.
    fn due_deliveries(&mut self, now: DateTime<Utc>, limit: i64) -> Result<Vec<StoredDelivery>>;
    /// Stores an attempt's outcome; false when `attempts_before` no longer
    /// matches (another node took this attempt).
    fn record_attempt(&mut self, d: &StoredDelivery, attempts_before: i64) -> Result<bool>;
    /// The newest deliveries, newest first.
    fn recent_deliveries(&mut self, limit: i64) -> Result<Vec<StoredDelivery>>;
}

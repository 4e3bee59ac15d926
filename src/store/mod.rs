//! Durable state behind repository traits in domain types.
//!
//! The service layer owns transactions: it calls [`Store::tx`] with a closure
//! that receives a [`Repo`]; everything the closure does commits together or
//! not at all. Calls block, so the service runs them on the blocking pool.

pub mod diesel;
mod mfa;
mod oidc;
mod pim;
mod saml;
mod webauthn;

pub use mfa::{MfaRepo, StoredRecoveryCode, StoredTotp};
pub use oidc::{ClientRepo, ConsentRepo, GrantRepo, KeyRepo, RegistrationRepo};
pub use pim::{
    PimRepo, StateChange, StoredDecision, StoredDelivery, StoredEligibility, StoredIssuance,
    StoredPolicy, StoredRequest, WebhookRepo,
};
pub use saml::SpRepo;
pub use webauthn::{InviteRepo, PasskeyRepo, StoredInvite, StoredPasskey};

use crate::domain::{
    AuditEntry, Group, GroupName, NewAuditEntry, PasswordCredential, Role, RoleName, Session, User,
    UserId, UserStatus, Username,
};
use crate::error::{Error, ErrorKind, Result};
use chrono::{DateTime, Utc};
use std::sync::Arc;

pub trait UserRepo {
    /// Fails with `Conflict` when the username is taken.
    fn insert_user(&mut self, user: &User) -> Result<()>;
    fn user_by_id(&mut self, id: &UserId) -> Result<Option<User>>;
    fn user_by_username(&mut self, name: &Username) -> Result<Option<User>>;
    fn list_users(&mut self) -> Result<Vec<User>>;
    fn count_users(&mut self) -> Result<i64>;
    fn set_user_status(
        &mut self,
        id: &UserId,
        status: UserStatus,
        now: DateTime<Utc>,
    ) -> Result<()>;
    fn password(&mut self, id: &UserId) -> Result<Option<PasswordCredential>>;
    fn set_password(&mut self, id: &UserId, cred: &PasswordCredential) -> Result<()>;
}

pub trait GroupRepo {
    fn insert_group(&mut self, group: &Group) -> Result<()>;
    fn group_by_name(&mut self, name: &GroupName) -> Result<Option<Group>>;
    fn list_groups(&mut self) -> Result<Vec<Group>>;
    /// Adding an existing member is a `Conflict`.
    fn add_member(&mut self, group: &Group, user: &UserId, now: DateTime<Utc>) -> Result<()>;
    /// Removing a non-member is `NotFound`.
    fn remove_member(&mut self, group: &Group, user: &UserId) -> Result<()>;
    fn set_group_required_acr(&mut self, group: &Group, level: Option<&str>) -> Result<()>;
    fn members(&mut self, group: &Group) -> Result<Vec<User>>;
    fn groups_of(&mut self, user: &UserId) -> Result<Vec<Group>>;
}

pub trait RoleRepo {
    fn insert_role(&mut self, role: &Role) -> Result<()>;
    fn role_by_name(&mut self, name: &RoleName) -> Result<Option<Role>>;
    fn list_roles(&mut self) -> Result<Vec<Role>>;
    fn assign_role(&mut self, role: &Role, user: &UserId, now: DateTime<Utc>) -> Result<()>;
    fn unassign_role(&mut self, role: &Role, user: &UserId) -> Result<()>;
    /// Roles held permanently by the user.
    fn roles_of(&mut self, user: &UserId) -> Result<Vec<Role>>;
    fn role_holders(&mut self, role: &Role) -> Result<Vec<User>>;
}

pub trait SessionRepo {
    fn insert_session(&mut self, session: &Session) -> Result<()>;
    fn session(&mut self, id_digest: &str) -> Result<Option<Session>>;
    fn touch_session(&mut self, id_digest: &str, now: DateTime<Utc>) -> Result<()>;
    /// Replaces a live session's methods and factor times (a step-up or a
    /// fresh check proved another factor in the same session).
    fn record_factors(
        &mut self,
        id_digest: &str,
        amr: &[String],
        factors: &std::collections::BTreeMap<String, DateTime<Utc>>,
        auth_time: DateTime<Utc>,
    ) -> Result<()>;
    fn delete_session(&mut self, id_digest: &str) -> Result<()>;
    fn delete_sessions_of(&mut self, user: &UserId) -> Result<u64>;
    fn sessions_of(&mut self, user: &UserId) -> Result<Vec<Session>>;
    fn delete_expired_sessions(&mut self, now: DateTime<Utc>) -> Result<u64>;
    /// Up to `limit` sessions past their absolute end at `now`, or last seen
    /// at or before `idle_since`.
    fn timed_out_sessions(
        &mut self,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Session>>;
}

pub trait AuditRepo {
    /// Appends to the hash chain. Two writers racing for the same sequence
    /// number make one fail with `Contention`, and [`Store::tx`] retries it.
    fn append_audit(&mut self, entry: &NewAuditEntry) -> Result<AuditEntry>;
    /// The newest `limit` entries, newest first.
    fn recent_audit(&mut self, limit: i64) -> Result<Vec<AuditEntry>>;
    /// Entries with `seq > after`, oldest first, at most `limit`.
    fn audit_after(&mut self, after: i64, limit: i64) -> Result<Vec<AuditEntry>>;
    /// How many `action` events about `subject` happened since `since`.
    fn count_audit(&mut self, action: &str, subject: &str, since: DateTime<Utc>) -> Result<i64>;
    /// The distinct addresses of `action` events about `subject` before
    /// `before`, at most `limit`.
    fn audit_ips(
        &mut self,
        action: &str,
        subject: &str,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<String>>;
}

pub trait MetaRepo {
    fn meta(&mut self, key: &str) -> Result<Option<String>>;
    /// Fails with `Conflict` when the key exists: a once-only marker.
    fn insert_meta(&mut self, key: &str, value: &str) -> Result<()>;
}

/// Everything a transaction can touch.
pub trait Repo:
    UserRepo
    + GroupRepo
    + RoleRepo
    + SessionRepo
    + AuditRepo
    + MetaRepo
    + ClientRepo
    + ConsentRepo
    + GrantRepo
    + KeyRepo
    + RegistrationRepo
    + SpRepo
    + MfaRepo
    + PasskeyRepo
    + InviteRepo
    + PimRepo
    + WebhookRepo
{
}
impl<T> Repo for T where
    T: UserRepo
        + GroupRepo
        + RoleRepo
        + SessionRepo
        + AuditRepo
        + MetaRepo
        + ClientRepo
        + ConsentRepo
        + GrantRepo
        + KeyRepo
        + RegistrationRepo
        + SpRepo
        + MfaRepo
        + PasskeyRepo
        + InviteRepo
        + PimRepo
        + WebhookRepo
{
}

pub trait Store: Send + Sync + 'static {
    /// Runs `f` inside one transaction; commits on `Ok`, rolls back on `Err`.
    fn run_tx(&self, f: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()>;
    /// Fails when the database cannot be reached within `timeout`.
    fn ping(&self, timeout: std::time::Duration) -> Result<()>;
    /// Which SQL backend this is, for logs.
    fn backend(&self) -> &'static str;
}

pub type SharedStore = Arc<dyn Store>;

const TX_ATTEMPTS: usize = 5;

impl dyn Store {
    /// Runs `f` in a transaction and returns its result. A `Contention` error
    /// (two writers raced) reruns the whole closure a few times.
    pub fn tx<T>(&self, mut f: impl FnMut(&mut dyn Repo) -> Result<T>) -> Result<T> {
        let mut last = None;
        for attempt in 0..TX_ATTEMPTS {
            let mut out = None;
            match self.run_tx(&mut |repo| {
                out = Some(f(repo)?);
                Ok(())
            }) {
                Ok(()) => {
                    return out.ok_or_else(|| Error::internal("transaction produced no result"));
                }
                Err(e) if e.kind == ErrorKind::Contention => {
                    last = Some(e);
                    // A short, growing pause lets the other writer finish.
                    std::thread::sleep(std::time::Duration::from_millis(5 << attempt));
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::internal("transaction retries exhausted")))
    }
}

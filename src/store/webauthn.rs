//! Repository traits for WebAuthn credentials and enrollment invitations.

use crate::domain::UserId;
use crate::error::Result;
use chrono::{DateTime, Utc};

/// A registered WebAuthn credential. `credential` is webauthn-rs' own
/// serialised form (public key, counter, flags); the other fields are kept
/// beside it so that lists and lookups need not parse it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    pub id: String,
    pub user_id: UserId,
    /// The credential ID, base64url without padding.
    pub credential_id: String,
    pub name: String,
    /// A passkey (resident, usernameless) or a security key used only as a
    /// second factor.
    pub discoverable: bool,
    pub credential: String,
    pub aaguid: Option<String>,
    pub sign_count: i64,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

pub trait PasskeyRepo {
    /// Fails with `Conflict` when the credential ID is registered already.
    fn insert_passkey(&mut self, p: &StoredPasskey) -> Result<()>;
    /// The user's credentials, oldest first.
    fn passkeys_of(&mut self, user: &UserId) -> Result<Vec<StoredPasskey>>;
    fn passkey_by_credential_id(&mut self, credential_id: &str) -> Result<Option<StoredPasskey>>;
    /// Stores what a successful use changed (counter, backup state) and when.
    fn record_passkey_use(
        &mut self,
        id: &str,
        credential: &str,
        sign_count: i64,
        backup_state: bool,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// False when the user has no credential with that ID.
    fn rename_passkey(&mut self, user: &UserId, id: &str, name: &str) -> Result<bool>;
    /// False when the user has no credential with that ID.
    fn delete_passkey(&mut self, user: &UserId, id: &str) -> Result<bool>;
}

/// A one-time enrollment link, known by the digest of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInvite {
    pub digest: String,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

pub trait InviteRepo {
    fn insert_invite(&mut self, invite: &StoredInvite) -> Result<()>;
    fn invite(&mut self, digest: &str) -> Result<Option<StoredInvite>>;
    /// Marks it used; false when it was used already (a race lost).
    fn spend_invite(&mut self, digest: &str, now: DateTime<Utc>) -> Result<bool>;
    /// Voids the user's unused invitations (a new one replaces them).
    fn void_invites_of(&mut self, user: &UserId, now: DateTime<Utc>) -> Result<()>;
}

//! Repository traits for the OpenID Connect side.

use crate::domain::{Client, Grant, RefreshToken, RegistrationToken, StoredKey, UserId};
use crate::error::Result;
use chrono::{DateTime, Utc};

pub trait ClientRepo {
    /// Fails with `Conflict` when the client ID is taken.
    fn insert_client(&mut self, client: &Client) -> Result<()>;
    fn client(&mut self, client_id: &str) -> Result<Option<Client>>;
    fn list_clients(&mut self) -> Result<Vec<Client>>;
    /// Replaces every field but `client_id` and `created_at`; `NotFound` when absent.
    fn update_client(&mut self, client: &Client) -> Result<()>;
    /// Removes the client and everything issued to it; `NotFound` when absent.
    fn delete_client(&mut self, client_id: &str) -> Result<()>;
}

pub trait ConsentRepo {
    fn consent(&mut self, user: &UserId, client_id: &str) -> Result<Option<Vec<String>>>;
    fn set_consent(
        &mut self,
        user: &UserId,
        client_id: &str,
        scopes: &[String],
        now: DateTime<Utc>,
    ) -> Result<()>;
}

pub trait GrantRepo {
    fn insert_grant(&mut self, grant: &Grant) -> Result<()>;
    fn grant(&mut self, id: &str) -> Result<Option<Grant>>;
    /// Marks the grant revoked (idempotent); every token under it turns inactive.
    fn revoke_grant(&mut self, id: &str, now: DateTime<Utc>) -> Result<()>;
    /// Revokes every live grant of a user (so every refresh and access
    /// token under them turns inactive) but those from the session `keep`;
    /// how many there were.
    fn revoke_grants_of_user(
        &mut self,
        user: &UserId,
        keep: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64>;
    /// Live grants that came from one browser session.
    fn grants_of_session(&mut self, session_digest: &str) -> Result<Vec<Grant>>;
    /// Every grant of a client, revoked ones too, oldest first.
    fn grants_of_client(&mut self, client_id: &str) -> Result<Vec<Grant>>;
    fn insert_refresh_token(&mut self, token: &RefreshToken) -> Result<()>;
    fn refresh_token(&mut self, token_hash: &str) -> Result<Option<RefreshToken>>;
    /// Marks a refresh token used; false when it already was (a race lost).
    fn use_refresh_token(&mut self, token_hash: &str, now: DateTime<Utc>) -> Result<bool>;
    fn revoke_jti(&mut self, jti: &str, expires_at: DateTime<Utc>) -> Result<()>;
    fn is_jti_revoked(&mut self, jti: &str) -> Result<bool>;
    /// Drops expired grants, refresh tokens and revocation entries.
    fn purge_expired_grants(&mut self, now: DateTime<Utc>) -> Result<u64>;
}

pub trait KeyRepo {
    fn insert_key(&mut self, key: &StoredKey) -> Result<()>;
    /// Holds the lock under which a first start creates what must exist
    /// once (signing keys, the SAML certificate, the first administrator)
    /// until the transaction ends. PostgreSQL; SQLite's writers are
    /// serialised already.
    fn lock_first_start(&mut self) -> Result<()>;
    fn keys(&mut self) -> Result<Vec<StoredKey>>;
    fn delete_key(&mut self, kid: &str) -> Result<()>;
}

pub trait RegistrationRepo {
    fn insert_registration_token(&mut self, token: &RegistrationToken) -> Result<()>;
    /// Spends one use of a live token; false when unknown, expired or used up.
    fn spend_registration_token(&mut self, token_hash: &str, now: DateTime<Utc>) -> Result<bool>;
}

//! Repository trait for second factors.

use crate::domain::UserId;
use crate::error::Result;
use chrono::{DateTime, Utc};

/// A stored TOTP credential: the sealed secret and the last step used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTotp {
    pub sealed_secret: String,
    pub created_at: DateTime<Utc>,
    pub last_step: i64,
}

/// One recovery code: its Argon2id hash and whether it was spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecoveryCode {
    pub id: String,
    pub code_hash: String,
    pub used: bool,
}

pub trait MfaRepo {
    fn totp(&mut self, user: &UserId) -> Result<Option<StoredTotp>>;
    fn set_totp(&mut self, user: &UserId, totp: &StoredTotp) -> Result<()>;
    fn delete_totp(&mut self, user: &UserId) -> Result<()>;
    /// Moves `last_step` forward; false when `step` is not newer (a replay
    /// or a race lost).
    fn advance_totp_step(&mut self, user: &UserId, step: i64) -> Result<bool>;
    fn recovery_codes(&mut self, user: &UserId) -> Result<Vec<StoredRecoveryCode>>;
    /// Replaces every recovery code of the user.
    fn replace_recovery_codes(
        &mut self,
        user: &UserId,
        hashes: &[String],
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Spends one code; false when it was spent already.
    fn spend_recovery_code(&mut self, id: &str, now: DateTime<Utc>) -> Result<bool>;
}

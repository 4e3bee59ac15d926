//! The records the store keeps, in domain types.

use super::{GroupId, GroupName, RoleId, RoleName, UserId, Username};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub display_name: String,
    pub email: Option<String>,
    pub manager_id: Option<UserId>,
    pub status: UserStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    pub fn is_active(&self) -> bool {
        self.status == UserStatus::Active
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub id: GroupId,
    pub name: GroupName,
    pub description: String,
    pub created_at: DateTime<Utc>,
    /// The weakest `acr` its members may sign in to any application with.
    pub required_acr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Role {
    pub id: RoleId,
    pub name: RoleName,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

/// An Argon2id PHC string, plus whether the user must replace it at next sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordCredential {
    pub hash: String,
    pub must_change: bool,
    pub updated_at: DateTime<Utc>,
}

/// A browser session. The store keys it by the SHA-256 digest of the cookie
/// value, so a copy of the database does not hand out live sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id_digest: String,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub auth_time: DateTime<Utc>,
    /// RFC 8176 method references, e.g. `["pwd"]`.
    pub amr: Vec<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// When each method was last proven in this session, so a step-up or a
    /// fresh-passkey check can ask "how recently", not only "whether".
    pub factors: std::collections::BTreeMap<String, DateTime<Utc>>,
}

/// One audit event before it is chained into the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewAuditEntry {
    pub at: DateTime<Utc>,
    /// Who did it: a username, `system`, or `cli`.
    pub actor: String,
    /// What happened, dotted: `login.success`, `user.create`…
    pub action: String,
    /// What it was done to (a username, a group name…), or empty.
    pub subject: String,
    pub ip: Option<String>,
    /// Structured context as a JSON object.
    pub detail: serde_json::Value,
}

/// An audit event as stored: numbered and hash-chained to its predecessor so
/// that removing or editing a row is detectable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(flatten)]
    pub entry: NewAuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

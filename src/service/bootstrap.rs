//! First start on an empty database: an `admin` user in the `admins` group
//! with a one-time password, created once and never again.

use super::{Actor, Services, record};
use crate::crypto::password::hash_password_in;
use crate::crypto::random_token;
use crate::domain::{
    Group, GroupId, GroupName, PasswordCredential, User, UserId, UserStatus, Username,
};
use crate::error::{Error, ErrorKind, Result};
use serde_json::json;

const MARKER: &str = "bootstrap.done";

impl Services {
    /// Creates the first administrator when the database has never been
    /// bootstrapped and holds no users. Returns the one-time password to show
    /// once; `None` when there was nothing to do. Safe when several nodes
    /// start together: the marker row lets exactly one of them win.
    pub async fn bootstrap(&self) -> Result<Option<String>> {
        if self.db(|r| r.meta(MARKER)).await?.is_some() {
            return Ok(None);
        }
        let password = random_token();
        let pw = password.clone();
        let hash = self
            .hashing(move |m| hash_password_in(m, &pw))
            .await?
            .map_err(Error::internal)?;
        let now = self.now();
        let result = self
            .db(move |r| {
                // Nodes starting together: the first to take the lock decides.
                r.lock_first_start()?;
                if r.meta(MARKER)?.is_some() {
                    return Ok(false);
                }
                r.insert_meta(MARKER, &now.to_rfc3339())?;
                if r.count_users()? > 0 {
                    return Ok(false);
                }
                let admin = User {
                    id: UserId::generate(),
                    username: Username::parse("admin").map_err(|e| Error::internal(e.0))?,
                    display_name: "Administrator".into(),
                    email: None,
                    manager_id: None,
                    status: UserStatus::Active,
                    created_at: now,
                    updated_at: now,
                };
                r.insert_user(&admin)?;
                r.set_password(
                    &admin.id,
                    &PasswordCredential {
                        hash: hash.clone(),
                        must_change: true,
                        updated_at: now,
                    },
                )?;
                let name = GroupName::parse("admins").map_err(|e| Error::internal(e.0))?;
                let group = match r.group_by_name(&name)? {
                    Some(g) => g,
                    None => {
                        let g = Group {
                            id: GroupId::generate(),
                            name,
                            description: "Administrators of portcullis".into(),
                            created_at: now,
                            required_acr: None,
                        };
                        r.insert_group(&g)?;
                        g
                    }
                };
                r.add_member(&group, &admin.id, now)?;
                record(
                    r,
                    now,
                    &Actor::system(),
                    "bootstrap",
                    "admin",
                    json!({"group": "admins"}),
                )?;
                Ok(true)
            })
            .await;
        match result {
            Ok(true) => Ok(Some(password)),
            Ok(false) => Ok(None),
            // Another node inserted the marker first.
            Err(e) if e.kind == ErrorKind::Conflict => Ok(None),
            Err(e) => Err(e),
        }
    }
}

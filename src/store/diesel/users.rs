use super::schema::{password_credentials, users};
use super::{DbConn, conflict_as, from_ts, to_ts};
use crate::domain::{PasswordCredential, User, UserId, UserStatus, Username};
use crate::error::{Error, Result};
use crate::store::UserRepo;
use chrono::{DateTime, Utc};
use diesel::prelude::*;

#[derive(Queryable, Insertable)]
#[diesel(table_name = users)]
pub(super) struct UserRow {
    id: String,
    username: String,
    display_name: String,
    email: Option<String>,
    manager_id: Option<String>,
    status: String,
    created_at: i64,
    updated_at: i64,
}

impl UserRow {
    fn from_domain(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            username: u.username.to_string(),
            display_name: u.display_name.clone(),
            email: u.email.clone(),
            manager_id: u.manager_id.as_ref().map(|m| m.to_string()),
            status: u.status.as_str().into(),
            created_at: to_ts(u.created_at),
            updated_at: to_ts(u.updated_at),
        }
    }

    pub(super) fn into_domain(self) -> Result<User> {
        Ok(User {
            id: UserId::from_stored(self.id),
            username: Username::parse(&self.username)
                .map_err(|e| Error::internal(format!("stored username: {e}")))?,
            display_name: self.display_name,
            email: self.email,
            manager_id: self.manager_id.map(UserId::from_stored),
            status: UserStatus::parse(&self.status)
                .ok_or_else(|| Error::internal(format!("stored status {}", self.status)))?,
            created_at: from_ts(self.created_at),
            updated_at: from_ts(self.updated_at),
        })
    }
}

pub(super) fn rows_to_users(rows: Vec<UserRow>) -> Result<Vec<User>> {
    rows.into_iter().map(UserRow::into_domain).collect()
}

impl UserRepo for DbConn {
    fn insert_user(&mut self, user: &User) -> Result<()> {
        diesel::insert_into(users::table)
            .values(UserRow::from_domain(user))
            .execute(self)
            .map_err(conflict_as(&format!("user {}", user.username)))?;
        Ok(())
    }

    fn user_by_id(&mut self, id: &UserId) -> Result<Option<User>> {
        users::table
            .find(id.as_str())
            .first::<UserRow>(self)
            .optional()?
            .map(UserRow::into_domain)
            .transpose()
    }

    fn user_by_username(&mut self, name: &Username) -> Result<Option<User>> {
        users::table
            .filter(users::username.eq(name.as_str()))
            .first::<UserRow>(self)
            .optional()?
            .map(UserRow::into_domain)
            .transpose()
    }

    fn list_users(&mut self) -> Result<Vec<User>> {
        rows_to_users(users::table.order(users::username.asc()).load(self)?)
    }

    fn count_users(&mut self) -> Result<i64> {
        Ok(users::table.count().get_result(self)?)
    }

    fn set_user_status(
        &mut self,
        id: &UserId,
        status: UserStatus,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let n = diesel::update(users::table.find(id.as_str()))
            .set((
                users::status.eq(status.as_str()),
                users::updated_at.eq(to_ts(now)),
            ))
            .execute(self)?;
        if n == 0 {
            return Err(Error::not_found("no such user"));
        }
        Ok(())
    }

    fn password(&mut self, id: &UserId) -> Result<Option<PasswordCredential>> {
        let row = password_credentials::table
            .find(id.as_str())
            .select((
                password_credentials::hash,
                password_credentials::must_change,
                password_credentials::updated_at,
            ))
            .first::<(String, bool, i64)>(self)
            .optional()?;
        Ok(
            row.map(|(hash, must_change, updated_at)| PasswordCredential {
                hash,
                must_change,
                updated_at: from_ts(updated_at),
            }),
        )
    }

    fn set_password(&mut self, id: &UserId, cred: &PasswordCredential) -> Result<()> {
        let updated = diesel::update(password_credentials::table.find(id.as_str()))
            .set((
                password_credentials::hash.eq(&cred.hash),
                password_credentials::must_change.eq(cred.must_change),
                password_credentials::updated_at.eq(to_ts(cred.updated_at)),
            ))
            .execute(self)?;
        if updated == 0 {
            diesel::insert_into(password_credentials::table)
                .values((
                    password_credentials::user_id.eq(id.as_str()),
                    password_credentials::hash.eq(&cred.hash),
                    password_credentials::must_change.eq(cred.must_change),
                    password_credentials::updated_at.eq(to_ts(cred.updated_at)),
                ))
                .execute(self)?;
        }
        Ok(())
    }
}

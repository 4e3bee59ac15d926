//! Users, groups, roles and permanent role assignments: what the CLI and the
//! admin pages change. Every change is audited in the same transaction.

use super::lifecycle::{CutAccess, cut_access_in};
use super::{Actor, Services, record};
use crate::crypto::password::hash_password_in;
use crate::domain::{
    Group, GroupId, GroupName, PasswordCredential, Role, RoleId, RoleName, User, UserId,
    UserStatus, Username, validate_email,
};
use crate::error::{Error, Result};
use crate::protocol::login::check_password_policy;
use crate::store::Repo;
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    pub must_change_password: bool,
    /// Username of the user's manager (who may approve their requests).
    pub manager: Option<String>,
}

/// A user with what they belong to, as `user show` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct UserDetails {
    #[serde(flatten)]
    pub user: User,
    pub groups: Vec<GroupName>,
    pub roles: Vec<RoleName>,
    pub has_password: bool,
    pub sessions: usize,
    /// The manager's username, when one is set.
    pub manager: Option<Username>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupDetails {
    #[serde(flatten)]
    pub group: Group,
    pub members: Vec<Username>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleDetails {
    #[serde(flatten)]
    pub role: Role,
    pub holders: Vec<Username>,
}

fn parse<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| Error::invalid(e.to_string()))
}

fn need_user(r: &mut dyn Repo, name: &Username) -> Result<User> {
    r.user_by_username(name)?
        .ok_or_else(|| Error::not_found(format!("no user named {name}")))
}

fn need_group(r: &mut dyn Repo, name: &GroupName) -> Result<Group> {
    r.group_by_name(name)?
        .ok_or_else(|| Error::not_found(format!("no group named {name}")))
}

/// The user with this (unparsed) name, or a clear error.
pub(crate) fn need_user_named(r: &mut dyn Repo, name: &str) -> Result<User> {
    need_user(r, &parse(Username::parse(name))?)
}

/// The group with this (unparsed) name, or a clear error.
pub(crate) fn need_group_named(r: &mut dyn Repo, name: &str) -> Result<Group> {
    need_group(r, &parse(GroupName::parse(name))?)
}

fn need_role(r: &mut dyn Repo, name: &RoleName) -> Result<Role> {
    r.role_by_name(name)?
        .ok_or_else(|| Error::not_found(format!("no role named {name}")))
}

fn usernames(users: Vec<User>) -> Vec<Username> {
    users.into_iter().map(|u| u.username).collect()
}

impl Services {
    async fn hash_new_password(&self, password: &str, username: &str) -> Result<String> {
        check_password_policy(password, self.settings.login.password_min_length, username)
            .map_err(Error::invalid)?;
        let pw = password.to_string();
        self.hashing(move |m| hash_password_in(m, &pw))
            .await?
            .map_err(Error::internal)
    }

    pub async fn create_user(&self, actor: &Actor, input: NewUser) -> Result<User> {
        let username = parse(Username::parse(&input.username))?;
        let email = match input.email.as_deref().map(str::trim) {
            Some("") | None => None,
            Some(e) => Some(parse(validate_email(e))?),
        };
        let display_name = input
            .display_name
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| username.to_string());
        if display_name.chars().count() > 200 {
            return Err(Error::invalid(
                "the display name must be at most 200 characters",
            ));
        }
        let manager = match input.manager.as_deref() {
            Some(m) => Some(parse(Username::parse(m))?),
            None => None,
        };
        let hash = match &input.password {
            Some(pw) => Some(self.hash_new_password(pw, username.as_str()).await?),
            None => None,
        };
        let now = self.now();
        let user = User {
            id: UserId::generate(),
            username,
            display_name,
            email,
            manager_id: None,
            status: UserStatus::Active,
            created_at: now,
            updated_at: now,
        };
        let (mut u, actor, must_change) = (user, actor.clone(), input.must_change_password);
        self.db(move |r| {
            if let Some(m) = &manager {
                u.manager_id = Some(need_user(r, m)?.id);
            }
            r.insert_user(&u)?;
            if let Some(hash) = &hash {
                r.set_password(
                    &u.id,
                    &PasswordCredential {
                        hash: hash.clone(),
                        must_change,
                        updated_at: now,
                    },
                )?;
            }
            record(
                r,
                now,
                &actor,
                "user.create",
                u.username.as_str(),
                json!({"id": u.id}),
            )?;
            Ok(u.clone())
        })
        .await
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        self.db(|r| r.list_users()).await
    }

    pub async fn user_details(&self, username: &str) -> Result<UserDetails> {
        let name = parse(Username::parse(username))?;
        self.db(move |r| {
            let user = need_user(r, &name)?;
            Ok(UserDetails {
                groups: r.groups_of(&user.id)?.into_iter().map(|g| g.name).collect(),
                roles: r.roles_of(&user.id)?.into_iter().map(|x| x.name).collect(),
                has_password: r.password(&user.id)?.is_some(),
                sessions: r.sessions_of(&user.id)?.len(),
                manager: match &user.manager_id {
                    Some(id) => r.user_by_id(id)?.map(|m| m.username),
                    None => None,
                },
                user,
            })
        })
        .await
    }

    /// Disabling cuts the user's access everywhere at once: every session
    /// ends (and the applications in it are told), every grant and refresh
    /// token is revoked.
    pub async fn set_user_status(
        &self,
        actor: &Actor,
        username: &str,
        status: UserStatus,
    ) -> Result<User> {
        let name = parse(Username::parse(username))?;
        let now = self.now();
        let who = actor.clone();
        let actor = actor.clone();
        let user = self
            .db(move |r| {
                let user = need_user(r, &name)?;
                r.set_user_status(&user.id, status, now)?;
                let cut = match status {
                    UserStatus::Disabled => cut_access_in(r, &user.id, None, now)?,
                    UserStatus::Active => CutAccess::default(),
                };
                let action = match status {
                    UserStatus::Active => "user.enable",
                    UserStatus::Disabled => "user.disable",
                };
                record(
                    r,
                    now,
                    &actor,
                    action,
                    name.as_str(),
                    json!({"sessions_ended": cut.sessions.len(), "grants_revoked": cut.grants_revoked,
                        "logouts_queued": cut.notices}),
                )?;
                Ok(User {
                    status,
                    updated_at: now,
                    ..user
                })
            })
            .await?;
        if status == UserStatus::Disabled {
            self.end_all_elevations_of(&user.id, &who).await?;
        }
        Ok(user)
    }

    /// Sets a password chosen by an administrator; `must_change` makes it one-time.
    pub async fn set_password(
        &self,
        actor: &Actor,
        username: &str,
        password: &str,
        must_change: bool,
    ) -> Result<()> {
        let name = parse(Username::parse(username))?;
        let hash = self.hash_new_password(password, name.as_str()).await?;
        let now = self.now();
        let actor = actor.clone();
        // A reset is what an administrator does for a compromised account:
        // whoever held it loses every session, grant and refresh token.
        self.db(move |r| {
            let user = need_user(r, &name)?;
            r.set_password(
                &user.id,
                &PasswordCredential {
                    hash: hash.clone(),
                    must_change,
                    updated_at: now,
                },
            )?;
            let cut = cut_access_in(r, &user.id, None, now)?;
            record(
                r,
                now,
                &actor,
                "user.set_password",
                name.as_str(),
                json!({"must_change": must_change, "sessions_ended": cut.sessions.len(),
                        "grants_revoked": cut.grants_revoked, "logouts_queued": cut.notices}),
            )
        })
        .await
    }

    pub async fn create_group(
        &self,
        actor: &Actor,
        name: &str,
        description: &str,
    ) -> Result<Group> {
        let group = Group {
            id: GroupId::generate(),
            name: parse(GroupName::parse(name))?,
            description: description.trim().to_string(),
            created_at: self.now(),
            required_acr: None,
        };
        let (g, actor) = (group.clone(), actor.clone());
        self.db(move |r| {
            r.insert_group(&g)?;
            record(
                r,
                g.created_at,
                &actor,
                "group.create",
                g.name.as_str(),
                json!({}),
            )
        })
        .await?;
        Ok(group)
    }

    pub async fn list_groups(&self) -> Result<Vec<GroupDetails>> {
        self.db(|r| {
            let groups = r.list_groups()?;
            groups
                .into_iter()
                .map(|group| {
                    Ok(GroupDetails {
                        members: usernames(r.members(&group)?),
                        group,
                    })
                })
                .collect()
        })
        .await
    }

    /// Adds (`member = true`) or removes a user from a group. A removal
    /// ends the requests and windows the membership made eligible.
    pub async fn set_membership(
        &self,
        actor: &Actor,
        group: &str,
        username: &str,
        member: bool,
    ) -> Result<()> {
        let gname = parse(GroupName::parse(group))?;
        let uname = parse(Username::parse(username))?;
        let now = self.now();
        let (who, actor) = (actor.clone(), actor.clone());
        let why = format!("removed from the group {gname}");
        let user = self
            .db(move |r| {
                let g = need_group(r, &gname)?;
                let u = need_user(r, &uname)?;
                if member {
                    r.add_member(&g, &u.id, now).map_err(|e| match e.kind {
                        crate::error::ErrorKind::Conflict => {
                            Error::conflict(format!("{uname} is already a member of {gname}"))
                        }
                        _ => e,
                    })?;
                } else {
                    r.remove_member(&g, &u.id)?;
                }
                let action = if member {
                    "group.add_member"
                } else {
                    "group.remove_member"
                };
                record(
                    r,
                    now,
                    &actor,
                    action,
                    gname.as_str(),
                    json!({"user": uname}),
                )?;
                Ok(u.id)
            })
            .await?;
        if !member {
            // Rule 7: what the membership made eligible ends with it.
            self.end_unsupported_elevations(Some(&user), &who, &why)
                .await?;
        }
        Ok(())
    }

    pub async fn create_role(&self, actor: &Actor, name: &str, description: &str) -> Result<Role> {
        let role = Role {
            id: RoleId::generate(),
            name: parse(RoleName::parse(name))?,
            description: description.trim().to_string(),
            created_at: self.now(),
        };
        let (x, actor) = (role.clone(), actor.clone());
        self.db(move |r| {
            r.insert_role(&x)?;
            record(
                r,
                x.created_at,
                &actor,
                "role.create",
                x.name.as_str(),
                json!({}),
            )
        })
        .await?;
        Ok(role)
    }

    pub async fn list_roles(&self) -> Result<Vec<RoleDetails>> {
        self.db(|r| {
            let roles = r.list_roles()?;
            roles
                .into_iter()
                .map(|role| {
                    Ok(RoleDetails {
                        holders: usernames(r.role_holders(&role)?),
                        role,
                    })
                })
                .collect()
        })
        .await
    }

    /// Grants (`assign = true`) or withdraws a permanent role.
    pub async fn set_role_assignment(
        &self,
        actor: &Actor,
        role: &str,
        username: &str,
        assign: bool,
    ) -> Result<()> {
        let rname = parse(RoleName::parse(role))?;
        let uname = parse(Username::parse(username))?;
        let now = self.now();
        let actor = actor.clone();
        self.db(move |r| {
            let x = need_role(r, &rname)?;
            let u = need_user(r, &uname)?;
            if assign && r.policy(x.id.as_str())?.is_some() {
                // Privilege is never standing: that is what PIM is for.
                return Err(Error::invalid(format!(
                    "{rname} is privileged and cannot be held permanently; make {uname} eligible with `portcullis pim eligible add {rname} {uname}`"
                )));
            }
            if assign {
                r.assign_role(&x, &u.id, now).map_err(|e| match e.kind {
                    crate::error::ErrorKind::Conflict => {
                        Error::conflict(format!("{uname} already holds {rname}"))
                    }
                    _ => e,
                })?;
            } else {
                r.unassign_role(&x, &u.id)?;
            }
            let action = if assign {
                "role.assign"
            } else {
                "role.unassign"
            };
            record(
                r,
                now,
                &actor,
                action,
                rname.as_str(),
                json!({"user": uname}),
            )
        })
        .await
    }

    /// Sets (or, with `None`, clears) the sign-in level a group's members
    /// need for every application.
    pub async fn set_group_required_acr(
        &self,
        actor: &Actor,
        group: &str,
        level: Option<&str>,
    ) -> Result<()> {
        let gname = parse(GroupName::parse(group))?;
        let stored = crate::service::required_level(&level.map(str::to_string))?;
        let (now, actor) = (self.now(), actor.clone());
        self.db(move |r| {
            let g = need_group(r, &gname)?;
            r.set_group_required_acr(&g, stored.as_deref())?;
            record(
                r,
                now,
                &actor,
                "group.require",
                gname.as_str(),
                json!({"required_acr": stored}),
            )
        })
        .await
    }
}

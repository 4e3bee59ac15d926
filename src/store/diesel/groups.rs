//! Groups, memberships, roles and permanent role assignments.

use super::schema::{memberships, role_assignments, roles, user_groups, users};
use super::users::{UserRow, rows_to_users};
use super::{DbConn, conflict_as, from_ts, to_ts};
use crate::domain::{Group, GroupId, GroupName, Role, RoleId, RoleName, User, UserId};
use crate::error::{Error, Result};
use crate::store::{GroupRepo, RoleRepo};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

type NamedRow = (String, String, String, i64);
type GroupRow = (String, String, String, i64, Option<String>);

fn group_from(row: GroupRow) -> Result<Group> {
    Ok(Group {
        id: GroupId::from_stored(row.0),
        name: GroupName::parse(&row.1)
            .map_err(|e| Error::internal(format!("stored group: {e}")))?,
        description: row.2,
        created_at: from_ts(row.3),
        required_acr: row.4,
    })
}

fn role_from(row: NamedRow) -> Result<Role> {
    Ok(Role {
        id: RoleId::from_stored(row.0),
        name: RoleName::parse(&row.1).map_err(|e| Error::internal(format!("stored role: {e}")))?,
        description: row.2,
        created_at: from_ts(row.3),
    })
}

impl GroupRepo for DbConn {
    fn insert_group(&mut self, g: &Group) -> Result<()> {
        diesel::insert_into(user_groups::table)
            .values((
                user_groups::id.eq(g.id.as_str()),
                user_groups::name.eq(g.name.as_str()),
                user_groups::description.eq(&g.description),
                user_groups::created_at.eq(to_ts(g.created_at)),
                user_groups::required_acr.eq(&g.required_acr),
            ))
            .execute(self)
            .map_err(conflict_as(&format!("group {}", g.name)))?;
        Ok(())
    }

    fn group_by_name(&mut self, name: &GroupName) -> Result<Option<Group>> {
        user_groups::table
            .filter(user_groups::name.eq(name.as_str()))
            .first::<GroupRow>(self)
            .optional()?
            .map(group_from)
            .transpose()
    }

    fn list_groups(&mut self) -> Result<Vec<Group>> {
        user_groups::table
            .order(user_groups::name.asc())
            .load::<GroupRow>(self)?
            .into_iter()
            .map(group_from)
            .collect()
    }

    fn add_member(&mut self, group: &Group, user: &UserId, now: DateTime<Utc>) -> Result<()> {
        diesel::insert_into(memberships::table)
            .values((
                memberships::group_id.eq(group.id.as_str()),
                memberships::user_id.eq(user.as_str()),
                memberships::created_at.eq(to_ts(now)),
            ))
            .execute(self)
            .map_err(conflict_as("that membership"))?;
        Ok(())
    }

    fn remove_member(&mut self, group: &Group, user: &UserId) -> Result<()> {
        let n = diesel::delete(memberships::table.find((group.id.as_str(), user.as_str())))
            .execute(self)?;
        if n == 0 {
            return Err(Error::not_found(format!(
                "the user is not a member of {}",
                group.name
            )));
        }
        Ok(())
    }

    fn set_group_required_acr(&mut self, group: &Group, level: Option<&str>) -> Result<()> {
        diesel::update(user_groups::table.find(group.id.as_str()))
            .set(user_groups::required_acr.eq(level))
            .execute(self)?;
        Ok(())
    }

    fn members(&mut self, group: &Group) -> Result<Vec<User>> {
        let rows = memberships::table
            .inner_join(users::table)
            .filter(memberships::group_id.eq(group.id.as_str()))
            .order(users::username.asc())
            .select(users::all_columns)
            .load::<UserRow>(self)?;
        rows_to_users(rows)
    }

    fn groups_of(&mut self, user: &UserId) -> Result<Vec<Group>> {
        memberships::table
            .inner_join(user_groups::table)
            .filter(memberships::user_id.eq(user.as_str()))
            .order(user_groups::name.asc())
            .select(user_groups::all_columns)
            .load::<GroupRow>(self)?
            .into_iter()
            .map(group_from)
            .collect()
    }
}

impl RoleRepo for DbConn {
    fn insert_role(&mut self, r: &Role) -> Result<()> {
        diesel::insert_into(roles::table)
            .values((
                roles::id.eq(r.id.as_str()),
                roles::name.eq(r.name.as_str()),
                roles::description.eq(&r.description),
                roles::created_at.eq(to_ts(r.created_at)),
            ))
            .execute(self)
            .map_err(conflict_as(&format!("role {}", r.name)))?;
        Ok(())
    }

    fn role_by_name(&mut self, name: &RoleName) -> Result<Option<Role>> {
        roles::table
            .filter(roles::name.eq(name.as_str()))
            .first::<NamedRow>(self)
            .optional()?
            .map(role_from)
            .transpose()
    }

    fn list_roles(&mut self) -> Result<Vec<Role>> {
        roles::table
            .order(roles::name.asc())
            .load::<NamedRow>(self)?
            .into_iter()
            .map(role_from)
            .collect()
    }

    fn assign_role(&mut self, role: &Role, user: &UserId, now: DateTime<Utc>) -> Result<()> {
        diesel::insert_into(role_assignments::table)
            .values((
                role_assignments::role_id.eq(role.id.as_str()),
                role_assignments::user_id.eq(user.as_str()),
                role_assignments::created_at.eq(to_ts(now)),
            ))
            .execute(self)
            .map_err(conflict_as("that role assignment"))?;
        Ok(())
    }

    fn unassign_role(&mut self, role: &Role, user: &UserId) -> Result<()> {
        let n = diesel::delete(role_assignments::table.find((role.id.as_str(), user.as_str())))
            .execute(self)?;
        if n == 0 {
            return Err(Error::not_found(format!(
                "the user does not hold {}",
                role.name
            )));
        }
        Ok(())
    }

    fn roles_of(&mut self, user: &UserId) -> Result<Vec<Role>> {
        role_assignments::table
            .inner_join(roles::table)
            .filter(role_assignments::user_id.eq(user.as_str()))
            .order(roles::name.asc())
            .select(roles::all_columns)
            .load::<NamedRow>(self)?
            .into_iter()
            .map(role_from)
            .collect()
    }

    fn role_holders(&mut self, role: &Role) -> Result<Vec<User>> {
        let rows = role_assignments::table
            .inner_join(users::table)
            .filter(role_assignments::role_id.eq(role.id.as_str()))
            .order(users::username.asc())
            .select(users::all_columns)
            .load::<UserRow>(self)?;
        rows_to_users(rows)
    }
}

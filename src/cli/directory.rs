//! `user`, `group`, `role` and `audit` commands.

use crate::clock::SystemClock;
use crate::config::Settings;
use crate::domain::UserStatus;
use crate::error::{Error, Result};
use crate::service::directory::NewUser;
use crate::service::{Actor, Services};
use clap::Subcommand;
use serde::Serialize;
use std::io::BufRead;
use std::sync::Arc;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user. Without --password-stdin the user has no password yet.
    Add {
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long = "display-name")]
        display_name: Option<String>,
        /// Username of the user's manager.
        #[arg(long)]
        manager: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long = "password-stdin")]
        password_stdin: bool,
    },
    /// Create a one-time, expiring link with which the user registers a
    /// passkey and is signed in. Creates the user (without a password) when
    /// missing; an older unused link of the user stops working.
    Invite {
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long = "display-name")]
        display_name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one user with groups and roles.
    Show {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Disable a user and end their sessions.
    Disable { username: String },
    /// Enable a disabled user.
    Enable { username: String },
    /// Set a password. Without --password-stdin a one-time password is
    /// generated, printed, and must be changed at next sign-in.
    SetPassword {
        username: String,
        #[arg(long = "password-stdin")]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Create a group.
    Add {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List groups with their members.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a user to a group.
    AddMember { group: String, username: String },
    /// Remove a user from a group.
    RemoveMember { group: String, username: String },
    /// Require members to sign in at least this strongly, for every
    /// application: pwd, mfa, phr, or none to clear.
    SetRequire { group: String, level: String },
}

#[derive(Subcommand, Debug)]
pub enum RoleCommand {
    /// Create a role.
    Add {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List roles with their holders.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Give a user a role permanently.
    Assign { role: String, username: String },
    /// Take a permanent role away from a user.
    Unassign { role: String, username: String },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Show the newest events.
    List {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Recompute the keyed chain and report the first broken link; exits
    /// non-zero with one line when the log does not hold.
    Verify {
        /// A head printed earlier by `audit checkpoint` (SEQ:TAG): the log
        /// must still reach it with the same tag (finds truncation).
        #[arg(long, value_name = "HEAD")]
        checkpoint: Option<String>,
    },
    /// Verify the chain and print its head (SEQ:TAG) as one line, to keep
    /// somewhere else and pass to `audit verify --checkpoint` later.
    Checkpoint,
}

/// The chain's report when it holds; otherwise an error naming the reason.
async fn verified(
    svc: &Services,
    checkpoint: Option<crate::crypto::audit::Checkpoint>,
) -> Result<crate::service::audit::ChainReport> {
    let report = svc.verify_audit(checkpoint).await?;
    match report.problem {
        None => Ok(report),
        Some(p) => Err(Error::new(crate::error::ErrorKind::Conflict, p)),
    }
}

pub(super) async fn services(settings: Settings) -> Result<Services> {
    let issuer = settings.issuer_for_port(settings.bind.port());
    crate::open_services(settings, Arc::new(SystemClock), issuer).await
}

fn read_password() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        Error::invalid(format!("cannot read the password from standard input: {e}"))
    })?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    if pw.is_empty() {
        return Err(Error::invalid("no password on standard input"));
    }
    Ok(pw)
}

pub(super) fn print_json(v: &impl Serialize) -> Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Error::internal(e.to_string()))?;
    println!("{s}");
    Ok(())
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

pub async fn user(settings: Settings, cmd: UserCommand) -> Result<()> {
    let svc = services(settings).await?;
    let actor = Actor::cli();
    match cmd {
        UserCommand::Add {
            username,
            email,
            display_name,
            manager,
            password_stdin,
        } => {
            let password = if password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            let u = svc
                .create_user(
                    &actor,
                    NewUser {
                        username,
                        display_name,
                        email,
                        password,
                        must_change_password: false,
                        manager,
                    },
                )
                .await?;
            println!("created user {} ({})", u.username, u.id);
        }
        UserCommand::Invite {
            username,
            email,
            display_name,
            json,
        } => {
            let inv = svc
                .invite_user(&actor, &username, display_name, email)
                .await?;
            if json {
                return print_json(&serde_json::json!({
                    "url": inv.url,
                    "expires_at": inv.expires_at.to_rfc3339(),
                    "created": inv.created,
                }));
            }
            if inv.created {
                println!("created user {username} without a password");
            }
            println!("{}", inv.url);
            println!(
                "valid once, until {}",
                inv.expires_at.format("%Y-%m-%d %H:%M UTC")
            );
        }
        UserCommand::List { json } => {
            let users = svc.list_users().await?;
            if json {
                return print_json(&users);
            }
            println!("{:<24} {:<9} {:<28} NAME", "USERNAME", "STATUS", "EMAIL");
            for u in users {
                let email = u.email.as_deref().unwrap_or("-");
                println!(
                    "{:<24} {:<9} {:<28} {}",
                    u.username,
                    u.status.as_str(),
                    email,
                    u.display_name
                );
            }
        }
        UserCommand::Show { username, json } => {
            let d = svc.user_details(&username).await?;
            if json {
                return print_json(&d);
            }
            println!("username:     {}", d.user.username);
            println!("id:           {}", d.user.id);
            println!("display name: {}", d.user.display_name);
            println!("email:        {}", d.user.email.as_deref().unwrap_or("-"));
            println!("status:       {}", d.user.status.as_str());
            println!(
                "manager:      {}",
                d.manager.as_ref().map_or("-", |m| m.as_str())
            );
            println!(
                "password:     {}",
                if d.has_password { "set" } else { "none" }
            );
            println!("groups:       {}", or_dash(&join(&d.groups)));
            println!("roles:        {}", or_dash(&join(&d.roles)));
            println!("sessions:     {}", d.sessions);
            println!("created:      {}", d.user.created_at.to_rfc3339());
        }
        UserCommand::Disable { username } => {
            svc.set_user_status(&actor, &username, UserStatus::Disabled)
                .await?;
            println!("disabled {username}; their sessions have ended");
        }
        UserCommand::Enable { username } => {
            svc.set_user_status(&actor, &username, UserStatus::Active)
                .await?;
            println!("enabled {username}");
        }
        UserCommand::SetPassword {
            username,
            password_stdin,
        } => {
            if password_stdin {
                svc.set_password(&actor, &username, &read_password()?, false)
                    .await?;
                println!("password set for {username}");
            } else {
                let one_time = crate::crypto::random_token();
                svc.set_password(&actor, &username, &one_time, true).await?;
                println!("one-time password for {username}: {one_time}");
                println!("it must be changed at the next sign-in");
            }
        }
    }
    Ok(())
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn group(settings: Settings, cmd: GroupCommand) -> Result<()> {
    let svc = services(settings).await?;
    let actor = Actor::cli();
    match cmd {
        GroupCommand::Add { name, description } => {
            let g = svc.create_group(&actor, &name, &description).await?;
            println!("created group {}", g.name);
        }
        GroupCommand::List { json } => {
            let groups = svc.list_groups().await?;
            if json {
                return print_json(&groups);
            }
            println!("{:<24} MEMBERS", "GROUP");
            for g in groups {
                println!("{:<24} {}", g.group.name, or_dash(&join(&g.members)));
            }
        }
        GroupCommand::AddMember { group, username } => {
            svc.set_membership(&actor, &group, &username, true).await?;
            println!("added {username} to {group}");
        }
        GroupCommand::SetRequire { group, level } => {
            let level = (level != "none").then_some(level);
            svc.set_group_required_acr(&actor, &group, level.as_deref())
                .await?;
            println!("updated {group}");
        }
        GroupCommand::RemoveMember { group, username } => {
            svc.set_membership(&actor, &group, &username, false).await?;
            println!("removed {username} from {group}");
        }
    }
    Ok(())
}

pub async fn role(settings: Settings, cmd: RoleCommand) -> Result<()> {
    let svc = services(settings).await?;
    let actor = Actor::cli();
    match cmd {
        RoleCommand::Add { name, description } => {
            let r = svc.create_role(&actor, &name, &description).await?;
            println!("created role {}", r.name);
        }
        RoleCommand::List { json } => {
            let roles = svc.list_roles().await?;
            if json {
                return print_json(&roles);
            }
            println!("{:<24} HOLDERS", "ROLE");
            for r in roles {
                println!("{:<24} {}", r.role.name, or_dash(&join(&r.holders)));
            }
        }
        RoleCommand::Assign { role, username } => {
            svc.set_role_assignment(&actor, &role, &username, true)
                .await?;
            println!("assigned {role} to {username}");
        }
        RoleCommand::Unassign { role, username } => {
            svc.set_role_assignment(&actor, &role, &username, false)
                .await?;
            println!("unassigned {role} from {username}");
        }
    }
    Ok(())
}

pub async fn audit(settings: Settings, cmd: AuditCommand) -> Result<()> {
    let svc = services(settings).await?;
    match cmd {
        AuditCommand::List { limit, json } => {
            let entries = svc.recent_audit(limit.clamp(1, 10_000)).await?;
            if json {
                return print_json(&entries);
            }
            for e in entries {
                let x = &e.entry;
                println!(
                    "{:>6} {} {:<20} {:<16} {:<16} {} {}",
                    e.seq,
                    x.at.to_rfc3339(),
                    x.action,
                    x.actor,
                    or_dash(&x.subject),
                    x.ip.as_deref().unwrap_or("-"),
                    x.detail
                );
            }
        }
        AuditCommand::Verify { checkpoint } => {
            let checkpoint = checkpoint
                .map(|c| crate::crypto::audit::Checkpoint::parse(&c))
                .transpose()
                .map_err(Error::invalid)?;
            let report = verified(&svc, checkpoint).await?;
            let mut line = format!("audit chain intact: {} entries", report.entries);
            if report.unkeyed > 0 {
                line.push_str(&format!(
                    " ({} written before keying, checked by plain hash only)",
                    report.unkeyed
                ));
            }
            println!("{line}");
        }
        AuditCommand::Checkpoint => {
            let report = verified(&svc, None).await?;
            if let Some(head) = report.head {
                println!("{head}");
            }
        }
    }
    Ok(())
}

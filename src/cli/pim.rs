//! `portcullis pim …`: privileged-role policies, eligibility, revocation,
//! the webhook log, and a user's own requests through the JSON API.

use super::directory::{print_json, services};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::service::Actor;
use crate::service::pim::{PolicyInput, Principal};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum PimCommand {
    /// Activation policies of privileged roles.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Who may request a privileged role.
    #[command(subcommand)]
    Eligible(EligibleCommand),
    /// Policies, eligibilities and open requests.
    List {
        #[arg(long)]
        json: bool,
    },
    /// End a window (or an open request) at once, as an administrator.
    Revoke {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Run the sweeper once: start and end windows whose time has come,
    /// expire undecided requests, send due webhooks.
    Sweep,
    /// The webhook delivery log, newest first.
    Webhooks {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Request an elevation for yourself through a server's JSON API, with
    /// an access token that has the `pim` scope.
    Request {
        role: String,
        #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
        duration: Duration,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        ticket: Option<String>,
        /// RFC 3339; default now.
        #[arg(long)]
        start: Option<DateTime<Utc>>,
        /// The server's base URL.
        #[arg(long, env = "PORTCULLIS_URL")]
        url: String,
        #[arg(long, env = "PORTCULLIS_TOKEN", hide_env_values = true)]
        token: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Make a role privileged, or replace its policy (unset options take
    /// their defaults).
    Set(Box<PolicySet>),
}

#[derive(clap::Args, Debug)]
pub struct PolicySet {
    role: String,
    /// The longest window one request may ask for.
    #[arg(long = "max-duration", value_parser = humantime::parse_duration)]
    max_duration: Option<Duration>,
    /// none, manager, group:<name> or group:<name>:<count>.
    #[arg(long)]
    approval: Option<String>,
    #[arg(long = "require-justification")]
    require_justification: bool,
    /// Shortest reason accepted (with --require-justification); default 10.
    #[arg(long = "justification-min-length")]
    justification_min_length: Option<usize>,
    #[arg(long = "require-ticket")]
    require_ticket: bool,
    /// A regular expression a ticket must match, e.g. 'OPS-[0-9]+'.
    #[arg(long = "ticket-pattern")]
    ticket_pattern: Option<String>,
    /// A user-verified passkey within --mfa-within (default webauthn.fresh_within).
    #[arg(long = "require-mfa")]
    require_mfa: bool,
    #[arg(long = "mfa-within", value_parser = humantime::parse_duration)]
    mfa_within: Option<Duration>,
    /// e.g. 'Mon-Fri 14:00-16:00 Europe/Berlin'; repeat for several.
    #[arg(long = "window")]
    windows: Vec<String>,
    /// A CIDR the request must come from; repeat for several.
    #[arg(long = "network")]
    networks: Vec<String>,
    /// At most this many active windows of the role at once, across users.
    #[arg(long = "max-concurrent")]
    max_concurrent: Option<u32>,
    /// Allow requests that start later.
    #[arg(long = "allow-scheduled")]
    allow_scheduled: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
pub enum EligibleCommand {
    /// Make a user (NAME) or a group (group:NAME) eligible.
    Add {
        role: String,
        principal: String,
        #[arg(long)]
        from: Option<DateTime<Utc>>,
        #[arg(long)]
        until: Option<DateTime<Utc>>,
    },
    /// Remove an eligibility by its ID (see `pim list`).
    Remove { id: String },
}

pub async fn pim(settings: Settings, cmd: PimCommand) -> Result<()> {
    if let PimCommand::Request {
        role,
        duration,
        reason,
        ticket,
        start,
        url,
        token,
    } = cmd
    {
        return request(role, duration, reason, ticket, start, &url, &token).await;
    }
    let svc = services(settings).await?;
    let actor = Actor::cli();
    match cmd {
        PimCommand::Policy(PolicyCommand::Set(p)) => {
            let p = *p;
            let input = PolicyInput {
                max_duration: p.max_duration,
                approval: p.approval,
                require_justification: p.require_justification,
                justification_min_len: p.justification_min_length,
                ticket_required: p.require_ticket,
                ticket_pattern: p.ticket_pattern,
                require_mfa: p.require_mfa,
                mfa_within: p.mfa_within,
                windows: p.windows,
                networks: p.networks,
                max_concurrent: p.max_concurrent,
                allow_scheduled: p.allow_scheduled,
            };
            let stored = svc.set_pim_policy(&actor, &p.role, input).await?;
            if p.json {
                return print_json(&json!({"role": p.role, "approval": stored.approval,
                    "max_duration_seconds": stored.max_duration, "windows": stored.windows,
                    "networks": stored.networks}));
            }
            println!(
                "{} is privileged: up to {}s, approval {}",
                p.role, stored.max_duration, stored.approval
            );
        }
        PimCommand::Eligible(EligibleCommand::Add {
            role,
            principal,
            from,
            until,
        }) => {
            let e = svc
                .add_eligibility(&actor, &role, Principal::parse(&principal), from, until)
                .await?;
            println!("{principal} is eligible for {role} (eligibility {})", e.id);
        }
        PimCommand::Eligible(EligibleCommand::Remove { id }) => {
            svc.remove_eligibility(&actor, &id).await?;
            println!("eligibility {id} removed");
        }
        PimCommand::List { json } => {
            let v = svc.pim_overview().await?;
            if json {
                return print_json(&v);
            }
            print_overview(&v);
        }
        PimCommand::Revoke { id, reason } => {
            let v = svc.revoke_elevation(&actor, &id, &reason).await?;
            println!("{} of {} is {}", v.role, v.user, v.state);
        }
        PimCommand::Sweep => {
            // Moves state only: what it queues is sent by a running server.
            let moved = svc.pim_sweep().await?;
            println!("{moved} request(s) moved on; notifications go out from a running server");
        }
        PimCommand::Webhooks { limit, json } => {
            let log = svc.webhook_log(limit).await?;
            let rows: Vec<Value> = log
                .iter()
                .map(|d| json!({"id": d.id, "url": d.url, "event": d.event, "state": d.state,
                    "attempts": d.attempts, "last_status": d.last_status, "last_error": d.last_error,
                    "created_at": d.created_at, "delivered_at": d.delivered_at,
                    "next_attempt_at": d.next_attempt_at}))
                .collect();
            if json {
                return print_json(&rows);
            }
            for d in &log {
                println!(
                    "{}  {:<10} {:<9} tries {}  {}",
                    d.created_at.format("%Y-%m-%d %H:%M:%S"),
                    d.event,
                    d.state,
                    d.attempts,
                    d.url
                );
            }
        }
        PimCommand::Request { .. } => unreachable!("handled above"),
    }
    Ok(())
}

fn print_overview(v: &Value) {
    println!("Privileged roles:");
    for p in v["policies"].as_array().into_iter().flatten() {
        println!(
            "  {}  max {}s  approval {}  windows {}  networks {}",
            p["role"].as_str().unwrap_or(""),
            p["max_duration_seconds"],
            p["approval"].as_str().unwrap_or(""),
            p["windows"],
            p["networks"]
        );
    }
    println!("Eligible:");
    for e in v["eligibilities"].as_array().into_iter().flatten() {
        println!(
            "  {}  {} for {}",
            e["id"].as_str().unwrap_or(""),
            e["principal"].as_str().unwrap_or(""),
            e["role"].as_str().unwrap_or("")
        );
    }
    println!("Open requests:");
    for q in v["requests"].as_array().into_iter().flatten() {
        println!(
            "  {}  {} {} {} until {}",
            q["id"].as_str().unwrap_or(""),
            q["user"].as_str().unwrap_or(""),
            q["role"].as_str().unwrap_or(""),
            q["state"].as_str().unwrap_or(""),
            q["ends_at"].as_str().unwrap_or("")
        );
    }
}

async fn request(
    role: String,
    duration: Duration,
    reason: String,
    ticket: Option<String>,
    start: Option<DateTime<Utc>>,
    url: &str,
    token: &str,
) -> Result<()> {
    let body = json!({"role": role, "duration_seconds": duration.as_secs(), "reason": reason,
        "ticket": ticket, "start": start});
    let res = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/me/elevations",
            url.trim_end_matches('/')
        ))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| Error::unavailable(format!("cannot reach {url}: {e}")))?;
    let ok = res.status().is_success();
    let v: Value = res
        .json()
        .await
        .map_err(|e| Error::unavailable(format!("the server's answer is not JSON: {e}")))?;
    if !ok {
        return Err(Error::invalid(format!(
            "refused: {}",
            v["error_description"].as_str().unwrap_or("unknown error")
        )));
    }
    print_json(&v)
}

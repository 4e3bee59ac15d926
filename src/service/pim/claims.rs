//! Rule 1: an elevated role goes into an ID token, access token, userinfo
//! answer or SAML assertion only while its window is active and its
//! conditions hold for the request at hand. Everything issued under a
//! window is recorded, so its end can reach every recipient.

use super::policy_of;
use super::view::current_state;
use crate::domain::{User, UserId};
use crate::error::Result;
use crate::protocol::pim::state::State;
use crate::service::Services;
use crate::service::oidc::tokens::{Subject, load_subject};
use crate::store::{Repo, StoredIssuance};
use chrono::{DateTime, Utc};
use std::net::IpAddr;

/// An active elevation, as tokens carry it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Elevation {
    /// The activation (request) ID.
    pub request_id: String,
    pub role: String,
    pub ends_at: DateTime<Utc>,
}

/// Why a privileged application refused a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Not eligible for the role: a plain refusal.
    NotEligible,
    /// Eligible: offer the request.
    MayRequest,
    /// A request is pending approval or its window has not started.
    Waiting,
    /// A window is active, but its network or hours do not hold here.
    ConditionsUnmet,
}

impl Gate {
    pub fn as_str(self) -> &'static str {
        match self {
            Gate::NotEligible => "not_eligible",
            Gate::MayRequest => "may_request",
            Gate::Waiting => "waiting",
            Gate::ConditionsUnmet => "conditions_unmet",
        }
    }
}

/// Where an elevated token or assertion went.
pub struct Recipient<'a> {
    pub protocol: &'static str,
    pub id: &'a str,
    pub session_digest: Option<&'a str>,
    pub grant_id: Option<&'a str>,
    pub name_id: Option<&'a str>,
    pub session_index: Option<&'a str>,
}

/// The user's elevations that rule 1 admits for a request from `ip` at `now`.
pub(crate) fn elevations_in(
    r: &mut dyn Repo,
    user: &UserId,
    ip: Option<IpAddr>,
    now: DateTime<Utc>,
) -> Result<Vec<Elevation>> {
    let mut out = Vec::new();
    let live: Vec<_> = r
        .requests_of(user, 200)?
        .into_iter()
        .filter(|q| current_state(q, now) == State::Active)
        .collect();
    if live.is_empty() {
        return Ok(out);
    }
    let roles = r.list_roles()?;
    for q in live {
        let Some(stored) = r.policy(&q.role_id)? else {
            continue;
        };
        if !policy_of(&stored)?.conditions_hold(ip, now) {
            continue;
        }
        let Some(role) = roles.iter().find(|x| x.id.as_str() == q.role_id) else {
            continue;
        };
        // Rule 7, a second line behind the sweeper: a window whose
        // eligibility is gone emits nothing, and none runs past it.
        let Some(ends_at) = super::basis::supported_end(r, &q, now)?.filter(|e| *e > now) else {
            continue;
        };
        out.push(Elevation {
            request_id: q.id,
            role: role.name.to_string(),
            ends_at,
        });
    }
    Ok(out)
}

/// The earliest end among the elevations: nothing issued may outlive it.
pub fn window_end(elevations: &[Elevation]) -> Option<DateTime<Utc>> {
    elevations.iter().map(|e| e.ends_at).min()
}

fn parse_ip(ip: Option<&str>) -> Option<IpAddr> {
    ip.and_then(|i| i.parse().ok())
}

impl Services {
    /// The user side of an issuance: directory roles plus the elevations
    /// active for a request from `ip` now. One transaction: this is on
    /// every token request's path.
    pub async fn subject_for_issue(
        &self,
        user_id: &str,
        ip: Option<&str>,
    ) -> Result<Option<Subject>> {
        let (id, ip, now) = (user_id.to_string(), ip.map(str::to_string), self.now());
        self.db(move |r| subject_for_issue_in(r, &id, ip.as_deref(), now))
            .await
    }

    /// Rule 5, a privileged application's gate. `None` lets the user in;
    /// otherwise why not, and what the user can do. A refusal is audited.
    pub async fn elevation_gate(
        &self,
        user: &User,
        role: &str,
        app: &str,
        ip: Option<IpAddr>,
    ) -> Result<Option<Gate>> {
        let (u, role, app, now) = (user.clone(), role.to_string(), app.to_string(), self.now());
        let actor = crate::service::Actor::user(u.username.as_str(), ip.map(|i| i.to_string()));
        // One transaction: the admission check and, when refused, the why.
        self.db(move |r| {
            if elevations_in(r, &u.id, ip, now)?
                .iter()
                .any(|e| e.role == role)
            {
                return Ok(None);
            }
            let gate = match super::need_role(r, &role) {
                Ok(x) if r.policy(x.id.as_str())?.is_some() => {
                    let open = r
                        .requests_of(&u.id, 200)?
                        .into_iter()
                        .filter(|q| q.role_id == x.id.as_str())
                        .map(|q| current_state(&q, now))
                        .find(|s| matches!(s, State::Pending | State::Approved | State::Active));
                    let eligible = super::eligible_until(r, &u.id, x.id.as_str(), now)?.is_some();
                    match open {
                        // Active, yet not admitted: its network or hours do
                        // not hold (or its eligibility is gone).
                        Some(State::Active) if eligible => Gate::ConditionsUnmet,
                        Some(State::Active) => Gate::NotEligible,
                        Some(_) => Gate::Waiting,
                        None if eligible => Gate::MayRequest,
                        None => Gate::NotEligible,
                    }
                }
                _ => Gate::NotEligible,
            };
            crate::service::record(
                r,
                now,
                &actor,
                "pim.app_refused",
                &app,
                serde_json::json!({"role": role, "why": gate.as_str()}),
            )?;
            Ok(Some(gate))
        })
        .await
    }

    /// Records that a token or assertion carrying these elevations went to
    /// `to`, until `expires_at`.
    pub async fn record_elevated_issue(
        &self,
        elevations: &[Elevation],
        to: Recipient<'_>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        if elevations.is_empty() {
            return Ok(());
        }
        let rows = issuance_rows(elevations, &to, self.now(), expires_at);
        self.db(move |r| record_issuances_in(r, &rows)).await
    }
}

/// One issuance row per elevation that went to `to` at `at`.
pub(crate) fn issuance_rows(
    elevations: &[Elevation],
    to: &Recipient<'_>,
    at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Vec<StoredIssuance> {
    elevations
        .iter()
        .map(|e| StoredIssuance {
            id: uuid::Uuid::new_v4().simple().to_string(),
            request_id: e.request_id.clone(),
            protocol: to.protocol.into(),
            recipient: to.id.into(),
            session_digest: to.session_digest.map(str::to_string),
            grant_id: to.grant_id.map(str::to_string),
            name_id: to.name_id.map(str::to_string),
            session_index: to.session_index.map(str::to_string),
            at,
            expires_at,
        })
        .collect()
}

/// Stores issuance rows in the caller's transaction. The audit trail names
/// each recipient, so an auditor can tell who was privileged where without
/// the issuance table.
pub(crate) fn record_issuances_in(r: &mut dyn Repo, rows: &[StoredIssuance]) -> Result<()> {
    for i in rows {
        r.insert_issuance(i)?;
        crate::service::record(
            r,
            i.at,
            &crate::service::Actor::system(),
            "pim.issued",
            &i.request_id,
            serde_json::json!({"protocol": i.protocol, "recipient": i.recipient,
                "grant": i.grant_id, "session_index": i.session_index,
                "expires_at": i.expires_at}),
        )?;
    }
    Ok(())
}

/// Rule 4: an access token carrying elevations is live only while every one
/// of them is still active (not ended, not revoked) and still has its basis
/// (rule 7). In the caller's transaction.
pub(crate) fn elevations_still_active_in(
    r: &mut dyn crate::store::Repo,
    request_ids: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool> {
    for id in request_ids {
        match r.request(id)? {
            Some(q)
                if current_state(&q, now) == State::Active
                    && super::basis::supported_end(r, &q, now)?.is_some_and(|e| e > now) => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// [`Services::subject_for_issue`] in the caller's transaction.
pub(crate) fn subject_for_issue_in(
    r: &mut dyn crate::store::Repo,
    user_id: &str,
    ip: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<Subject>> {
    let Some(mut s) = load_subject(r, &UserId::from_stored(user_id))? else {
        return Ok(None);
    };
    s.elevations = elevations_in(r, &s.user.id, parse_ip(ip), now)?;
    for e in &s.elevations {
        if !s.roles.contains(&e.role) {
            s.roles.push(e.role.clone());
        }
    }
    Ok(Some(s))
}

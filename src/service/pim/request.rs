//! A user's side: what they may request, asking, and ending a window early.

use super::notify::enqueue;
use super::view::{EligibilityView, Names, RequestView, current_state};
use super::{eligible_until, forbidden, need_role, policy_of, privileged};
use crate::domain::{Session, User};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::pim::policy::Approval;
use crate::protocol::pim::request::Refusal;
use crate::protocol::pim::request::{RequestContext, RequestInput, check_request};
use crate::protocol::pim::risk::{self, PastRequest, RiskInput};
use crate::protocol::pim::state::{Event, State, transition};
use crate::protocol::webauthn::fresh_passkey;
use crate::service::{Actor, Services, record};
use crate::store::{Repo, StateChange, StoredRequest};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use std::net::IpAddr;

/// What a user asks for.
#[derive(Debug, Clone)]
pub struct ElevationInput {
    pub role: String,
    pub duration: Duration,
    pub reason: String,
    pub ticket: Option<String>,
    pub start: Option<DateTime<Utc>>,
}

/// States in which a request still holds or may yet hold a window.
pub(crate) const OPEN: [&str; 3] = ["pending", "approved", "active"];

/// Who must approve a request that needs approval although its policy
/// approves automatically (a high risk score).
fn forced_approval(user: &User, group: &str) -> Approval {
    match user.manager_id {
        Some(_) => Approval::Manager,
        None => Approval::Group {
            name: group.to_string(),
            count: 1,
        },
    }
}

/// Checks that somebody other than the requester can give the approvals.
fn approvers_exist(r: &mut dyn Repo, user: &User, approval: &Approval) -> Result<()> {
    match approval {
        Approval::None => Ok(()),
        Approval::Manager => {
            let manager = match &user.manager_id {
                Some(m) => r.user_by_id(m)?,
                None => None,
            };
            match manager {
                Some(m) if m.is_active() => Ok(()),
                _ => Err(forbidden(
                    "no_approver",
                    "this role needs your manager's approval, and no active manager is recorded for you",
                )),
            }
        }
        Approval::Group { name, count } => {
            let g = crate::service::directory::need_group_named(r, name).map_err(|_| {
                forbidden(
                    "no_approver",
                    format!(
                        "this request needs approval from the group {name}, which does not exist"
                    ),
                )
            })?;
            let others = r
                .members(&g)?
                .into_iter()
                .filter(|m| m.id != user.id && m.is_active())
                .count();
            if others < *count as usize {
                return Err(forbidden(
                    "no_approver",
                    format!(
                        "this role needs {count} approval(s) from {name}, which has only {others} member(s) who could approve"
                    ),
                ));
            }
            Ok(())
        }
    }
}

impl Services {
    /// Asks for an elevation. Conditions are checked now; the answer names
    /// the first one that fails. `signed_in_at` is when the requester signed
    /// in for this call: the risk score's history ends there.
    pub async fn request_elevation(
        &self,
        user: &User,
        session: Option<&Session>,
        signed_in_at: Option<DateTime<Utc>>,
        input: ElevationInput,
        ip: Option<IpAddr>,
    ) -> Result<RequestView> {
        let now = self.now();
        let factors = session.map(|s| s.factors.clone()).unwrap_or_default();
        // Novelty is judged against history from before this sign-in (the
        // session's, or for a token the one it was granted in).
        let signed_in_at = signed_in_at.unwrap_or(now).min(now);
        let office: chrono_tz::Tz = self
            .settings
            .pim
            .office_time_zone
            .parse()
            .unwrap_or(chrono_tz::UTC);
        let pim = self.settings.pim.clone();
        let (u, actor) = (
            user.clone(),
            Actor::user(user.username.as_str(), ip.map(|i| i.to_string())),
        );
        let refused_actor = actor.clone();
        let role_name = input.role.clone();
        let outcome = self
            .db(move |r| {
                let role = need_role(r, &input.role)?;
                // Requests for one role are checked one at a time, so two
                // cannot both pass the open-request and max-concurrent checks.
                r.lock_policy(role.id.as_str())?;
                let policy = privileged(r, &role)?;
                let mine = r.requests_of(&u.id, 200)?;
                if mine.iter().any(|q| {
                    q.role_id == role.id.as_str()
                        && matches!(
                            current_state(q, now),
                            State::Pending | State::Approved | State::Active
                        )
                }) {
                    return Err(Error::conflict(format!(
                        "you already have an open request or an active window for {}",
                        role.name
                    )));
                }
                // Windows of the role that would overlap the one asked for.
                let (from, to) = {
                    let start = input.start.unwrap_or(now).max(now);
                    let end = start
                        .checked_add_signed(input.duration)
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                    (start, end)
                };
                let live_for_role = r
                    .requests_in(&["approved", "active"])?
                    .iter()
                    .filter(|q| q.role_id == role.id.as_str())
                    .filter(|q| current_state(q, now).is_live())
                    .filter(|q| q.starts_at < to && q.ends_at > from)
                    .count() as u32;
                let ctx = RequestContext {
                    now,
                    ip,
                    eligible_until: eligible_until(r, &u.id, role.id.as_str(), now)?,
                    fresh_mfa: fresh_passkey(&factors, now, policy.mfa_within),
                    active_for_role: live_for_role,
                    max_schedule_ahead: Duration::from_std(pim.max_schedule_ahead)
                        .unwrap_or(Duration::days(14)),
                };
                let asked = RequestInput {
                    duration: input.duration,
                    reason: input.reason.trim().to_string(),
                    ticket: input
                        .ticket
                        .as_ref()
                        .map(|t| t.trim().to_string())
                        .filter(|t| !t.is_empty()),
                    start: input.start,
                };
                let planned = match check_request(&policy, &asked, &ctx) {
                    Ok(p) => p,
                    Err(refusal) => return Ok(Err(refusal)),
                };
                let sign_ins: Vec<IpAddr> = r
                    .audit_ips("login.success", u.username.as_str(), signed_in_at, 500)?
                    .iter()
                    .filter_map(|i| i.parse().ok())
                    .collect();
                let past: Vec<PastRequest> = mine
                    .iter()
                    .map(|q| PastRequest {
                        created_at: q.created_at,
                        granted: matches!(
                            State::parse(&q.state),
                            Some(State::Approved | State::Active | State::Ended)
                        ),
                        ip: q.ip.as_deref().and_then(|i| i.parse().ok()),
                        risk_score: q.risk_score.clamp(0, 100) as u32,
                    })
                    .collect();
                let seen = risk::known_addresses(&sign_ins, &past, signed_in_at);
                let failures = r.count_audit(
                    "login.failure",
                    u.username.as_str(),
                    now - Duration::hours(24),
                )?;
                let risk = risk::score(&RiskInput {
                    off_hours: risk::is_off_hours(now, office),
                    new_network: risk::is_new_network(ip, &seen),
                    recent_failed_sign_ins: failures as u32,
                    first_request_for_role: !mine.iter().any(|q| {
                        q.role_id == role.id.as_str()
                            && matches!(
                                State::parse(&q.state),
                                Some(State::Approved | State::Active | State::Ended)
                            )
                    }),
                });
                let mut risk = risk;
                let cool_down =
                    Duration::from_std(pim.risk_cool_down).unwrap_or(Duration::hours(24));
                let cooling =
                    risk::cooling_down(&past, pim.risk_approval_threshold, now, cool_down);
                if cooling {
                    risk.factors.push(risk::COOL_DOWN_FACTOR.to_string());
                }
                let forced = policy.approval == Approval::None
                    && (risk.score >= pim.risk_approval_threshold || cooling);
                let approval = if forced {
                    forced_approval(&u, &pim.risk_approver_group)
                } else {
                    policy.approval.clone()
                };
                approvers_exist(r, &u, &approval).map_err(|e| {
                    if forced {
                        forbidden(
                            "no_approver",
                            format!(
                                "your request scored {} on risk ({}), so it needs approval, but {}",
                                risk.score,
                                risk.factors.join(", "),
                                e.public()
                            ),
                        )
                    } else {
                        e
                    }
                })?;
                let started = planned.starts_at <= now;
                let state = if approval == Approval::None {
                    transition(
                        State::Pending,
                        Event::Approved {
                            final_approval: true,
                            started,
                        },
                    )
                    .map_err(|e| Error::internal(e.to_string()))?
                } else {
                    State::Pending
                };
                let pending_lifetime =
                    Duration::from_std(pim.pending_lifetime).unwrap_or(Duration::hours(24));
                let q = StoredRequest {
                    id: uuid::Uuid::new_v4().simple().to_string(),
                    role_id: role.id.to_string(),
                    user_id: u.id.clone(),
                    state: state.as_str().into(),
                    reason: asked.reason.clone(),
                    ticket: asked.ticket.clone(),
                    duration: input.duration.num_seconds(),
                    starts_at: planned.starts_at,
                    ends_at: planned.ends_at,
                    created_at: now,
                    pending_until: (now + pending_lifetime).min(planned.ends_at),
                    approval: approval.to_string(),
                    risk_score: i64::from(risk.score),
                    risk_factors: risk.factors.clone(),
                    ip: ip.map(|i| i.to_string()),
                    closed_at: None,
                    closed_by: None,
                    close_reason: None,
                };
                r.insert_request(&q)?;
                let detail = json!({
                    "request": q.id, "reason": q.reason, "ticket": q.ticket,
                    "starts_at": q.starts_at, "ends_at": q.ends_at,
                    "shortened_by": planned.shortened_by,
                    "approval": q.approval, "risk_score": risk.score,
                    "risk_factors": risk.factors, "risk_forced_approval": forced,
                });
                record(r, now, &actor, "pim.requested", role.name.as_str(), detail)?;
                enqueue(r, &pim, now, "requested", &q, &actor)?;
                if state != State::Pending {
                    record(
                        r,
                        now,
                        &Actor::system(),
                        "pim.approved",
                        role.name.as_str(),
                        json!({"request": q.id, "approval": "automatic"}),
                    )?;
                    enqueue(r, &pim, now, "approved", &q, &Actor::system())?;
                }
                if state == State::Active {
                    record(
                        r,
                        now,
                        &Actor::system(),
                        "pim.activated",
                        role.name.as_str(),
                        json!({"request": q.id, "ends_at": q.ends_at}),
                    )?;
                    enqueue(r, &pim, now, "activated", &q, &Actor::system())?;
                }
                let mut names = Names::load(r)?;
                names.add_users(r, [&u.id])?;
                Ok(Ok(RequestView::build(&q, &names, now, vec![])))
            })
            .await?;
        match outcome {
            Ok(view) => Ok(view),
            Err(refusal) => {
                let malformed = matches!(refusal, Refusal::TextMalformed(_));
                let (why, code) = (refusal.to_string(), refusal.code());
                let w = why.clone();
                self.db(move |r| {
                    record(
                        r,
                        now,
                        &refused_actor,
                        "pim.request_refused",
                        &role_name,
                        json!({"code": code, "why": w}),
                    )
                })
                .await?;
                if malformed {
                    return Err(Error::oauth(ErrorKind::InvalidInput, code, why));
                }
                Err(forbidden(code, why))
            }
        }
    }

    /// Ends the user's own window early, or withdraws a request not yet started.
    pub async fn end_elevation(
        &self,
        user: &User,
        id: &str,
        ip: Option<IpAddr>,
    ) -> Result<RequestView> {
        let actor = Actor::user(user.username.as_str(), ip.map(|i| i.to_string()));
        let (uid, rid) = (user.id.clone(), id.to_string());
        let q = self
            .db(move |r| r.request(&rid))
            .await?
            .filter(|q| q.user_id == uid)
            .ok_or_else(|| Error::not_found("you have no request with that ID"))?;
        let event = match current_state(&q, self.now()) {
            State::Active => Event::EndedByUser,
            _ => Event::Cancelled,
        };
        self.close_request(&q, event, &actor, "ended by the user")
            .await
    }

    /// An administrator ends a window (or a request) at once.
    pub async fn revoke_elevation(
        &self,
        actor: &Actor,
        id: &str,
        reason: &str,
    ) -> Result<RequestView> {
        let rid = id.to_string();
        let q = self
            .db(move |r| r.request(&rid))
            .await?
            .ok_or_else(|| Error::not_found(format!("there is no request {id}")))?;
        let why = if reason.trim().is_empty() {
            "revoked by an administrator"
        } else {
            reason.trim()
        };
        self.close_request(&q, Event::Revoked, actor, why).await
    }

    /// Moves a request to a closing state, records it, and tells everyone
    /// who received tokens under its window.
    pub(crate) async fn close_request(
        &self,
        q: &StoredRequest,
        event: Event,
        actor: &Actor,
        why: &str,
    ) -> Result<RequestView> {
        let now = self.now();
        let from = current_state(q, now);
        let to =
            transition(from, event).map_err(|e| Error::new(ErrorKind::Conflict, e.to_string()))?;
        let (q2, actor2, why2, pim) = (
            q.clone(),
            actor.clone(),
            why.to_string(),
            self.settings.pim.clone(),
        );
        let view = self
            .db(move |r| {
                let change = StateChange {
                    to: to.as_str().into(),
                    starts_at: None,
                    ends_at: (from == State::Active).then_some(now),
                    closed: Some((now, actor2.name.clone(), why2.clone())),
                };
                if !r.change_request(&q2.id, &q2.state, &change)? {
                    return Err(Error::conflict(
                        "the request changed meanwhile; reload and try again",
                    ));
                }
                let closed = r
                    .request(&q2.id)?
                    .ok_or_else(|| Error::internal("request vanished"))?;
                let decisions = r.decisions_of(&q2.id)?;
                let mut names = Names::load(r)?;
                names.add_users(
                    r,
                    std::iter::once(&q2.user_id).chain(decisions.iter().map(|d| &d.approver_id)),
                )?;
                let action = format!("pim.{}", event_name(event));
                record(
                    r,
                    now,
                    &actor2,
                    &action,
                    &names.role(&q2.role_id),
                    json!({"request": q2.id, "from": from.as_str(), "reason": why2}),
                )?;
                enqueue(r, &pim, now, event_name(event), &closed, &actor2)?;
                if from == State::Active {
                    super::sweep::queue_window_logouts(r, now, &q2.id)?;
                }
                Ok(RequestView::build(&closed, &names, now, decisions))
            })
            .await?;
        Ok(view)
    }

    /// The roles the user may request now, each with its policy and any
    /// live window.
    pub async fn my_eligibilities(&self, user: &User) -> Result<Vec<EligibilityView>> {
        let (uid, now) = (user.id.clone(), self.now());
        self.db(move |r| {
            let mut names = Names::load(r)?;
            names.add_users(r, [&uid])?;
            let mine = r.requests_of(&uid, 200)?;
            let mut out = Vec::new();
            for role in r.list_roles()? {
                let Some(stored) = r.policy(role.id.as_str())? else {
                    continue;
                };
                let Some(until) = eligible_until(r, &uid, role.id.as_str(), now)? else {
                    continue;
                };
                let p = policy_of(&stored)?;
                let active = mine
                    .iter()
                    .find(|q| {
                        q.role_id == role.id.as_str()
                            && matches!(
                                current_state(q, now),
                                State::Pending | State::Approved | State::Active
                            )
                    })
                    .map(|q| RequestView::build(q, &names, now, vec![]));
                out.push(EligibilityView {
                    role: role.name.to_string(),
                    description: role.description.clone(),
                    until,
                    max_duration_seconds: p.max_duration.num_seconds(),
                    approval: p.approval.to_string(),
                    require_justification: p.require_justification,
                    ticket_required: p.ticket_required,
                    require_mfa: p.require_mfa,
                    windows: p.windows.iter().map(|w| w.to_string()).collect(),
                    networks: stored.networks.clone(),
                    allow_scheduled: p.allow_scheduled,
                    active,
                });
            }
            Ok(out)
        })
        .await
    }

    /// One of the user's requests, with its decisions.
    pub async fn my_request(&self, user: &User, id: &str) -> Result<RequestView> {
        let (uid, rid, now) = (user.id.clone(), id.to_string(), self.now());
        self.db(move |r| {
            let q = r
                .request(&rid)?
                .filter(|q| q.user_id == uid)
                .ok_or_else(|| Error::not_found("you have no request with that ID"))?;
            let decisions = r.decisions_of(&q.id)?;
            let mut names = Names::load(r)?;
            names.add_users(
                r,
                std::iter::once(&q.user_id).chain(decisions.iter().map(|d| &d.approver_id)),
            )?;
            Ok(RequestView::build(&q, &names, now, decisions))
        })
        .await
    }

    /// The user's requests, newest first, with their decisions.
    pub async fn my_requests(&self, user: &User) -> Result<Vec<RequestView>> {
        let (uid, now) = (user.id.clone(), self.now());
        self.db(move |r| {
            let mut names = Names::load(r)?;
            names.add_users(r, [&uid])?;
            let mut out = Vec::new();
            for q in r.requests_of(&uid, 50)? {
                let decisions = r.decisions_of(&q.id)?;
                names.add_users(r, decisions.iter().map(|d| &d.approver_id))?;
                out.push(RequestView::build(&q, &names, now, decisions));
            }
            Ok(out)
        })
        .await
    }
}

/// The audit and webhook name of what an event did.
pub(crate) fn event_name(e: Event) -> &'static str {
    match e {
        Event::Approved { .. } => "approved",
        Event::Denied => "denied",
        Event::Cancelled => "cancelled",
        Event::Started => "activated",
        Event::EndedByUser => "ended",
        Event::WindowElapsed | Event::PendingTimedOut => "expired",
        Event::Revoked => "revoked",
    }
}

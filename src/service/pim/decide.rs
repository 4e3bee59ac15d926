//! The approver's side: the inbox and decisions. Nobody approves their own
//! request; a request needing N approvals becomes approved with the Nth.

use super::basis::basis_until;
use super::notify::enqueue;
use super::view::{ApprovalItem, Names, RequestView, current_state};
use super::{forbidden, policy_of};
use crate::domain::User;
use crate::error::{Error, Result};
use crate::protocol::pim::policy::Approval;
use crate::protocol::pim::request::Refusal;
use crate::protocol::pim::state::{Event, State, transition};
use crate::protocol::pim::window;
use crate::service::{Actor, Services, record};
use crate::store::{Repo, StateChange, StoredDecision, StoredRequest};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::net::IpAddr;

/// Whether `approver` may decide on `q` (not whether they already did).
fn may_decide(r: &mut dyn Repo, approver: &User, q: &StoredRequest) -> Result<bool> {
    if approver.id == q.user_id || !approver.is_active() {
        return Ok(false);
    }
    Ok(match q.approval.parse::<Approval>() {
        Ok(Approval::Manager) => r
            .user_by_id(&q.user_id)?
            .is_some_and(|u| u.manager_id.as_ref() == Some(&approver.id)),
        Ok(Approval::Group { name, .. }) => r
            .groups_of(&approver.id)?
            .iter()
            .any(|g| g.name.as_str() == name),
        _ => false,
    })
}

fn approvals_needed(q: &StoredRequest) -> usize {
    match q.approval.parse::<Approval>() {
        Ok(Approval::Group { count, .. }) => count as usize,
        _ => 1,
    }
}

/// Whether an approved window that has not begun (as stored: the sweeper
/// has not moved it to active) still has the approvals it needs from
/// approvers in standing now. A scheduled window approved by someone who
/// has since been disabled or left the approving group does not start.
pub(crate) fn approval_stands(r: &mut dyn Repo, q: &StoredRequest) -> Result<bool> {
    if q.state != State::Approved.as_str() {
        return Ok(true);
    }
    if matches!(q.approval.parse::<Approval>(), Ok(Approval::None) | Err(_)) {
        return Ok(true);
    }
    let decisions = r.decisions_of(&q.id)?;
    Ok(standing_approvals(r, q, &decisions)? >= approvals_needed(q))
}

/// The approvals that count now: those of approvers who still may decide
/// (a vote ends with its approver's standing: left the group, disabled).
fn standing_approvals(
    r: &mut dyn Repo,
    q: &StoredRequest,
    decisions: &[StoredDecision],
) -> Result<usize> {
    let mut n = 0;
    for d in decisions.iter().filter(|d| d.decision == "approve") {
        if let Some(u) = r.user_by_id(&d.approver_id)?
            && may_decide(r, &u, q)?
        {
            n += 1;
        }
    }
    Ok(n)
}

/// The window an approval grants at `now` (see the protocol's rule), with
/// the role's time-of-day windows and the requester's eligibility end.
fn granted_window(
    r: &mut dyn Repo,
    q: &StoredRequest,
    now: DateTime<Utc>,
    eligible_until: Option<DateTime<Utc>>,
) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let windows = match r.policy(&q.role_id)? {
        Some(p) => policy_of(&p)?.windows,
        None => Vec::new(),
    };
    Ok(window::granted_window(
        q.starts_at,
        q.ends_at,
        now,
        &windows,
        eligible_until,
    ))
}

impl Services {
    /// Requests waiting for this approver's decision, oldest first.
    pub async fn approval_inbox(&self, approver: &User) -> Result<Vec<ApprovalItem>> {
        let (me, now) = (approver.clone(), self.now());
        self.db(move |r| {
            let mut names = Names::load(r)?;
            let mut out = Vec::new();
            for q in r.requests_in(&["pending"])? {
                if current_state(&q, now) != State::Pending
                    || !may_decide(r, &me, &q)?
                    || basis_until(r, &q, now)?.is_none()
                {
                    continue;
                }
                let decisions = r.decisions_of(&q.id)?;
                names.add_users(
                    r,
                    std::iter::once(&q.user_id).chain(decisions.iter().map(|d| &d.approver_id)),
                )?;
                if decisions.iter().any(|d| d.approver_id == me.id) {
                    continue;
                }
                // Only history this approver may decide on: what the
                // requester asked of others stays with those others.
                let mut history = Vec::new();
                for h in r.requests_of(&q.user_id, 50)? {
                    if history.len() == 5 {
                        break;
                    }
                    if h.id != q.id && may_decide(r, &me, &h)? {
                        history.push(RequestView::build(&h, &names, now, vec![]));
                    }
                }
                out.push(ApprovalItem {
                    request: RequestView::build(&q, &names, now, decisions),
                    history,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Approves or denies a pending request.
    pub async fn decide_elevation(
        &self,
        approver: &User,
        id: &str,
        approve: bool,
        comment: &str,
        ip: Option<IpAddr>,
    ) -> Result<RequestView> {
        let comment = comment.trim().to_string();
        if comment.is_empty() {
            return Err(Error::invalid("say why, in a comment"));
        }
        let now = self.now();
        let actor = Actor::user(approver.username.as_str(), ip.map(|i| i.to_string()));
        let (me, rid, pim) = (approver.clone(), id.to_string(), self.settings.pim.clone());
        let outcome = self.db(move |r| {
            let q = r
                .request(&rid)?
                .ok_or_else(|| Error::not_found("there is no such request"))?;
            let mut names = Names::load(r)?;
            names.add_users(r, [&q.user_id, &me.id])?;
            let role = names.role(&q.role_id);
            if q.user_id == me.id {
                record(r, now, &actor, "pim.self_approval_refused", &role, json!({"request": q.id}))?;
                return Ok(Err(forbidden(
                    "self_approval",
                    "nobody approves their own request",
                )));
            }
            if !may_decide(r, &me, &q)? {
                return Ok(Err(forbidden(
                    "not_an_approver",
                    "you are not an approver of this request",
                )));
            }
            let from = current_state(&q, now);
            if from != State::Pending {
                return Err(Error::conflict(format!(
                    "this request is {} and can no longer be decided",
                    from.as_str()
                )));
            }
            let mut decisions = r.decisions_of(&q.id)?;
            if decisions.iter().any(|d| d.approver_id == me.id) {
                return Err(Error::conflict("you have already decided on this request"));
            }
            // Rule 7: the requester must still be eligible as it is decided.
            let until = match basis_until(r, &q, now)? {
                Some(until) if until.is_none_or(|t| t > now.max(q.starts_at)) => until,
                _ => {
                    record(r, now, &actor, "pim.decision_refused", &role,
                           json!({"request": q.id, "why": "requester not eligible"}))?;
                    return Ok(Err(forbidden(
                        "requester_not_eligible",
                        "the requester is no longer eligible for this role (for the window asked for)",
                    )));
                }
            };
            if approve && standing_approvals(r, &q, &decisions)? + 1 >= approvals_needed(&q) {
                // The final approval opens a window: the role's limit on
                // windows at once holds here too, one decision at a time.
                r.lock_policy(&q.role_id)?;
                let (from_t, to_t) = granted_window(r, &q, now, until)?;
                if let Some(max) = r.policy(&q.role_id)?.and_then(|p| p.max_concurrent) {
                    let live = r
                        .requests_in(&["approved", "active"])?
                        .iter()
                        .filter(|o| o.role_id == q.role_id && o.id != q.id)
                        .filter(|o| current_state(o, now).is_live())
                        .filter(|o| o.starts_at < to_t && o.ends_at > from_t)
                        .count() as i64;
                    if live >= max {
                        let why = Refusal::TooManyActive { max: max.max(0) as u32 };
                        return Ok(Err(forbidden(why.code(), why.to_string())));
                    }
                }
            }
            let d = StoredDecision {
                request_id: q.id.clone(),
                approver_id: me.id.clone(),
                decision: if approve { "approve" } else { "deny" }.into(),
                comment: comment.clone(),
                at: now,
            };
            r.insert_decision(&d)?;
            decisions.push(d);
            let approvals = standing_approvals(r, &q, &decisions)?;
            let final_approval = approvals >= approvals_needed(&q);
            let (starts_at, ends_at) = granted_window(r, &q, now, until)?;
            let event = if approve {
                Event::Approved {
                    final_approval,
                    started: starts_at <= now,
                }
            } else {
                Event::Denied
            };
            let to = transition(from, event).map_err(|e| Error::conflict(e.to_string()))?;
            record(
                r,
                now,
                &actor,
                if approve { "pim.approval" } else { "pim.denied" },
                &role,
                json!({"request": q.id, "comment": comment, "approvals": approvals,
                       "needed": approvals_needed(&q), "requester": names.user(q.user_id.as_str())}),
            )?;
            if to != State::Pending {
                let change = StateChange {
                    to: to.as_str().into(),
                    starts_at: approve.then_some(starts_at),
                    ends_at: approve.then_some(ends_at),
                    closed: (!approve).then(|| (now, actor.name.clone(), comment.clone())),
                };
                if !r.change_request(&q.id, &q.state, &change)? {
                    return Err(Error::conflict("the request changed meanwhile; reload and try again"));
                }
            }
            let q = r.request(&q.id)?.ok_or_else(|| Error::internal("request vanished"))?;
            names.add_users(r, decisions.iter().map(|d| &d.approver_id))?;
            match to {
                State::Denied => enqueue(r, &pim, now, "denied", &q, &actor)?,
                State::Approved | State::Active => {
                    enqueue(r, &pim, now, "approved", &q, &actor)?;
                    if to == State::Active {
                        record(r, now, &Actor::system(), "pim.activated", &role,
                               json!({"request": q.id, "ends_at": q.ends_at}))?;
                        enqueue(r, &pim, now, "activated", &q, &Actor::system())?;
                    }
                }
                _ => {}
            }
            Ok(Ok(RequestView::build(&q, &names, now, decisions)))
        })
        .await?;
        if let Err(e) = &outcome
            && e.code() == Some("requester_not_eligible")
        {
            let rid = id.to_string();
            if let Some(q) = self.db(move |r| r.request(&rid)).await? {
                self.end_unsupported_elevations(
                    Some(&q.user_id),
                    &Actor::system(),
                    "the requester is no longer eligible",
                )
                .await?;
            }
        }
        outcome
    }
}

//! Rule 7: privilege ends with its basis. A request or window stands only
//! while its requester is active and eligible and its role is privileged;
//! this file holds that check and the one place that ends what lost it.

use super::eligible_until;
use super::request::OPEN;
use super::view::current_state;
use crate::domain::UserId;
use crate::error::{ErrorKind, Result};
use crate::protocol::pim::state::{Event, State};
use crate::service::{Actor, Services};
use crate::store::{Repo, StoredRequest};
use chrono::{DateTime, Utc};

/// Until when `q` may hold its role at `now`: `None` when its basis is gone
/// (requester disabled or deleted, role not privileged, no eligibility, or
/// a window not yet begun whose approvers no longer stand);
/// otherwise the eligibility's end (`None` inside = no end).
pub(crate) fn basis_until(
    r: &mut dyn Repo,
    q: &StoredRequest,
    now: DateTime<Utc>,
) -> Result<Option<Option<DateTime<Utc>>>> {
    if !r.user_by_id(&q.user_id)?.is_some_and(|u| u.is_active()) {
        return Ok(None);
    }
    if r.policy(&q.role_id)?.is_none() {
        return Ok(None);
    }
    if !super::decide::approval_stands(r, q)? {
        return Ok(None);
    }
    eligible_until(r, &q.user_id, &q.role_id, now)
}

/// The latest moment `q` may hold its role: its window's end, cut to the
/// end of its eligibility; `None` when it may not hold it at all.
pub(crate) fn supported_end(
    r: &mut dyn Repo,
    q: &StoredRequest,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    Ok(match basis_until(r, q, now)? {
        None => None,
        Some(None) => Some(q.ends_at),
        Some(Some(until)) => Some(q.ends_at.min(until)),
    })
}

impl Services {
    /// Ends every open request and window (of `user`, or of everyone) whose
    /// basis is gone: a pending or scheduled request is withdrawn, an
    /// active window ends now, each audited with `why`, its webhook queued
    /// and everyone who received tokens under it told. Group removal,
    /// eligibility removal or expiry, disabling a user and a role losing
    /// its policy all end here. Returns how many were ended.
    pub async fn end_unsupported_elevations(
        &self,
        user: Option<&UserId>,
        actor: &Actor,
        why: &str,
    ) -> Result<usize> {
        let (user, now) = (user.cloned(), self.now());
        let orphaned: Vec<StoredRequest> = self
            .db(move |r| {
                let open = match &user {
                    Some(u) => r
                        .requests_of(u, 200)?
                        .into_iter()
                        .filter(|q| OPEN.contains(&q.state.as_str()))
                        .collect(),
                    None => r.requests_in(&OPEN)?,
                };
                let mut out = Vec::new();
                for q in open {
                    let live = matches!(
                        current_state(&q, now),
                        State::Pending | State::Approved | State::Active
                    );
                    if live && basis_until(r, &q, now)?.is_none() {
                        out.push(q);
                    }
                }
                Ok(out)
            })
            .await?;
        let mut ended = 0;
        for q in orphaned {
            match self.close_request(&q, Event::Revoked, actor, why).await {
                Ok(_) => ended += 1,
                // Another node or request moved it meanwhile: it is closed
                // or will be looked at on the next pass.
                Err(e) if e.kind == ErrorKind::Conflict => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ended)
    }
}

//! Privileged Identity Management: policies and eligibility (this file),
//! requests and decisions, the claims an active window adds to what is
//! issued, and the sweeper that starts and ends windows and sends webhooks.

mod basis;
mod claims;
mod decide;
mod notify;
mod request;
mod sweep;
mod view;

pub use claims::{Elevation, Gate, Recipient, window_end};
pub(crate) use claims::{
    elevations_still_active_in, issuance_rows, record_issuances_in, subject_for_issue_in,
};
pub use request::ElevationInput;
pub use view::{ApprovalItem, EligibilityView, RequestView};

use crate::domain::{Role, RoleName, UserId};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::pim::policy::{Approval, Policy};
use crate::protocol::pim::window::TimeWindow;
use crate::service::directory::{need_group_named, need_user_named};
use crate::service::{Actor, Services, record};
use crate::store::{Repo, StoredEligibility, StoredPolicy};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

/// What `pim policy set` gives: the whole policy (unset fields take their
/// defaults, so a policy reads the same however often it is set).
#[derive(Debug, Clone, Default)]
pub struct PolicyInput {
    pub max_duration: Option<std::time::Duration>,
    pub approval: Option<String>,
    pub require_justification: bool,
    pub justification_min_len: Option<usize>,
    pub ticket_required: bool,
    pub ticket_pattern: Option<String>,
    pub require_mfa: bool,
    pub mfa_within: Option<std::time::Duration>,
    pub windows: Vec<String>,
    pub networks: Vec<String>,
    pub max_concurrent: Option<u32>,
    pub allow_scheduled: bool,
}

/// Who an eligibility is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(String),
    Group(String),
}

impl Principal {
    /// `alice` or `group:ops`.
    pub fn parse(s: &str) -> Self {
        match s.strip_prefix("group:") {
            Some(g) => Self::Group(g.to_string()),
            None => Self::User(s.to_string()),
        }
    }
}

const DEFAULT_MAX_DURATION: i64 = 3600;
const DEFAULT_JUSTIFICATION_LEN: usize = 10;

fn forbidden(code: &'static str, msg: impl Into<String>) -> Error {
    Error::oauth(ErrorKind::Forbidden, code, msg)
}

/// The protocol's policy from its stored form. A stored policy was checked
/// when it was set; anything unreadable now is an internal error.
pub(crate) fn policy_of(p: &StoredPolicy) -> Result<Policy> {
    let bad = |what: &str, e: String| Error::internal(format!("stored PIM policy {what}: {e}"));
    Ok(Policy {
        max_duration: Duration::seconds(p.max_duration),
        require_justification: p.require_justification,
        justification_min_len: p.justification_min_len.max(0) as usize,
        ticket_required: p.ticket_required,
        ticket_pattern: p.ticket_pattern.clone(),
        approval: p
            .approval
            .parse::<Approval>()
            .map_err(|e| bad("approval", e))?,
        require_mfa: p.require_mfa,
        mfa_within: Duration::seconds(p.mfa_within),
        windows: p
            .windows
            .iter()
            .map(|w| w.parse::<TimeWindow>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad("window", e))?,
        networks: p
            .networks
            .iter()
            .map(|n| n.parse().map_err(|e: ipnet::AddrParseError| e.to_string()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad("network", e))?,
        max_concurrent: p.max_concurrent.map(|m| m.max(0) as u32),
        allow_scheduled: p.allow_scheduled,
    })
}

pub(crate) fn need_role(r: &mut dyn Repo, name: &str) -> Result<Role> {
    let n = RoleName::parse(name).map_err(|e| Error::invalid(e.to_string()))?;
    r.role_by_name(&n)?
        .ok_or_else(|| Error::not_found(format!("there is no role {name}")))
}

/// A role with a policy, for the rules: its name and policy.
pub(crate) fn privileged(r: &mut dyn Repo, role: &Role) -> Result<Policy> {
    let stored = r.policy(role.id.as_str())?.ok_or_else(|| {
        Error::invalid(format!(
            "{} is not a privileged role; give it a policy with `portcullis pim policy set`",
            role.name
        ))
    })?;
    policy_of(&stored)
}

/// Checks that `name` is a privileged role (for an application that
/// requires it).
pub fn need_privileged(r: &mut dyn Repo, name: &str) -> Result<()> {
    let role = need_role(r, name)?;
    privileged(r, &role).map(|_| ())
}

/// The eligibility that lets `user` request `role` at `now`: `None` when
/// there is none; otherwise until when (`None` = no end).
pub(crate) fn eligible_until(
    r: &mut dyn Repo,
    user: &UserId,
    role_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Option<DateTime<Utc>>>> {
    let groups: Vec<String> = r
        .groups_of(user)?
        .into_iter()
        .map(|g| g.id.to_string())
        .collect();
    let live: Vec<StoredEligibility> = r
        .eligibilities_for(user, &groups)?
        .into_iter()
        .filter(|e| e.role_id == role_id)
        .filter(|e| e.starts_at.is_none_or(|s| s <= now) && e.ends_at.is_none_or(|t| t > now))
        .collect();
    if live.is_empty() {
        return Ok(None);
    }
    // The most generous one counts: no end beats any end.
    Ok(Some(if live.iter().any(|e| e.ends_at.is_none()) {
        None
    } else {
        live.iter().filter_map(|e| e.ends_at).max()
    }))
}

impl Services {
    /// Makes a role privileged with this policy, or replaces its policy.
    pub async fn set_pim_policy(
        &self,
        actor: &Actor,
        role: &str,
        input: PolicyInput,
    ) -> Result<StoredPolicy> {
        let approval: Approval = input
            .approval
            .as_deref()
            .unwrap_or("none")
            .parse()
            .map_err(Error::invalid)?;
        let windows: Vec<TimeWindow> = input
            .windows
            .iter()
            .map(|w| w.parse::<TimeWindow>().map_err(Error::invalid))
            .collect::<Result<_>>()?;
        let networks: Vec<ipnet::IpNet> = input
            .networks
            .iter()
            .map(|n| {
                n.parse()
                    .map_err(|_| Error::invalid(format!("{n} is not a CIDR network")))
            })
            .collect::<Result<_>>()?;
        // Anything beyond chrono's range is far beyond the 30-day cap that
        // validate() enforces: saturate and let it refuse.
        let secs = |d: Option<std::time::Duration>, default: i64| {
            d.map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 1000))
                .unwrap_or(default)
                .min(i64::MAX / 1000)
        };
        let policy = Policy {
            max_duration: Duration::seconds(secs(input.max_duration, DEFAULT_MAX_DURATION)),
            require_justification: input.require_justification,
            justification_min_len: input
                .justification_min_len
                .unwrap_or(DEFAULT_JUSTIFICATION_LEN),
            ticket_required: input.ticket_required,
            ticket_pattern: input.ticket_pattern.clone(),
            approval: approval.clone(),
            require_mfa: input.require_mfa,
            mfa_within: Duration::seconds(secs(
                input.mfa_within,
                self.settings.webauthn.fresh_within.as_secs() as i64,
            )),
            windows: windows.clone(),
            networks: networks.clone(),
            max_concurrent: input.max_concurrent,
            allow_scheduled: input.allow_scheduled,
        };
        policy.validate().map_err(Error::invalid)?;
        let (role, actor, now) = (role.to_string(), actor.clone(), self.now());
        self.db(move |r| {
            let role = need_role(r, &role)?;
            let holders: Vec<String> = r
                .role_holders(&role)?
                .into_iter()
                .map(|u| u.username.to_string())
                .collect();
            if !holders.is_empty() {
                return Err(Error::invalid(format!(
                    "{} is held permanently by {}; a privileged role is only held for a window: unassign it (`portcullis role unassign`) and make them eligible instead",
                    role.name,
                    holders.join(", ")
                )));
            }
            if let Approval::Group { name, .. } = &approval {
                need_group_named(r, name)?;
            }
            let stored = StoredPolicy {
                role_id: role.id.to_string(),
                max_duration: policy.max_duration.num_seconds(),
                require_justification: policy.require_justification,
                justification_min_len: policy.justification_min_len as i64,
                ticket_required: policy.ticket_required,
                ticket_pattern: policy.ticket_pattern.clone(),
                approval: approval.to_string(),
                require_mfa: policy.require_mfa,
                mfa_within: policy.mfa_within.num_seconds(),
                windows: windows.iter().map(TimeWindow::spec).collect(),
                networks: networks.iter().map(|n| n.to_string()).collect(),
                max_concurrent: policy.max_concurrent.map(i64::from),
                allow_scheduled: policy.allow_scheduled,
                updated_at: now,
            };
            r.upsert_policy(&stored)?;
            record(
                r,
                now,
                &actor,
                "pim.policy_set",
                role.name.as_str(),
                policy_json(&stored),
            )?;
            Ok(stored)
        })
        .await
    }

    /// Makes a user or a group eligible for a privileged role.
    pub async fn add_eligibility(
        &self,
        actor: &Actor,
        role: &str,
        who: Principal,
        starts_at: Option<DateTime<Utc>>,
        ends_at: Option<DateTime<Utc>>,
    ) -> Result<StoredEligibility> {
        if let (Some(s), Some(e)) = (starts_at, ends_at)
            && e <= s
        {
            return Err(Error::invalid("the end must be after the start"));
        }
        let (role, actor, now) = (role.to_string(), actor.clone(), self.now());
        self.db(move |r| {
            let role = need_role(r, &role)?;
            privileged(r, &role)?;
            let (user_id, group_id, label) = match &who {
                Principal::User(name) => {
                    let u = need_user_named(r, name)?;
                    (Some(u.id), None, name.clone())
                }
                Principal::Group(name) => {
                    let g = need_group_named(r, name)?;
                    (None, Some(g.id.to_string()), format!("group:{name}"))
                }
            };
            let e = StoredEligibility {
                id: uuid::Uuid::new_v4().simple().to_string(),
                role_id: role.id.to_string(),
                user_id,
                group_id,
                starts_at,
                ends_at,
                created_at: now,
                created_by: actor.name.clone(),
            };
            r.insert_eligibility(&e)?;
            record(
                r,
                now,
                &actor,
                "pim.eligible_add",
                role.name.as_str(),
                json!({"eligibility": e.id, "principal": label,
                       "starts_at": starts_at, "ends_at": ends_at}),
            )?;
            Ok(e)
        })
        .await
    }

    /// Removes an eligibility by ID. Open requests and windows whose
    /// requester is no longer eligible at all end with it.
    pub async fn remove_eligibility(&self, actor: &Actor, id: &str) -> Result<()> {
        let (id, who, now) = (id.to_string(), actor.clone(), self.now());
        self.db(move |r| {
            let Some(gone) = r.list_eligibilities()?.into_iter().find(|e| e.id == id) else {
                return Err(Error::not_found(format!("there is no eligibility {id}")));
            };
            r.delete_eligibility(&id)?;
            record(
                r,
                now,
                &who,
                "pim.eligible_remove",
                &id,
                json!({"role_id": gone.role_id}),
            )
        })
        .await?;
        self.end_unsupported_elevations(None, actor, "the eligibility was removed")
            .await?;
        Ok(())
    }

    /// Every open request and window, oldest first (for administrators).
    pub async fn open_elevations(&self) -> Result<Vec<RequestView>> {
        let now = self.now();
        self.db(move |r| {
            let mut names = view::Names::load(r)?;
            let open = r.requests_in(&request::OPEN)?;
            names.add_users(r, open.iter().map(|q| &q.user_id))?;
            Ok(open
                .iter()
                .map(|q| RequestView::build(q, &names, now, vec![]))
                .filter(|v| !v.is(crate::protocol::pim::state::State::Expired))
                .filter(|v| !v.is(crate::protocol::pim::state::State::Ended))
                .collect())
        })
        .await
    }

    /// Policies, eligibilities and live or recent requests, for `pim list`.
    pub async fn pim_overview(&self) -> Result<Value> {
        let now = self.now();
        let (policies, eligibilities, requests, names) = self
            .db(|r| {
                let mut names = view::Names::load(r)?;
                let eligibilities = r.list_eligibilities()?;
                let requests = r.requests_in(&request::OPEN)?;
                names.add_users(
                    r,
                    eligibilities
                        .iter()
                        .filter_map(|e| e.user_id.as_ref())
                        .chain(requests.iter().map(|q| &q.user_id)),
                )?;
                Ok((r.list_policies()?, eligibilities, requests, names))
            })
            .await?;
        Ok(json!({
            "policies": policies.iter().map(|p| {
                let mut v = policy_json(p);
                v["role"] = json!(names.role(&p.role_id));
                v
            }).collect::<Vec<_>>(),
            "eligibilities": eligibilities.iter().map(|e| names.eligibility_json(e)).collect::<Vec<_>>(),
            "requests": requests.iter().map(|q| view::RequestView::build(q, &names, now, vec![])).collect::<Vec<_>>(),
        }))
    }
}

fn policy_json(p: &StoredPolicy) -> Value {
    json!({
        "max_duration_seconds": p.max_duration,
        "approval": p.approval,
        "require_justification": p.require_justification,
        "justification_min_length": p.justification_min_len,
        "ticket_required": p.ticket_required,
        "ticket_pattern": p.ticket_pattern,
        "require_mfa": p.require_mfa,
        "mfa_within_seconds": p.mfa_within,
        "windows": p.windows,
        "networks": p.networks,
        "max_concurrent": p.max_concurrent,
        "allow_scheduled": p.allow_scheduled,
    })
}

impl Services {
    /// Whether the user may see and revoke everyone's windows: a member of
    /// `pim.admin_group`.
    pub async fn is_pim_admin(&self, user: &crate::domain::User) -> Result<bool> {
        let (id, group) = (user.id.clone(), self.settings.pim.admin_group.clone());
        let groups = self.db(move |r| r.groups_of(&id)).await?;
        Ok(groups.iter().any(|g| g.name.as_str() == group))
    }

    /// The user behind an access token, and the browser session it was
    /// granted in while that session lives (one found timed out is ended).
    /// A token that acts on others (`for_others`: approving, administering)
    /// needs that session alive, even when the grant was for offline use:
    /// once the user signed out there, it is refused.
    pub async fn token_user(
        &self,
        at: &crate::service::oidc::tokens::AccessToken,
        for_others: bool,
    ) -> Result<(crate::domain::User, Option<crate::domain::Session>)> {
        let invalid =
            |why: &str| Error::oauth(ErrorKind::Unauthenticated, "invalid_token", why.to_string());
        let uid = at
            .grant
            .user_id
            .clone()
            .ok_or_else(|| invalid("this token does not act for a user"))?;
        let (digest, now, idle) = (
            at.grant.session_digest.clone(),
            self.now(),
            self.idle_timeout()?,
        );
        let (user, session) = self
            .db(move |r| {
                let user = r.user_by_id(&uid)?;
                let session = match &digest {
                    Some(d) => crate::service::lifecycle::live_session_in(r, d, now, idle)?,
                    None => None,
                };
                Ok((user, session))
            })
            .await?;
        let user = match user {
            Some(u) if u.is_active() => u,
            _ => return Err(invalid("the user is no longer active")),
        };
        if for_others && session.as_ref().is_none_or(|s| s.user_id != user.id) {
            return Err(crate::service::lifecycle::sign_in_ended());
        }
        Ok((user, session))
    }
}

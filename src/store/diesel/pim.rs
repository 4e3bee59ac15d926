//! PIM policies, eligibilities, requests, decisions and issuances; webhook
//! deliveries.

use super::schema::{
    pim_decisions as pd, pim_eligibilities as pe, pim_issuances as pi, pim_policies as pp,
    pim_requests as pr, webhook_deliveries as wd,
};
use super::{DbConn, from_ts, to_ts};
use crate::domain::UserId;
use crate::error::Result;
use crate::store::{
    PimRepo, StateChange, StoredDecision, StoredDelivery, StoredEligibility, StoredIssuance,
    StoredPolicy, StoredRequest, WebhookRepo,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

fn list(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

fn to_json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

#[derive(Queryable, Insertable, AsChangeset)]
#[diesel(table_name = pp)]
#[diesel(treat_none_as_null = true)]
struct PolicyRow {
    role_id: String,
    max_duration: i64,
    require_justification: bool,
    justification_min_len: i64,
    ticket_required: bool,
    ticket_pattern: Option<String>,
    approval: String,
    require_mfa: bool,
    mfa_within: i64,
    windows: String,
    networks: String,
    max_concurrent: Option<i64>,
    allow_scheduled: bool,
    updated_at: i64,
}

impl PolicyRow {
    fn from_domain(p: &StoredPolicy) -> Self {
        Self {
            role_id: p.role_id.clone(),
            max_duration: p.max_duration,
            require_justification: p.require_justification,
            justification_min_len: p.justification_min_len,
            ticket_required: p.ticket_required,
            ticket_pattern: p.ticket_pattern.clone(),
            approval: p.approval.clone(),
            require_mfa: p.require_mfa,
            mfa_within: p.mfa_within,
            windows: to_json(&p.windows),
            networks: to_json(&p.networks),
            max_concurrent: p.max_concurrent,
            allow_scheduled: p.allow_scheduled,
            updated_at: to_ts(p.updated_at),
        }
    }

    fn into_domain(self) -> StoredPolicy {
        StoredPolicy {
            role_id: self.role_id,
            max_duration: self.max_duration,
            require_justification: self.require_justification,
            justification_min_len: self.justification_min_len,
            ticket_required: self.ticket_required,
            ticket_pattern: self.ticket_pattern,
            approval: self.approval,
            require_mfa: self.require_mfa,
            mfa_within: self.mfa_within,
            windows: list(&self.windows),
            networks: list(&self.networks),
            max_concurrent: self.max_concurrent,
            allow_scheduled: self.allow_scheduled,
            updated_at: from_ts(self.updated_at),
        }
    }
}

#[derive(Queryable, Insertable)]
#[diesel(table_name = pe)]
struct EligibilityRow {
    id: String,
    role_id: String,
    user_id: Option<String>,
    group_id: Option<String>,
    starts_at: Option<i64>,
    ends_at: Option<i64>,
    created_at: i64,
    created_by: String,
}

impl EligibilityRow {
    fn from_domain(e: &StoredEligibility) -> Self {
        Self {
            id: e.id.clone(),
            role_id: e.role_id.clone(),
            user_id: e.user_id.as_ref().map(|u| u.to_string()),
            group_id: e.group_id.clone(),
            starts_at: e.starts_at.map(to_ts),
            ends_at: e.ends_at.map(to_ts),
            created_at: to_ts(e.created_at),
            created_by: e.created_by.clone(),
        }
    }

    fn into_domain(self) -> StoredEligibility {
        StoredEligibility {
            id: self.id,
            role_id: self.role_id,
            user_id: self.user_id.map(UserId::from_stored),
            group_id: self.group_id,
            starts_at: self.starts_at.map(from_ts),
            ends_at: self.ends_at.map(from_ts),
            created_at: from_ts(self.created_at),
            created_by: self.created_by,
        }
    }
}

#[derive(Queryable, Insertable)]
#[diesel(table_name = pr)]
struct RequestRow {
    id: String,
    role_id: String,
    user_id: String,
    state: String,
    reason: String,
    ticket: Option<String>,
    duration: i64,
    starts_at: i64,
    ends_at: i64,
    created_at: i64,
    pending_until: i64,
    approval: String,
    risk_score: i64,
    risk_factors: String,
    ip: Option<String>,
    closed_at: Option<i64>,
    closed_by: Option<String>,
    close_reason: Option<String>,
}

impl RequestRow {
    fn from_domain(r: &StoredRequest) -> Self {
        Self {
            id: r.id.clone(),
            role_id: r.role_id.clone(),
            user_id: r.user_id.to_string(),
            state: r.state.clone(),
            reason: r.reason.clone(),
            ticket: r.ticket.clone(),
            duration: r.duration,
            starts_at: to_ts(r.starts_at),
            ends_at: to_ts(r.ends_at),
            created_at: to_ts(r.created_at),
            pending_until: to_ts(r.pending_until),
            approval: r.approval.clone(),
            risk_score: r.risk_score,
            risk_factors: to_json(&r.risk_factors),
            ip: r.ip.clone(),
            closed_at: r.closed_at.map(to_ts),
            closed_by: r.closed_by.clone(),
            close_reason: r.close_reason.clone(),
        }
    }

    fn into_domain(self) -> StoredRequest {
        StoredRequest {
            id: self.id,
            role_id: self.role_id,
            user_id: UserId::from_stored(self.user_id),
            state: self.state,
            reason: self.reason,
            ticket: self.ticket,
            duration: self.duration,
            starts_at: from_ts(self.starts_at),
            ends_at: from_ts(self.ends_at),
            created_at: from_ts(self.created_at),
            pending_until: from_ts(self.pending_until),
            approval: self.approval,
            risk_score: self.risk_score,
            risk_factors: list(&self.risk_factors),
            ip: self.ip,
            closed_at: self.closed_at.map(from_ts),
            closed_by: self.closed_by,
            close_reason: self.close_reason,
        }
    }
}

type IssuanceRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

impl PimRepo for DbConn {
    fn upsert_policy(&mut self, p: &StoredPolicy) -> Result<()> {
        let row = PolicyRow::from_domain(p);
        let n = diesel::update(pp::table.find(&p.role_id))
            .set(&row)
            .execute(self)?;
        if n == 0 {
            diesel::insert_into(pp::table).values(&row).execute(self)?;
        }
        Ok(())
    }

    fn policy(&mut self, role_id: &str) -> Result<Option<StoredPolicy>> {
        Ok(pp::table
            .find(role_id)
            .first::<PolicyRow>(self)
            .optional()?
            .map(PolicyRow::into_domain))
    }

    fn lock_policy(&mut self, role_id: &str) -> Result<()> {
        if let DbConn::Pg(c) = self {
            diesel::sql_query("SELECT role_id FROM pim_policies WHERE role_id = $1 FOR UPDATE")
                .bind::<diesel::sql_types::Text, _>(role_id)
                .execute(c)?;
        }
        Ok(())
    }

    fn list_policies(&mut self) -> Result<Vec<StoredPolicy>> {
        Ok(pp::table
            .order(pp::role_id.asc())
            .load::<PolicyRow>(self)?
            .into_iter()
            .map(PolicyRow::into_domain)
            .collect())
    }

    fn insert_eligibility(&mut self, e: &StoredEligibility) -> Result<()> {
        diesel::insert_into(pe::table)
            .values(EligibilityRow::from_domain(e))
            .execute(self)?;
        Ok(())
    }

    fn delete_eligibility(&mut self, id: &str) -> Result<bool> {
        Ok(diesel::delete(pe::table.find(id)).execute(self)? == 1)
    }

    fn list_eligibilities(&mut self) -> Result<Vec<StoredEligibility>> {
        Ok(pe::table
            .order((pe::created_at.asc(), pe::id.asc()))
            .load::<EligibilityRow>(self)?
            .into_iter()
            .map(EligibilityRow::into_domain)
            .collect())
    }

    fn eligibilities_for(
        &mut self,
        user: &UserId,
        group_ids: &[String],
    ) -> Result<Vec<StoredEligibility>> {
        Ok(pe::table
            .filter(
                pe::user_id
                    .eq(user.as_str())
                    .or(pe::group_id.eq_any(group_ids)),
            )
            .order((pe::created_at.asc(), pe::id.asc()))
            .load::<EligibilityRow>(self)?
            .into_iter()
            .map(EligibilityRow::into_domain)
            .collect())
    }

    fn delete_eligibilities_of(&mut self, user: &UserId) -> Result<u64> {
        Ok(diesel::delete(pe::table.filter(pe::user_id.eq(user.as_str()))).execute(self)? as u64)
    }

    fn insert_request(&mut self, r: &StoredRequest) -> Result<()> {
        diesel::insert_into(pr::table)
            .values(RequestRow::from_domain(r))
            .execute(self)?;
        Ok(())
    }

    fn request(&mut self, id: &str) -> Result<Option<StoredRequest>> {
        Ok(pr::table
            .find(id)
            .first::<RequestRow>(self)
            .optional()?
            .map(RequestRow::into_domain))
    }

    fn requests_of(&mut self, user: &UserId, limit: i64) -> Result<Vec<StoredRequest>> {
        Ok(pr::table
            .filter(pr::user_id.eq(user.as_str()))
            .order((pr::created_at.desc(), pr::id.desc()))
            .limit(limit)
            .load::<RequestRow>(self)?
            .into_iter()
            .map(RequestRow::into_domain)
            .collect())
    }

    fn requests_in(&mut self, states: &[&str]) -> Result<Vec<StoredRequest>> {
        Ok(pr::table
            .filter(pr::state.eq_any(states))
            .order((pr::created_at.asc(), pr::id.asc()))
            .load::<RequestRow>(self)?
            .into_iter()
            .map(RequestRow::into_domain)
            .collect())
    }

    fn change_request(&mut self, id: &str, from: &str, c: &StateChange) -> Result<bool> {
        let target = pr::table.find(id).filter(pr::state.eq(from));
        let mut n = diesel::update(target)
            .set(pr::state.eq(&c.to))
            .execute(self)?;
        if n == 1 {
            let row = pr::table.find(id);
            if let Some(s) = c.starts_at {
                diesel::update(row)
                    .set(pr::starts_at.eq(to_ts(s)))
                    .execute(self)?;
            }
            if let Some(e) = c.ends_at {
                diesel::update(row)
                    .set(pr::ends_at.eq(to_ts(e)))
                    .execute(self)?;
            }
            if let Some((at, by, why)) = &c.closed {
                n = diesel::update(row)
                    .set((
                        pr::closed_at.eq(Some(to_ts(*at))),
                        pr::closed_by.eq(Some(by)),
                        pr::close_reason.eq(Some(why)),
                    ))
                    .execute(self)?;
            }
        }
        Ok(n == 1)
    }

    fn insert_decision(&mut self, d: &StoredDecision) -> Result<()> {
        diesel::insert_into(pd::table)
            .values((
                pd::request_id.eq(&d.request_id),
                pd::approver_id.eq(d.approver_id.as_str()),
                pd::decision.eq(&d.decision),
                pd::comment.eq(&d.comment),
                pd::at.eq(to_ts(d.at)),
            ))
            .execute(self)?;
        Ok(())
    }

    fn decisions_of(&mut self, request_id: &str) -> Result<Vec<StoredDecision>> {
        Ok(pd::table
            .filter(pd::request_id.eq(request_id))
            .order(pd::at.asc())
            .select((
                pd::request_id,
                pd::approver_id,
                pd::decision,
                pd::comment,
                pd::at,
            ))
            .load::<(String, String, String, String, i64)>(self)?
            .into_iter()
            .map(|(request_id, a, decision, comment, at)| StoredDecision {
                request_id,
                approver_id: UserId::from_stored(a),
                decision,
                comment,
                at: from_ts(at),
            })
            .collect())
    }

    fn insert_issuance(&mut self, i: &StoredIssuance) -> Result<()> {
        diesel::insert_into(pi::table)
            .values((
                pi::id.eq(&i.id),
                pi::request_id.eq(&i.request_id),
                pi::protocol.eq(&i.protocol),
                pi::recipient.eq(&i.recipient),
                pi::session_digest.eq(&i.session_digest),
                pi::grant_id.eq(&i.grant_id),
                pi::name_id.eq(&i.name_id),
                pi::session_index.eq(&i.session_index),
                pi::at.eq(to_ts(i.at)),
                pi::expires_at.eq(to_ts(i.expires_at)),
            ))
            .execute(self)?;
        Ok(())
    }

    fn issuances_of(&mut self, request_id: &str) -> Result<Vec<StoredIssuance>> {
        Ok(pi::table
            .filter(pi::request_id.eq(request_id))
            .order((pi::at.asc(), pi::id.asc()))
            .load::<IssuanceRow>(self)?
            .into_iter()
            .map(|r| StoredIssuance {
                id: r.0,
                request_id: r.1,
                protocol: r.2,
                recipient: r.3,
                session_digest: r.4,
                grant_id: r.5,
                name_id: r.6,
                session_index: r.7,
                at: from_ts(r.8),
                expires_at: from_ts(r.9),
            })
            .collect())
    }
}

#[derive(Queryable, Insertable)]
#[diesel(table_name = wd)]
struct DeliveryRow {
    id: String,
    url: String,
    event: String,
    body: String,
    state: String,
    attempts: i64,
    next_attempt_at: i64,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    delivered_at: Option<i64>,
}

impl DeliveryRow {
    fn from_domain(d: &StoredDelivery) -> Self {
        Self {
            id: d.id.clone(),
            url: d.url.clone(),
            event: d.event.clone(),
            body: d.body.clone(),
            state: d.state.clone(),
            attempts: d.attempts,
            next_attempt_at: to_ts(d.next_attempt_at),
            last_status: d.last_status,
            last_error: d.last_error.clone(),
            created_at: to_ts(d.created_at),
            delivered_at: d.delivered_at.map(to_ts),
        }
    }

    fn into_domain(self) -> StoredDelivery {
        StoredDelivery {
            id: self.id,
            url: self.url,
            event: self.event,
            body: self.body,
            state: self.state,
            attempts: self.attempts,
            next_attempt_at: from_ts(self.next_attempt_at),
            last_status: self.last_status,
            last_error: self.last_error,
            created_at: from_ts(self.created_at),
            delivered_at: self.delivered_at.map(from_ts),
        }
    }
}

impl WebhookRepo for DbConn {
    fn insert_delivery(&mut self, d: &StoredDelivery) -> Result<()> {
        diesel::insert_into(wd::table)
            .values(DeliveryRow::from_domain(d))
            .execute(self)?;
        Ok(())
    }

    fn due_deliveries(&mut self, now: DateTime<Utc>, limit: i64) -> Result<Vec<StoredDelivery>> {
        Ok(wd::table
            .filter(wd::state.eq("pending"))
            .filter(wd::next_attempt_at.le(to_ts(now)))
            .order((wd::created_at.asc(), wd::id.asc()))
            .limit(limit)
            .load::<DeliveryRow>(self)?
            .into_iter()
            .map(DeliveryRow::into_domain)
            .collect())
    }

    fn record_attempt(&mut self, d: &StoredDelivery, attempts_before: i64) -> Result<bool> {
        let n = diesel::update(
            wd::table
                .find(&d.id)
                .filter(wd::attempts.eq(attempts_before)),
        )
        .set((
            wd::state.eq(&d.state),
            wd::attempts.eq(d.attempts),
            wd::next_attempt_at.eq(to_ts(d.next_attempt_at)),
            wd::last_status.eq(d.last_status),
            wd::last_error.eq(&d.last_error),
            wd::delivered_at.eq(d.delivered_at.map(to_ts)),
        ))
        .execute(self)?;
        Ok(n == 1)
    }

    fn recent_deliveries(&mut self, limit: i64) -> Result<Vec<StoredDelivery>> {
        Ok(wd::table
            .order((wd::created_at.desc(), wd::id.desc()))
            .limit(limit)
            .load::<DeliveryRow>(self)?
            .into_iter()
            .map(DeliveryRow::into_domain)
            .collect())
    }
}

//! Checking an activation request at request time.
//!
//! One function runs every rule in a fixed order, so the requester always
//! hears about the most basic problem first (not eligible before "too long",
//! "too long" before "wrong network"), and returns the window it would grant.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use std::net::IpAddr;

use super::policy::{Policy, check_network};
use super::window::{check_windows, latest_containing};

/// What the requester asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInput {
    pub duration: Duration,
    pub reason: String,
    pub ticket: Option<String>,
    pub start: Option<DateTime<Utc>>,
}

/// What the server knows about the requester and the role at request time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub now: DateTime<Utc>,
    pub ip: Option<IpAddr>,
    /// None = not eligible; Some(None) = eligible without end; Some(Some(t)) = eligible until t.
    pub eligible_until: Option<Option<DateTime<Utc>>>,
    /// A user-verified passkey was shown within policy.mfa_within.
    pub fresh_mfa: bool,
    /// Live (approved or active) windows of this role across all users, overlapping the planned window.
    pub active_for_role: u32,
    pub max_schedule_ahead: Duration,
}

/// The window that would be granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Why ends_at < start + duration, in words for the requester.
    pub shortened_by: Option<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotEligible,
    DurationNotPositive,
    DurationTooLong {
        max: Duration,
    },
    ReasonMissing {
        min: usize,
    },
    TicketMissing,
    TicketMalformed,
    FreshMfaRequired,
    OutsideWindow(String),
    NetworkNotAllowed(String),
    TooManyActive {
        max: u32,
    },
    ScheduledNotAllowed,
    StartInPast,
    StartTooFar,
    EligibilityEndsBeforeStart,
    /// Reason or ticket too long, or with control or bidirectional-override
    /// characters (text an approver would read differently than written).
    TextMalformed(&'static str),
}

impl Refusal {
    /// A stable snake_case code for clients and audit logs.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotEligible => "not_eligible",
            Refusal::DurationNotPositive => "duration_not_positive",
            Refusal::DurationTooLong { .. } => "duration_too_long",
            Refusal::ReasonMissing { .. } => "reason_missing",
            Refusal::TicketMissing => "ticket_missing",
            Refusal::TicketMalformed => "ticket_malformed",
            Refusal::FreshMfaRequired => "fresh_mfa_required",
            Refusal::OutsideWindow(_) => "outside_window",
            Refusal::NetworkNotAllowed(_) => "network_not_allowed",
            Refusal::TooManyActive { .. } => "too_many_active",
            Refusal::ScheduledNotAllowed => "scheduled_not_allowed",
            Refusal::StartInPast => "start_in_past",
            Refusal::StartTooFar => "start_too_far",
            Refusal::EligibilityEndsBeforeStart => "eligibility_ends_before_start",
            Refusal::TextMalformed(_) => "text_malformed",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Refusal::NotEligible => "you are not eligible for this role",
            Refusal::DurationNotPositive => "the requested duration must be longer than zero",
            Refusal::DurationTooLong { max } => {
                let max = human_duration(*max);
                return write!(f, "the longest window for this role is {max}");
            }
            Refusal::ReasonMissing { min: 1 } => "this role needs a reason",
            Refusal::ReasonMissing { min } => {
                return write!(f, "this role needs a reason of at least {min} characters");
            }
            Refusal::TicketMissing => "this role needs a ticket reference",
            Refusal::TicketMalformed => "the ticket reference is not in the form this role expects",
            Refusal::FreshMfaRequired => {
                "this role needs a recent passkey check; confirm with your passkey and try again"
            }
            Refusal::OutsideWindow(message) | Refusal::NetworkNotAllowed(message) => message,
            Refusal::TooManyActive { max } => {
                let limit = "the most this role allows at once; try again later";
                return write!(f, "{max} activations of this role are live, {limit}");
            }
            Refusal::TextMalformed(which) => {
                return write!(
                    f,
                    "the {which} is too long or contains control or text-direction characters"
                );
            }
            Refusal::ScheduledNotAllowed => {
                "this role cannot be scheduled ahead; request it when needed"
            }
            Refusal::StartInPast => "the requested start time is in the past",
            Refusal::StartTooFar => "the requested start time is too far ahead",
            Refusal::EligibilityEndsBeforeStart => {
                "your eligibility for this role ends before the requested start"
            }
        };
        f.write_str(text)
    }
}

impl std::error::Error for Refusal {}

/// Durations as people say them: 90m -> "1h 30m", 2h -> "2h", 45m -> "45m", 1d -> "24h".
pub fn human_duration(d: Duration) -> String {
    let total = d.num_seconds().max(0);
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    let parts: Vec<String> = [(h, "h"), (m, "m"), (s, "s")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0m".to_string()
    } else {
        parts.join(" ")
    }
}

/// Longest reason, in characters: approvers read it in full.
pub const MAX_REASON: usize = 1000;
/// Longest ticket reference, in characters.
pub const MAX_TICKET: usize = 128;

/// Text an approver reads as written (see `protocol::text`); newlines
/// and tabs are allowed.
pub fn plain_text(s: &str, max: usize) -> bool {
    crate::protocol::text::readable(s, max, true)
}

/// Runs every rule in order; on success, the window that would be granted.
pub fn check_request(
    policy: &Policy,
    input: &RequestInput,
    ctx: &RequestContext,
) -> Result<Planned, Refusal> {
    let eligible_until = ctx.eligible_until.ok_or(Refusal::NotEligible)?;
    if !plain_text(&input.reason, MAX_REASON) {
        return Err(Refusal::TextMalformed("reason"));
    }
    if input
        .ticket
        .as_deref()
        .is_some_and(|t| !plain_text(t, MAX_TICKET))
    {
        return Err(Refusal::TextMalformed("ticket reference"));
    }
    if input.duration <= Duration::zero() {
        return Err(Refusal::DurationNotPositive);
    }
    if input.duration > policy.max_duration {
        return Err(Refusal::DurationTooLong {
            max: policy.max_duration,
        });
    }
    if policy.require_justification {
        // A required reason has at least one character, whatever the minimum says.
        let min = policy.justification_min_len.max(1);
        // Only what a reader sees counts: invisible characters are no reason.
        if crate::protocol::text::visible_len(&input.reason) < min {
            return Err(Refusal::ReasonMissing { min });
        }
    }
    let ticket = input.ticket.as_deref().map(str::trim);
    match ticket.filter(|t| !t.is_empty()) {
        None if policy.ticket_required => return Err(Refusal::TicketMissing),
        Some(t) if !policy.ticket_matches(t) => return Err(Refusal::TicketMalformed),
        _ => {}
    }
    let starts_at = plan_start(policy, input.start, ctx)?;
    check_network(&policy.networks, ctx.ip).map_err(Refusal::NetworkNotAllowed)?;
    check_windows(&policy.windows, starts_at).map_err(Refusal::OutsideWindow)?;
    if policy.require_mfa && !ctx.fresh_mfa {
        return Err(Refusal::FreshMfaRequired);
    }
    if let Some(max) = policy.max_concurrent
        && ctx.active_for_role >= max
    {
        return Err(Refusal::TooManyActive { max });
    }
    if let Some(until) = eligible_until
        && until <= starts_at
    {
        return Err(Refusal::EligibilityEndsBeforeStart);
    }

    let mut ends_at = shift(starts_at, input.duration);
    let mut shortened_by = None;
    if let Some((window, end)) = latest_containing(&policy.windows, starts_at)
        && end < ends_at
    {
        ends_at = end;
        let local_end = window.end().format("%H:%M");
        let zone = window.tz().name();
        shortened_by = Some(format!("the allowed window ends at {local_end} {zone}"));
    }
    if let Some(until) = eligible_until
        && until < ends_at
    {
        ends_at = until;
        let when = until.to_rfc3339_opts(SecondsFormat::Secs, true);
        shortened_by = Some(format!("your eligibility ends at {when}"));
    }
    Ok(Planned {
        starts_at,
        ends_at,
        shortened_by,
    })
}

/// A start more than a minute ahead is scheduled; within a minute either way it is now.
fn plan_start(
    policy: &Policy,
    start: Option<DateTime<Utc>>,
    ctx: &RequestContext,
) -> Result<DateTime<Utc>, Refusal> {
    let Some(start) = start else {
        return Ok(ctx.now);
    };
    // Clocks and forms lag, so a start within a minute of now is now.
    let slack = Duration::seconds(60);
    if start > shift(ctx.now, slack) {
        if !policy.allow_scheduled {
            return Err(Refusal::ScheduledNotAllowed);
        }
        if start > shift(ctx.now, ctx.max_schedule_ahead) {
            return Err(Refusal::StartTooFar);
        }
        Ok(start)
    } else if start < shift(ctx.now, -slack) {
        Err(Refusal::StartInPast)
    } else {
        Ok(ctx.now)
    }
}

/// `t + d`, saturating at the ends of the calendar instead of panicking.
fn shift(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    match t.checked_add_signed(d) {
        Some(t) => t,
        None if d < Duration::zero() => DateTime::<Utc>::MIN_UTC,
        None => DateTime::<Utc>::MAX_UTC,
    }
}

#[cfg(test)]
mod tests {
    use super::super::policy::tests::{open_policy, strict_policy as strict};
    use super::*;
    use chrono::TimeZone;

    type EditInput = fn(&mut RequestInput);
    type EditCtx = fn(&mut RequestContext);

    /// Mon 30 March 2026 12:30 UTC (14:30 in Berlin), moved by `m` minutes.
    fn mins(m: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 30, 12, 30, 0).unwrap() + Duration::minutes(m)
    }

    /// Checks a request that passes `strict()` once `fi` and `fc` have changed it.
    fn run(p: &Policy, fi: EditInput, fc: EditCtx) -> Result<Planned, Refusal> {
        let mut input = RequestInput {
            duration: Duration::hours(1),
            reason: "investigating the payment outage".into(),
            ticket: Some(" INC-42 ".into()),
            start: None,
        };
        let mut ctx = RequestContext {
            now: mins(0),
            ip: "10.0.0.5".parse().ok(),
            eligible_until: Some(None),
            fresh_mfa: true,
            active_for_role: 0,
            max_schedule_ahead: Duration::days(7),
        };
        fi(&mut input);
        fc(&mut ctx);
        check_request(p, &input, &ctx)
    }

    fn refused(fi: EditInput, fc: EditCtx) -> Refusal {
        run(&strict(), fi, fc).unwrap_err()
    }

    fn same_i(_: &mut RequestInput) {}
    fn same_c(_: &mut RequestContext) {}

    #[test]
    fn a_valid_request_gets_the_full_duration_from_now() {
        let want = Planned {
            starts_at: mins(0),
            ends_at: mins(60),
            shortened_by: None,
        };
        assert_eq!(run(&strict(), same_i, same_c), Ok(want.clone()));
        let open = run(&open_policy(), |i| i.ticket = None, |c| c.ip = None);
        assert_eq!(open, Ok(want));
    }

    #[test]
    fn each_rule_refuses() {
        use Refusal::*;
        assert_eq!(refused(same_i, |c| c.eligible_until = None), NotEligible);
        let got = refused(|i| i.duration = Duration::zero(), same_c);
        assert_eq!(got, DurationNotPositive);
        let max = Duration::hours(2);
        let got = refused(|i| i.duration = Duration::minutes(121), same_c);
        assert_eq!(got, DurationTooLong { max });
        let got = refused(|i| i.reason = " too short ".into(), same_c);
        assert_eq!(got, ReasonMissing { min: 10 });
        let got = refused(|i| i.ticket = Some(" ".into()), same_c);
        assert_eq!(got, TicketMissing);
        let got = refused(|i| i.ticket = Some("INC-4a".into()), same_c);
        assert_eq!(got, TicketMalformed);
        assert_eq!(refused(|i| i.start = Some(mins(-2)), same_c), StartInPast);
        let got = refused(|i| i.start = Some(mins(8 * 24 * 60)), same_c);
        assert_eq!(got, StartTooFar);
        let net = "your address 192.0.2.1 is not in an allowed network".to_string();
        let got = refused(same_i, |c| c.ip = "::ffff:192.0.2.1".parse().ok());
        assert_eq!(got, NetworkNotAllowed(net));
        let win = "outside the allowed window Mon–Fri 14:00–16:00 Europe/Berlin".to_string();
        let got = refused(|i| i.start = Some(mins(120)), same_c);
        assert_eq!(got, OutsideWindow(win));
        assert_eq!(refused(same_i, |c| c.fresh_mfa = false), FreshMfaRequired);
        let got = refused(same_i, |c| c.active_for_role = 2);
        assert_eq!(got, TooManyActive { max: 2 });
        let ended = refused(same_i, |c| c.eligible_until = Some(Some(mins(0))));
        assert_eq!(ended, EligibilityEndsBeforeStart);
        let mut now_only = strict();
        now_only.allow_scheduled = false;
        let got = run(&now_only, |i| i.start = Some(mins(5)), same_c);
        assert_eq!(got, Err(ScheduledNotAllowed));
        let mut no_ticket_needed = strict();
        no_ticket_needed.ticket_required = false;
        assert!(run(&no_ticket_needed, |i| i.ticket = None, same_c).is_ok());
        // Earlier rules win.
        let all_wrong: EditInput = |i| {
            (i.duration, i.ticket, i.start) = (Duration::hours(5), None, Some(mins(-60)));
            i.reason.clear();
        };
        let not_eligible = refused(all_wrong, |c| c.eligible_until = None);
        assert_eq!(not_eligible, NotEligible);
        let got = refused(all_wrong, |c| c.fresh_mfa = false);
        assert_eq!(got, DurationTooLong { max });
    }

    #[test]
    fn a_start_within_a_minute_is_now_and_a_later_one_is_kept() {
        let near: [EditInput; 3] = [
            |i| i.start = Some(mins(-1)),
            |i| i.start = Some(mins(1)),
            |i| i.start = Some(mins(0) - Duration::seconds(59)),
        ];
        for fi in near {
            assert_eq!(run(&strict(), fi, same_c).unwrap().starts_at, mins(0));
        }
        let planned = run(&strict(), |i| i.start = Some(mins(30)), same_c).unwrap();
        assert_eq!((planned.starts_at, planned.ends_at), (mins(30), mins(90)));
    }

    #[test]
    fn shortened_by_window_and_by_eligibility() {
        let two_hours: EditInput = |i| i.duration = Duration::hours(2);
        let planned = run(&strict(), two_hours, same_c).unwrap();
        assert_eq!(planned.ends_at, mins(90));
        let why = planned.shortened_by.as_deref();
        assert_eq!(why, Some("the allowed window ends at 16:00 Europe/Berlin"));

        let until_20: EditCtx = |c| c.eligible_until = Some(Some(mins(20)));
        let planned = run(&strict(), two_hours, until_20).unwrap();
        assert_eq!(planned.ends_at, mins(20));
        let why = planned.shortened_by.as_deref();
        assert_eq!(why, Some("your eligibility ends at 2026-03-30T12:50:00Z"));

        let until_180: EditCtx = |c| c.eligible_until = Some(Some(mins(180)));
        let planned = run(&strict(), same_i, until_180).unwrap();
        assert_eq!((planned.ends_at, planned.shortened_by), (mins(60), None));
    }

    #[test]
    fn codes_and_messages() {
        let too_long = Refusal::DurationTooLong {
            max: Duration::minutes(90),
        };
        assert_eq!(too_long.code(), "duration_too_long");
        let text = too_long.to_string();
        assert_eq!(text, "the longest window for this role is 1h 30m");
        assert_eq!(Refusal::FreshMfaRequired.code(), "fresh_mfa_required");
        let outside = Refusal::OutsideWindow("outside the allowed window X".into());
        assert_eq!(outside.code(), "outside_window");
        assert_eq!(outside.to_string(), "outside the allowed window X");
        let reason = Refusal::ReasonMissing { min: 10 }.to_string();
        assert_eq!(reason, "this role needs a reason of at least 10 characters");
        assert_eq!(human_duration(Duration::minutes(90)), "1h 30m");
        assert_eq!(human_duration(Duration::hours(2)), "2h");
        assert_eq!(human_duration(Duration::minutes(45)), "45m");
        assert_eq!(human_duration(Duration::days(1)), "24h");
        assert_eq!(human_duration(Duration::seconds(90)), "1m 30s");
        assert_eq!(human_duration(Duration::zero()), "0m");
    }
}

//! A risk score for approvers.
//!
//! The score is a hint, not a gate: it ranks what an approver should look at
//! more closely, and the factors say why in plain words.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use std::net::IpAddr;

use super::policy::normalise_ip;

/// What is known about the requester that bears on risk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskInput {
    pub off_hours: bool,
    pub new_network: bool,
    pub recent_failed_sign_ins: u32,
    pub first_request_for_role: bool,
}

/// A score from 0 to 100 and the factors behind it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Risk {
    pub score: u32,
    pub factors: Vec<String>,
}

const OFF_HOURS: u32 = 25;
const NEW_NETWORK: u32 = 30;
const PER_FAILED_SIGN_IN: u32 = 10;
const FAILED_SIGN_INS_CAP: u32 = 30;
const FIRST_REQUEST: u32 = 20;
const MAX_SCORE: u32 = 100;

/// Off hours 25, new network 30, failed sign-ins 10 each up to 30, first request 20; at most 100.
pub fn score(input: &RiskInput) -> Risk {
    let mut score = 0u32;
    let mut factors = Vec::new();
    if input.off_hours {
        score += OFF_HOURS;
        factors.push("outside office hours".to_string());
    }
    if input.new_network {
        score += NEW_NETWORK;
        factors.push("a network not seen before".to_string());
    }
    match input.recent_failed_sign_ins {
        0 => {}
        n => {
            score += n
                .saturating_mul(PER_FAILED_SIGN_IN)
                .min(FAILED_SIGN_INS_CAP);
            let plural = if n == 1 { "" } else { "s" };
            factors.push(format!("{n} failed sign-in{plural} in the last 24h"));
        }
    }
    if input.first_request_for_role {
        score += FIRST_REQUEST;
        factors.push("first request for this role".to_string());
    }
    Risk {
        score: score.min(MAX_SCORE),
        factors,
    }
}

/// Off hours: Saturday, Sunday, or local time before 07:00 or from 19:00, in `tz`.
pub fn is_off_hours(now: DateTime<Utc>, tz: Tz) -> bool {
    let local = now.with_timezone(&tz);
    matches!(local.weekday(), Weekday::Sat | Weekday::Sun) || local.hour() < 7 || local.hour() >= 19
}

/// Whether `ip` is in a network seen before: same /24 for IPv4, same /64 for IPv6 as any of `seen`.
/// Returns true when the network is new: no address, or nothing seen yet, counts as new.
pub fn is_new_network(ip: Option<IpAddr>, seen: &[IpAddr]) -> bool {
    let Some(ip) = ip else {
        return true;
    };
    let ip = normalise_ip(ip);
    !seen
        .iter()
        .any(|other| same_network(ip, normalise_ip(*other)))
}

/// An earlier request of the requester, as the risk rules read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastRequest {
    pub created_at: DateTime<Utc>,
    /// It was granted a window (approved, active or ended by time).
    pub granted: bool,
    pub ip: Option<IpAddr>,
    pub risk_score: u32,
}

/// The addresses a new request's network is compared with: sign-ins and
/// granted windows from before `since` (the current sign-in). Requests
/// that were withdrawn, denied or expired, and anything after `since`,
/// never make a network known: a requester cannot vouch for themselves.
pub fn known_addresses(
    sign_ins: &[IpAddr],
    past: &[PastRequest],
    since: DateTime<Utc>,
) -> Vec<IpAddr> {
    sign_ins
        .iter()
        .copied()
        .chain(
            past.iter()
                .filter(|p| p.granted && p.created_at < since)
                .filter_map(|p| p.ip),
        )
        .collect()
}

/// Whether a recent request that scored `threshold` or more and was not
/// granted (withdrawn, denied, expired, still waiting) keeps forcing
/// approval: one made within `cool_down` before `now`.
pub fn cooling_down(
    past: &[PastRequest],
    threshold: u32,
    now: DateTime<Utc>,
    cool_down: chrono::Duration,
) -> bool {
    past.iter()
        .any(|p| !p.granted && p.risk_score >= threshold && p.created_at > now - cool_down)
}

/// The factor an approver sees when [`cooling_down`] forced approval.
pub const COOL_DOWN_FACTOR: &str = "a high-risk request in the cool-down period";

/// Same /24 for IPv4, same /64 for IPv6; addresses of different families never match.
fn same_network(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..3] == b.octets()[..3],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.segments()[..4] == b.segments()[..4],
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn input(off: bool, new: bool, failed: u32, first: bool) -> RiskInput {
        RiskInput {
            off_hours: off,
            new_network: new,
            recent_failed_sign_ins: failed,
            first_request_for_role: first,
        }
    }

    #[test]
    fn weights_and_caps() {
        assert_eq!(
            score(&input(false, false, 0, false)),
            Risk {
                score: 0,
                factors: vec![]
            }
        );
        assert_eq!(score(&input(true, false, 0, false)).score, 25);
        assert_eq!(score(&input(false, true, 0, false)).score, 30);
        assert_eq!(score(&input(false, false, 1, false)).score, 10);
        assert_eq!(score(&input(false, false, 3, false)).score, 30);
        assert_eq!(score(&input(false, false, u32::MAX, false)).score, 30);
        assert_eq!(score(&input(false, false, 0, true)).score, 20);
        assert_eq!(score(&input(true, true, 0, true)).score, 75);
        let all = score(&input(true, true, 5, true));
        assert_eq!(all.score, 100);
        let factors = [
            "outside office hours",
            "a network not seen before",
            "5 failed sign-ins in the last 24h",
            "first request for this role",
        ];
        assert_eq!(all.factors, factors);
        let one = score(&input(false, false, 1, false)).factors;
        assert_eq!(one, ["1 failed sign-in in the last 24h"]);
        let json = serde_json::to_string(&score(&input(true, false, 0, false))).unwrap();
        assert_eq!(json, r#"{"score":25,"factors":["outside office hours"]}"#);
    }

    #[test]
    fn office_hours_follow_the_local_clock() {
        let berlin = chrono_tz::Europe::Berlin;
        let at = |d, h, m| Utc.with_ymd_and_hms(2026, 3, d, h, m, 0).unwrap();
        // Mon 30 March, CEST (UTC+2).
        assert!(is_off_hours(at(30, 4, 59), berlin)); // 06:59
        assert!(!is_off_hours(at(30, 5, 0), berlin)); // 07:00
        assert!(!is_off_hours(at(30, 16, 59), berlin)); // 18:59
        assert!(is_off_hours(at(30, 17, 0), berlin)); // 19:00
        // Fri 27 March 23:30 UTC is already Saturday in Berlin.
        assert!(!is_off_hours(at(27, 12, 0), berlin));
        assert!(is_off_hours(at(27, 23, 30), berlin));
        // Sun 29 March 20:00 UTC is Monday 09:00 in Auckland but Sunday 22:00 in Berlin.
        assert!(!is_off_hours(at(29, 20, 0), chrono_tz::Pacific::Auckland));
        assert!(is_off_hours(at(29, 20, 0), berlin));
        assert!(is_off_hours(at(29, 12, 0), berlin)); // Sunday
    }

    fn past(mins: i64, granted: bool, ip: &str, score: u32) -> PastRequest {
        PastRequest {
            created_at: t(mins),
            granted,
            ip: Some(ip.parse().unwrap()),
            risk_score: score,
        }
    }

    fn t(mins: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 22, 0, 0).unwrap() + chrono::Duration::minutes(mins)
    }

    #[test]
    fn only_granted_history_from_before_the_sign_in_is_known() {
        let signed_in = t(0);
        let history = [
            past(-60, true, "192.0.2.1", 0),      // granted, earlier: known
            past(-30, false, "198.51.100.1", 75), // withdrawn: never
            past(5, true, "203.0.113.1", 0),      // granted after the sign-in: no
        ];
        let known = known_addresses(&["10.0.0.1".parse().unwrap()], &history, signed_in);
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert!(!is_new_network(ip("192.0.2.9"), &known));
        assert!(!is_new_network(ip("10.0.0.7"), &known));
        assert!(is_new_network(ip("198.51.100.1"), &known));
        assert!(is_new_network(ip("203.0.113.1"), &known));
    }

    #[test]
    fn a_high_risk_request_not_granted_forces_approval_for_the_cool_down() {
        let day = chrono::Duration::hours(24);
        let withdrawn = [past(0, false, "198.51.100.1", 75)];
        assert!(cooling_down(&withdrawn, 60, t(1), day));
        assert!(cooling_down(&withdrawn, 60, t(24 * 60 - 1), day));
        assert!(!cooling_down(&withdrawn, 60, t(24 * 60), day));
        assert!(!cooling_down(&withdrawn, 80, t(1), day), "below threshold");
        let granted = [past(0, true, "198.51.100.1", 75)];
        assert!(!cooling_down(&granted, 60, t(1), day), "an approver saw it");
        assert!(!cooling_down(
            &withdrawn,
            60,
            t(1),
            chrono::Duration::zero()
        ));
    }

    #[test]
    fn networks_by_prefix() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let seen = [ip("192.0.2.10"), ip("2001:db8:1:2::5")];
        assert!(is_new_network(None, &seen));
        assert!(is_new_network(Some(ip("192.0.2.10")), &[]));
        assert!(!is_new_network(Some(ip("192.0.2.200")), &seen));
        assert!(!is_new_network(Some(ip("::ffff:192.0.2.7")), &seen));
        assert!(is_new_network(Some(ip("192.0.3.10")), &seen));
        assert!(!is_new_network(Some(ip("2001:db8:1:2:ffff::1")), &seen));
        assert!(is_new_network(Some(ip("2001:db8:1:3::5")), &seen));
    }
}

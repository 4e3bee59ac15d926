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

//! A privileged role's activation policy.
//!
//! The policy is plain data an admin edits; [`Policy::validate`] catches what
//! would make every later request fail, so mistakes surface when saving.

use chrono::{DateTime, Duration, Utc};
use ipnet::IpNet;
use std::net::IpAddr;

use super::window::{TimeWindow, check_windows};

/// Who must approve an activation before it is granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    None,
    Manager,
    Group { name: String, count: u32 },
}

impl std::str::FromStr for Approval {
    type Err = String;

    /// Reads "none", "manager", "group:<name>" or "group:<name>:<count>".
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("none") {
            return Ok(Approval::None);
        }
        if s.eq_ignore_ascii_case("manager") {
            return Ok(Approval::Manager);
        }
        let rest = match s.split_once(':') {
            Some((kind, rest)) if kind.eq_ignore_ascii_case("group") => rest,
            _ => {
                return Err(format!(
                    "\"{s}\" is not an approval rule; use none, manager, group:<name> \
                     or group:<name>:<count>"
                ));
            }
        };
        let (name, count) = match rest.split_once(':') {
            Some((name, count)) => {
                let count = count.trim().parse::<u32>().ok().filter(|c| *c >= 1);
                let count = count.ok_or_else(|| {
                    format!("the approver count in \"{s}\" must be a whole number of at least 1")
                })?;
                (name.trim(), count)
            }
            None => (rest.trim(), 1),
        };
        if name.is_empty() {
            return Err(format!("\"{s}\" names no group; write it like group:ops"));
        }
        Ok(Approval::Group {
            name: name.to_string(),
            count,
        })
    }
}

impl std::fmt::Display for Approval {
    /// The canonical form `FromStr` reads back; a count of 1 is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Approval::None => f.write_str("none"),
            Approval::Manager => f.write_str("manager"),
            Approval::Group { name, count: 1 } => write!(f, "group:{name}"),
            Approval::Group { name, count } => write!(f, "group:{name}:{count}"),
        }
    }
}

/// The longest window a policy may allow.
pub fn max_policy_duration() -> Duration {
    Duration::days(30)
}

/// Everything that decides whether and how a role may be activated.
#[derive(Debug, Clone)]
pub struct Policy {
    pub max_duration: Duration,
    pub require_justification: bool,
    /// Counted in chars after trim; used when `require_justification`.
    pub justification_min_len: usize,
    pub ticket_required: bool,
    /// A regex the whole ticket must match (anchored when used).
    pub ticket_pattern: Option<String>,
    pub approval: Approval,
    pub require_mfa: bool,
    pub mfa_within: Duration,
    pub windows: Vec<TimeWindow>,
    pub networks: Vec<IpNet>,
    pub max_concurrent: Option<u32>,
    pub allow_scheduled: bool,
}

impl Policy {
    /// Refuses settings that could never work: a zero or over-long maximum,
    /// a ticket pattern that does not compile, a group needing no approvers.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_duration <= Duration::zero() {
            return Err("the longest window must be longer than zero".to_string());
        }
        if self.max_duration > max_policy_duration() {
            return Err("the longest window can be at most 30 days".to_string());
        }
        if let Some(pattern) = &self.ticket_pattern {
            ticket_regex(pattern).map_err(|e| {
                format!("the ticket pattern is not a valid regular expression: {e}")
            })?;
        }
        if let Approval::Group { name, count } = &self.approval {
            if name.trim().is_empty() {
                return Err("the approving group needs a name".to_string());
            }
            if *count < 1 {
                return Err("the approving group must need at least 1 approval".to_string());
            }
        }
        if self.mfa_within < Duration::zero() {
            return Err("the passkey freshness period cannot be negative".to_string());
        }
        Ok(())
    }

    /// Rule 1's condition part: the network and time-of-day conditions hold for a request from `ip` at `now`.
    pub fn conditions_hold(&self, ip: Option<IpAddr>, now: DateTime<Utc>) -> bool {
        check_network(&self.networks, ip).is_ok() && check_windows(&self.windows, now).is_ok()
    }

    /// Whether `ticket` matches the policy's pattern in full; no pattern matches anything.
    /// A pattern that does not compile matches nothing, so a bad policy fails closed.
    pub fn ticket_matches(&self, ticket: &str) -> bool {
        match &self.ticket_pattern {
            None => true,
            Some(pattern) => ticket_regex(pattern).is_ok_and(|re| re.is_match(ticket)),
        }
    }
}

/// The admin writes the pattern for the whole ticket, so anchor it here.
fn ticket_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
}

/// IPv4 clients often reach dual-stack listeners as ::ffff:a.b.c.d; treat them as IPv4.
pub fn normalise_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Empty list: Ok. None ip: Err("your address could not be determined, and this role is limited to certain networks").
/// Not contained: Err(format!("your address {ip} is not in an allowed network")). Normalise IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) to IPv4 before matching.
pub fn check_network(networks: &[IpNet], ip: Option<IpAddr>) -> Result<(), String> {
    if networks.is_empty() {
        return Ok(());
    }
    let Some(ip) = ip else {
        return Err(
            "your address could not be determined, and this role is limited to certain networks"
                .to_string(),
        );
    };
    let ip = normalise_ip(ip);
    if networks.iter().any(|net| net.contains(&ip)) {
        Ok(())
    } else {
        Err(format!("your address {ip} is not in an allowed network"))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A policy with no conditions, for other modules' tests to adjust.
    pub(crate) fn open_policy() -> Policy {
        Policy {
            max_duration: Duration::hours(2),
            require_justification: false,
            justification_min_len: 0,
            ticket_required: false,
            ticket_pattern: None,
            approval: Approval::None,
            require_mfa: false,
            mfa_within: Duration::minutes(10),
            windows: Vec::new(),
            networks: Vec::new(),
            max_concurrent: None,
            allow_scheduled: false,
        }
    }

    /// A policy using every condition, which the request tests' defaults satisfy.
    pub(crate) fn strict_policy() -> Policy {
        let mut p = open_policy();
        p.require_justification = true;
        p.justification_min_len = 10;
        p.ticket_required = true;
        p.ticket_pattern = Some("INC-[0-9]+".into());
        p.require_mfa = true;
        p.windows = vec!["Mon-Fri 14:00-16:00 Europe/Berlin".parse().unwrap()];
        p.networks = vec!["10.0.0.0/8".parse().unwrap()];
        p.max_concurrent = Some(2);
        p.allow_scheduled = true;
        p
    }

    #[test]
    fn approval_parses_and_prints_canonically() {
        for (input, want, canonical) in [
            ("none", Approval::None, "none"),
            (" Manager ", Approval::Manager, "manager"),
            ("group:ops", group("ops", 1), "group:ops"),
            ("group:ops:1", group("ops", 1), "group:ops"),
            ("group:ops:2", group("ops", 2), "group:ops:2"),
            (
                "GROUP: sec-admins :3",
                group("sec-admins", 3),
                "group:sec-admins:3",
            ),
        ] {
            let got: Approval = input.parse().unwrap();
            assert_eq!(got, want, "{input}");
            assert_eq!(got.to_string(), canonical);
            assert_eq!(canonical.parse::<Approval>().unwrap(), want);
        }
        for bad in [
            "",
            "anyone",
            "group:",
            "group::2",
            "group:ops:0",
            "group:ops:x",
        ] {
            assert!(bad.parse::<Approval>().is_err(), "{bad}");
        }
        let err = "group:ops:0".parse::<Approval>().unwrap_err();
        assert!(err.contains("at least 1"), "{err}");
    }

    fn group(name: &str, count: u32) -> Approval {
        Approval::Group {
            name: name.to_string(),
            count,
        }
    }

    #[test]
    fn validate_catches_unworkable_settings() {
        assert_eq!(open_policy().validate(), Ok(()));
        let with = |f: fn(&mut Policy)| {
            let mut p = open_policy();
            f(&mut p);
            p.validate()
        };
        assert!(with(|p| p.max_duration = Duration::zero()).is_err());
        assert!(with(|p| p.max_duration = Duration::days(31)).is_err());
        assert!(with(|p| p.max_duration = Duration::days(30)).is_ok());
        assert!(with(|p| p.ticket_pattern = Some("INC-[0-9".into())).is_err());
        assert!(with(|p| p.ticket_pattern = Some("INC-[0-9]+".into())).is_ok());
        assert!(with(|p| p.approval = group("ops", 0)).is_err());
        assert!(with(|p| p.approval = group(" ", 1)).is_err());
    }

    #[test]
    fn ticket_pattern_is_anchored() {
        let mut p = open_policy();
        assert!(p.ticket_matches("anything"));
        p.ticket_pattern = Some("INC-[0-9]+|CHG-[0-9]+".into());
        assert!(p.ticket_matches("INC-42"));
        assert!(p.ticket_matches("CHG-7"));
        assert!(!p.ticket_matches("xINC-42"));
        assert!(!p.ticket_matches("INC-42x"));
        p.ticket_pattern = Some("(".into());
        assert!(!p.ticket_matches("("));
    }

    #[test]
    fn networks_and_mapped_addresses() {
        let nets: Vec<IpNet> = vec![
            "10.0.0.0/8".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ];
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(check_network(&[], None), Ok(()));
        assert_eq!(check_network(&nets, ip("10.1.2.3")), Ok(()));
        assert_eq!(check_network(&nets, ip("::ffff:10.1.2.3")), Ok(()));
        assert_eq!(check_network(&nets, ip("2001:db8::1")), Ok(()));
        assert_eq!(
            check_network(&nets, ip("::ffff:192.0.2.1")),
            Err("your address 192.0.2.1 is not in an allowed network".to_string())
        );
        let none = check_network(&nets, None).unwrap_err();
        assert!(none.starts_with("your address could not be determined"));
    }

    #[test]
    fn conditions_hold_needs_both_network_and_window() {
        let mut p = open_policy();
        p.networks = vec!["10.0.0.0/8".parse().unwrap()];
        p.windows = vec!["Mon-Fri 14:00-16:00 Europe/Berlin".parse().unwrap()];
        let inside = Utc.with_ymd_and_hms(2026, 3, 30, 12, 30, 0).unwrap();
        let outside = Utc.with_ymd_and_hms(2026, 3, 27, 12, 30, 0).unwrap();
        let office = Some("10.0.0.5".parse().unwrap());
        let home = Some("192.0.2.7".parse().unwrap());
        assert!(p.conditions_hold(office, inside));
        assert!(!p.conditions_hold(office, outside));
        assert!(!p.conditions_hold(home, inside));
        assert!(!p.conditions_hold(None, inside));
        assert!(open_policy().conditions_hold(None, outside));
    }
}

//! Sign-in rules: throttling of failed attempts, password policy, and where a
//! browser may be sent after signing in.

use std::time::Duration;

/// Failure counts observed for this attempt, each within the lockout window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCounts {
    pub account: u64,
    pub ip: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleLimits {
    pub per_account: u32,
    pub per_ip: u32,
    pub lockout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleDecision {
    Allow,
    /// Refuse without checking the password, even a correct one, so that a
    /// locked account cannot be brute-forced through the lock.
    Locked {
        retry_after: Duration,
    },
}

/// Decides before checking a password whether the attempt may proceed.
/// `ttl` is how long the longest-living counter that tripped still has to run.
pub fn throttle(
    counts: FailureCounts,
    limits: ThrottleLimits,
    ttl: Option<Duration>,
) -> ThrottleDecision {
    if counts.account >= u64::from(limits.per_account) || counts.ip >= u64::from(limits.per_ip) {
        ThrottleDecision::Locked {
            retry_after: ttl.unwrap_or(limits.lockout),
        }
    } else {
        ThrottleDecision::Allow
    }
}

/// "15 minutes", "1 minute", "30 seconds": for the message a locked-out user reads.
pub fn human_wait(d: Duration) -> String {
    let secs = d.as_secs().max(1);
    if secs >= 60 {
        let mins = secs.div_ceil(60);
        format!("{mins} minute{}", if mins == 1 { "" } else { "s" })
    } else {
        format!("{secs} second{}", if secs == 1 { "" } else { "s" })
    }
}

/// Checks a new password against the policy; the error is for the user.
pub fn check_password_policy(password: &str, min_len: usize, username: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < min_len {
        return Err(format!(
            "The password must be at least {min_len} characters long."
        ));
    }
    if len > 1024 {
        return Err("The password must be at most 1024 characters long.".into());
    }
    if password.trim().is_empty() {
        return Err("The password must not be only spaces.".into());
    }
    if password.eq_ignore_ascii_case(username) {
        return Err("The password must not be the username.".into());
    }
    Ok(())
}

/// Accepts only a local absolute path (`/account?x=1`) as a post-login target,
/// so the login page can never be used as an open redirect.
pub fn safe_return_path(next: Option<&str>) -> Option<String> {
    let next = next?.trim();
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\')
        && next.len() <= 2048;
    ok.then(|| next.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ThrottleLimits = ThrottleLimits {
        per_account: 5,
        per_ip: 50,
        lockout: Duration::from_secs(900),
    };

    #[test]
    fn allows_below_the_limits() {
        let d = throttle(FailureCounts { account: 4, ip: 49 }, LIMITS, None);
        assert_eq!(d, ThrottleDecision::Allow);
    }

    #[test]
    fn locks_at_the_account_limit_with_the_remaining_time() {
        let d = throttle(
            FailureCounts { account: 5, ip: 0 },
            LIMITS,
            Some(Duration::from_secs(120)),
        );
        assert_eq!(
            d,
            ThrottleDecision::Locked {
                retry_after: Duration::from_secs(120)
            }
        );
    }

    #[test]
    fn locks_at_the_ip_limit() {
        let d = throttle(FailureCounts { account: 0, ip: 50 }, LIMITS, None);
        assert_eq!(
            d,
            ThrottleDecision::Locked {
                retry_after: LIMITS.lockout
            }
        );
    }

    #[test]
    fn waits_read_naturally() {
        assert_eq!(human_wait(Duration::from_secs(900)), "15 minutes");
        assert_eq!(human_wait(Duration::from_secs(61)), "2 minutes");
        assert_eq!(human_wait(Duration::from_secs(60)), "1 minute");
        assert_eq!(human_wait(Duration::from_secs(1)), "1 second");
        assert_eq!(human_wait(Duration::ZERO), "1 second");
    }

    #[test]
    fn password_policy() {
        assert!(check_password_policy("short", 10, "bob").is_err());
        assert!(check_password_policy("          ", 10, "bob").is_err());
        assert!(check_password_policy("Alice12345", 10, "alice12345").is_err());
        assert!(check_password_policy("a long passphrase", 10, "bob").is_ok());
        assert!(check_password_policy(&"x".repeat(1025), 10, "bob").is_err());
    }

    #[test]
    fn only_local_paths_are_return_targets() {
        assert_eq!(safe_return_path(Some("/account")), Some("/account".into()));
        assert_eq!(
            safe_return_path(Some("/authorize?client_id=x&state=y")),
            Some("/authorize?client_id=x&state=y".into())
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "javascript:alert(1)",
            "account",
            "/a\nb",
            "",
        ] {
            assert_eq!(safe_return_path(Some(bad)), None, "{bad}");
        }
        assert_eq!(safe_return_path(None), None);
    }
}

//! Account lifecycle rules: what a one-time password opens, and for how long.

use chrono::{DateTime, Duration, Utc};

/// How long a one-time password (the first administrator's, or one an
/// administrator set with `user set-password` without a value) can be used.
pub const ONE_TIME_PASSWORD_LIFETIME: Duration = Duration::hours(24);

/// Whether a one-time password set at `set_at` can no longer be used.
pub fn one_time_password_expired(set_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now >= set_at + ONE_TIME_PASSWORD_LIFETIME
}

/// Whether a session may do nothing but choose a new password: it was
/// opened with a password (`amr` has `pwd`) that is still a one-time one.
/// A session opened with a passkey alone never proved that password.
pub fn password_change_only(amr: &[String], password_is_one_time: bool) -> bool {
    password_is_one_time && amr.iter().any(|m| m == "pwd")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_445_600 + h * 3600, 0).unwrap()
    }

    #[test]
    fn a_one_time_password_lasts_24_hours() {
        assert!(!one_time_password_expired(at(0), at(0)));
        assert!(!one_time_password_expired(
            at(0),
            at(24) - Duration::seconds(1)
        ));
        assert!(one_time_password_expired(at(0), at(24)));
        assert!(one_time_password_expired(at(0), at(100)));
    }

    #[test]
    fn only_sessions_opened_with_the_one_time_password_are_restricted() {
        let amr = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(password_change_only(&amr(&["pwd"]), true));
        assert!(password_change_only(&amr(&["pwd", "otp", "mfa"]), true));
        assert!(password_change_only(
            &amr(&["pwd", "hwk", "user", "mfa"]),
            true
        ));
        assert!(!password_change_only(&amr(&["hwk", "user", "mfa"]), true));
        assert!(!password_change_only(&amr(&["pwd"]), false));
    }
}

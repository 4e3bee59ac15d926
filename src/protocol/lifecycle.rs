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

/// A privileged client's gate at the token endpoint (code redemption and
/// every refresh): the activation of `role` that admits this issuance among
/// the user's `active` ones (role, activation ID). A grant bound to an
/// activation is admitted only by that very one: once its window is over, a
/// later window does not revive it.
pub fn admitting_activation<'a>(
    role: &str,
    bound: Option<&str>,
    active: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<&'a str> {
    active
        .into_iter()
        .find(|(r, a)| *r == role && bound.is_none_or(|b| b == *a))
        .map(|(_, a)| a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_445_600 + h * 3600, 0).unwrap()
    }

    #[test]
    fn a_privileged_grant_is_admitted_only_by_its_own_activation() {
        let active = [("ops", "q1"), ("billing", "q2"), ("billing", "q3")];
        assert_eq!(admitting_activation("billing", None, active), Some("q2"));
        assert_eq!(
            admitting_activation("billing", Some("q3"), active),
            Some("q3")
        );
        assert_eq!(admitting_activation("billing", Some("q9"), active), None);
        assert_eq!(admitting_activation("billing", Some("q1"), active), None);
        assert_eq!(admitting_activation("hr", None, active), None);
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

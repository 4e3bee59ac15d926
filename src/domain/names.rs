//! Validated names. A value of these types has passed its rules, so code that
//! holds one never re-checks it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a name was refused; the caller turns this into its own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError(pub String);

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check(what: &str, s: &str, max: usize, extra: &[char]) -> Result<String, NameError> {
    // Bounded before any copy: the allowed characters are one byte each.
    if s.len() > max + 256 {
        return Err(NameError(format!(
            "{what} must be at most {max} characters"
        )));
    }
    let s = s.trim().to_lowercase();
    if s.is_empty() {
        return Err(NameError(format!("{what} must not be empty")));
    }
    if s.chars().count() > max {
        return Err(NameError(format!(
            "{what} must be at most {max} characters"
        )));
    }
    let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let all_ok = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(&c));
    if !first_ok || !all_ok {
        let allowed: String = extra.iter().map(|c| format!(" {c}")).collect();
        return Err(NameError(format!(
            "{what} may contain only letters a-z, digits and{allowed}, and must start with a letter or digit"
        )));
    }
    Ok(s)
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal, $extra:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, NameError> {
                check($what, s, $max, $extra).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A sign-in name: case-insensitive (stored lower-case), 1–64 characters.
    Username, "username", 64, &['.', '_', '-', '@']
);
name_type!(
    /// A group name such as `admins`.
    GroupName, "group name", 64, &['.', '_', '-']
);
name_type!(
    /// A role name as it appears in the `roles` claim, e.g. `billing:admin`.
    RoleName, "role name", 64, &['.', '_', '-', ':']
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_case_insensitive_and_trimmed() {
        assert_eq!(Username::parse("  Alice ").unwrap().as_str(), "alice");
        assert_eq!(Username::parse("a.b-c_d@x").unwrap().as_str(), "a.b-c_d@x");
    }

    #[test]
    fn bad_usernames_are_refused_with_a_reason() {
        assert!(Username::parse("").unwrap_err().0.contains("empty"));
        assert!(Username::parse("-lead").is_err());
        assert!(Username::parse("has space").is_err());
        assert!(Username::parse("ümlaut").is_err());
        assert!(
            Username::parse(&"a".repeat(65))
                .unwrap_err()
                .0
                .contains("64")
        );
    }

    #[test]
    fn role_names_allow_colons_but_group_names_do_not() {
        assert!(RoleName::parse("billing:admin").is_ok());
        assert!(GroupName::parse("billing:admin").is_err());
    }
}

/// A plausible e-mail address: one `@`, something on each side, no spaces.
/// Whether it is deliverable is for a verification mail to find out.
pub fn validate_email(s: &str) -> Result<String, NameError> {
    let s = s.trim();
    let err = || NameError(format!("{s:?} is not an e-mail address"));
    let (local, domain) = s.split_once('@').ok_or_else(err)?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && s.len() <= 254
        && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(s.to_string()) } else { Err(err()) }
}

#[cfg(test)]
mod email_tests {
    use super::validate_email;

    #[test]
    fn emails() {
        assert_eq!(validate_email(" a@b.example ").unwrap(), "a@b.example");
        for bad in [
            "",
            "a",
            "a@b",
            "@b.example",
            "a@.b",
            "a@b.",
            "a b@c.d",
            "a@b@c.d",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }
}

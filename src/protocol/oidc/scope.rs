//! Scopes: what the server knows, and what a request may ask for.

/// Every scope portcullis understands.
pub const SUPPORTED: &[&str] = &[
    "openid",
    "profile",
    "email",
    "groups",
    "roles",
    "offline_access",
    "pim",
];

/// Splits a space-separated scope string; duplicates are dropped, order kept.
pub fn parse(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split(' ').filter(|p| !p.is_empty()) {
        if !out.iter().any(|x| x == part) {
            out.push(part.to_string());
        }
    }
    out
}

pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

/// Checks that every requested scope is known and allowed for the client.
pub fn check_allowed(requested: &[String], allowed: &[String]) -> Result<(), String> {
    for s in requested {
        if !SUPPORTED.contains(&s.as_str()) {
            return Err(format!("unknown scope {s}"));
        }
        if !allowed.contains(s) {
            return Err(format!("scope {s} is not allowed for this client"));
        }
    }
    Ok(())
}

/// A human description for the consent page.
pub fn describe(scope: &str) -> &'static str {
    match scope {
        "openid" => "Confirm who you are",
        "profile" => "Your name and username",
        "email" => "Your e-mail address",
        "groups" => "The groups you belong to",
        "roles" => "Your roles",
        "offline_access" => "Stay connected while you are away (refresh tokens)",
        "pim" => "See your privileged access and request or end elevations for you",
        _ => "Other access",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_splits_and_dedupes() {
        assert_eq!(parse("openid  email openid"), ["openid", "email"]);
        assert!(parse("").is_empty());
    }

    #[test]
    fn only_known_and_allowed_scopes_pass() {
        let allowed = parse("openid email");
        assert!(check_allowed(&parse("openid email"), &allowed).is_ok());
        assert!(
            check_allowed(&parse("openid profile"), &allowed)
                .unwrap_err()
                .contains("profile")
        );
        assert!(
            check_allowed(&parse("openid admin"), &parse("openid admin"))
                .unwrap_err()
                .contains("unknown")
        );
    }
}

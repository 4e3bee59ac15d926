//! Scopes: what the server knows, and what a request may ask for.

/// Every scope portcullis understands.
pub const SUPPORTED: &[&str] = &[
    "openid",
    "profile",
    "email",
    "groups",
    "roles",
    "offline_access",
    PIM_SELF,
    PIM_APPROVE,
    PIM_ADMIN,
];

/// Request, list and end the user's own elevations (`/api/v1/me/*`).
pub const PIM_SELF: &str = "pim";
/// Decide on other people's requests in the user's name.
pub const PIM_APPROVE: &str = "pim:approve";
/// List and revoke everyone's elevations in an administrator's name.
pub const PIM_ADMIN: &str = "pim:admin";

/// Scopes only a client an administrator registered may hold: dynamic
/// registration refuses them.
pub const ADMIN_REGISTERED_ONLY: &[&str] = &[PIM_SELF, PIM_APPROVE, PIM_ADMIN];

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
        PIM_SELF => "See your privileged access and request or end elevations for you",
        PIM_APPROVE => "Approve or deny other people's elevation requests in your name",
        PIM_ADMIN => "See and revoke everyone's elevations in your name (PIM administrators)",
        _ => "Other access",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pim_scope_is_named_on_the_consent_page() {
        for s in ADMIN_REGISTERED_ONLY {
            assert!(SUPPORTED.contains(s));
            assert_ne!(describe(s), describe("unknown"), "{s}");
        }
        assert!(describe(PIM_APPROVE).contains("Approve"));
        assert!(describe(PIM_ADMIN).contains("revoke everyone's"));
    }

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

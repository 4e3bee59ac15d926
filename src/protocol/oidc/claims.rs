//! What goes into ID tokens, access tokens and userinfo responses.

use crate::domain::User;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Authentication context class for a password-only session.
pub const ACR_PASSWORD: &str = "urn:portcullis:acr:pwd";
/// At least two factors.
pub const ACR_MFA: &str = "urn:portcullis:acr:mfa";
/// A phishing-resistant factor (a user-verified passkey).
pub const ACR_PHISHING_RESISTANT: &str = "urn:portcullis:acr:phr";

pub const ACR_VALUES: &[&str] = &[ACR_PASSWORD, ACR_MFA, ACR_PHISHING_RESISTANT];

/// The `acr` a session with these RFC 8176 methods reaches.
pub fn acr_for(amr: &[String]) -> &'static str {
    let has = |m: &str| amr.iter().any(|a| a == m);
    if has("hwk") || has("swk") && has("user") {
        ACR_PHISHING_RESISTANT
    } else if has("mfa") || amr.len() >= 2 {
        ACR_MFA
    } else {
        ACR_PASSWORD
    }
}

/// How strong an authentication context is; 0 for values we do not know.
/// SAML's PasswordProtectedTransport counts as a password.
pub fn acr_rank(acr: &str) -> u8 {
    match acr {
        ACR_PASSWORD
        | "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
        | "urn:oasis:names:tc:SAML:2.0:ac:classes:Password" => 1,
        ACR_MFA => 2,
        ACR_PHISHING_RESISTANT => 3,
        _ => 0,
    }
}

/// Reads a required level as configured: `pwd`, `mfa`, `phr` or a full URN.
pub fn parse_acr_level(s: &str) -> Option<&'static str> {
    match s.trim() {
        "pwd" | ACR_PASSWORD => Some(ACR_PASSWORD),
        "mfa" | ACR_MFA => Some(ACR_MFA),
        "phr" | ACR_PHISHING_RESISTANT => Some(ACR_PHISHING_RESISTANT),
        _ => None,
    }
}

/// The strongest of several required levels.
pub fn strongest<'a>(levels: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    levels.into_iter().max_by_key(|l| acr_rank(l))
}

/// Whether a session with these methods is weaker than every context the
/// request asked for (`acr_values`, RequestedAuthnContext): then the user
/// must sign in again, more strongly. Unknown values ask for nothing.
pub fn needs_step_up(requested: &[String], amr: &[String]) -> bool {
    let wanted = requested
        .iter()
        .map(|r| acr_rank(r))
        .filter(|r| *r > 0)
        .min();
    wanted.is_some_and(|w| acr_rank(acr_for(amr)) < w)
}

/// The public session identifier (`sid`) for a stored session digest: stable
/// per session, and useless for taking the session over.
pub fn sid_for(session_digest: &str) -> String {
    let d = Sha256::digest(format!("portcullis-sid:{session_digest}").as_bytes());
    URL_SAFE_NO_PAD.encode(&d[..16])
}

/// What the user's directory entry says, for the scopes granted.
pub struct Profile<'a> {
    pub user: &'a User,
    pub groups: &'a [String],
    pub roles: &'a [String],
}

/// Claims about the user released by `scope` (besides `sub`).
pub fn user_claims(scope: &[String], p: &Profile<'_>) -> Map<String, Value> {
    let has = |s: &str| scope.iter().any(|x| x == s);
    let mut m = Map::new();
    if has("profile") {
        m.insert("name".into(), json!(p.user.display_name));
        m.insert("preferred_username".into(), json!(p.user.username.as_str()));
        m.insert("updated_at".into(), json!(p.user.updated_at.timestamp()));
    }
    if has("email")
        && let Some(e) = &p.user.email
    {
        m.insert("email".into(), json!(e));
        // Addresses are set by administrators, not verified by mail.
        m.insert("email_verified".into(), json!(false));
    }
    if has("groups") {
        m.insert("groups".into(), json!(p.groups));
    }
    if has("roles") {
        m.insert("roles".into(), json!(p.roles));
    }
    m
}

/// Seconds since the epoch, as JWT numeric dates are.
pub fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

/// Whether a JWT's `typ` header marks an ID token: absent, or `JWT`
/// (compared ignoring case, with or without `application/`). Access tokens
/// (`at+jwt`, RFC 9068) and logout tokens (`logout+jwt`) are signed with the
/// same keys but are not ID tokens: an access token travels to resource
/// servers, so it must not count where an ID token is asked for.
pub fn is_id_token_typ(typ: Option<&str>) -> bool {
    match typ {
        None => true,
        Some(t) => {
            let t = t.to_ascii_lowercase();
            t == "jwt" || t == "application/jwt"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{UserId, UserStatus, Username};

    fn user() -> User {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        User {
            id: UserId::from_stored("u1"),
            username: Username::parse("alice").unwrap(),
            display_name: "Alice A".into(),
            email: Some("alice@example.test".into()),
            manager_id: None,
            status: UserStatus::Active,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn claims_follow_scopes() {
        let u = user();
        let groups = vec!["ops".to_string()];
        let roles = vec!["billing:admin".to_string()];
        let p = Profile {
            user: &u,
            groups: &groups,
            roles: &roles,
        };
        let only_openid = user_claims(&["openid".into()], &p);
        assert!(only_openid.is_empty());
        let all = user_claims(
            &["openid", "profile", "email", "groups", "roles"].map(String::from),
            &p,
        );
        assert_eq!(all["name"], "Alice A");
        assert_eq!(all["preferred_username"], "alice");
        assert_eq!(all["email"], "alice@example.test");
        assert_eq!(all["groups"], json!(["ops"]));
        assert_eq!(all["roles"], json!(["billing:admin"]));
    }

    #[test]
    fn acr_reflects_the_methods() {
        assert_eq!(acr_for(&["pwd".into()]), ACR_PASSWORD);
        assert_eq!(acr_for(&["pwd".into(), "otp".into()]), ACR_MFA);
        assert_eq!(acr_for(&["hwk".into()]), ACR_PHISHING_RESISTANT);
    }

    #[test]
    fn step_up_when_every_requested_context_is_stronger() {
        let pwd = vec!["pwd".to_string()];
        let mfa = vec!["pwd".to_string(), "otp".to_string(), "mfa".to_string()];
        assert!(needs_step_up(&[ACR_MFA.into()], &pwd));
        assert!(!needs_step_up(&[ACR_MFA.into()], &mfa));
        assert!(
            !needs_step_up(&[ACR_PASSWORD.into(), ACR_MFA.into()], &pwd),
            "any listed value will do"
        );
        assert!(needs_step_up(&[ACR_PHISHING_RESISTANT.into()], &mfa));
        assert!(!needs_step_up(&["urn:unknown".into()], &pwd));
        assert!(!needs_step_up(&[], &pwd));
    }

    #[test]
    fn sid_is_stable_and_not_the_digest() {
        assert_eq!(sid_for("abc"), sid_for("abc"));
        assert_ne!(sid_for("abc"), sid_for("abd"));
        assert!(!sid_for("abc").contains("abc"));
    }

    #[test]
    fn only_id_tokens_count_as_id_tokens() {
        for yes in [None, Some("JWT"), Some("jwt"), Some("application/JWT")] {
            assert!(is_id_token_typ(yes), "{yes:?}");
        }
        for no in [
            Some("at+jwt"),
            Some("application/at+jwt"),
            Some("logout+jwt"),
            Some(""),
            Some("JOSE"),
        ] {
            assert!(!is_id_token_typ(no), "{no:?}");
        }
    }
}

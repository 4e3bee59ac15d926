//! Passkey rules that need no ceremony state: authenticator models, the
//! methods a passkey proves, how fresh a check is, and which credential may go.

use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The AAGUID (authenticator model) inside a registration's attestation
/// object: CBOR map → `authData` → bytes 37..53 when attested credential data
/// is present (flag AT, 0x40).
pub fn aaguid_of(attestation_object: &[u8]) -> Option<Uuid> {
    use serde_cbor_2::Value;
    let map: BTreeMap<Value, Value> = serde_cbor_2::from_slice(attestation_object).ok()?;
    let Value::Bytes(auth) = map.get(&Value::Text("authData".into()))? else {
        return None;
    };
    // rpIdHash (32) | flags (1) | signCount (4) | aaguid (16) | ...
    if auth.len() < 53 || auth[32] & 0x40 == 0 {
        return None;
    }
    Uuid::from_slice(&auth[37..53]).ok()
}

/// Whether an authenticator model may register. An empty list allows all;
/// otherwise an authenticator that hides its model is refused.
pub fn aaguid_allowed(allowed: &[Uuid], aaguid: Option<Uuid>) -> bool {
    allowed.is_empty() || aaguid.is_some_and(|a| allowed.contains(&a))
}

/// The RFC 8176 methods a user-verified passkey proves. A credential that can
/// be backed up (synced) lives in software (`swk`); one that cannot is
/// bound to hardware (`hwk`). User verification adds `user`, and possession
/// plus verification is multi-factor.
pub fn passkey_methods(backup_eligible: bool) -> Vec<String> {
    let key = if backup_eligible { "swk" } else { "hwk" };
    vec![key.into(), "user".into(), "mfa".into()]
}

/// Methods that are factors in their own right and get a time stamp.
const FACTORS: [&str; 4] = ["pwd", "otp", "hwk", "swk"];

fn is_factor(method: &str) -> bool {
    FACTORS.contains(&method)
}

/// A session's methods and factor times after `proven` were shown at `now`:
/// the union of old and new methods, `mfa` once two different factors (or a
/// user-verified key) stand behind the session.
pub fn merge_factors(
    amr: &[String],
    factors: &BTreeMap<String, DateTime<Utc>>,
    proven: &[String],
    now: DateTime<Utc>,
) -> (Vec<String>, BTreeMap<String, DateTime<Utc>>) {
    let mut out: Vec<String> = amr.to_vec();
    for m in proven {
        if !out.contains(m) {
            out.push(m.clone());
        }
    }
    let mut times = factors.clone();
    for m in proven.iter().filter(|m| is_factor(m)) {
        times.insert(m.clone(), now);
    }
    let kinds = out.iter().filter(|m| is_factor(m)).count();
    let verified_key = out.iter().any(|m| m == "user");
    if (kinds >= 2 || verified_key) && !out.iter().any(|m| m == "mfa") {
        out.push("mfa".into());
    }
    (out, times)
}

/// The first factor times for a new session.
pub fn initial_factors(amr: &[String], now: DateTime<Utc>) -> BTreeMap<String, DateTime<Utc>> {
    amr.iter()
        .filter(|m| is_factor(m))
        .map(|m| (m.clone(), now))
        .collect()
}

/// Whether any of `methods` was shown within `within` of `now` (a time
/// ahead of `now`, after a clock moved back, proves nothing).
fn shown_within(
    factors: &BTreeMap<String, DateTime<Utc>>,
    methods: &[&str],
    now: DateTime<Utc>,
    within: Duration,
) -> bool {
    methods
        .iter()
        .filter_map(|m| factors.get(*m))
        .any(|t| *t <= now && now - *t <= within)
}

/// Whether the user proved who they are (any factor: password, code or
/// passkey) within `within` of `now`. Changing how one signs in needs it, so
/// a stolen session cannot plant its own passkey or take recovery codes.
pub fn recently_authenticated(
    factors: &BTreeMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
    within: Duration,
) -> bool {
    shown_within(factors, &FACTORS, now, within)
}

/// Whether a user-verified passkey was shown within `within` of `now`.
pub fn fresh_passkey(
    factors: &BTreeMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
    within: Duration,
) -> bool {
    shown_within(factors, &["hwk", "swk"], now, within)
}

/// Whether any factor other than the password was shown within `within`:
/// what a password change accepts instead of the current password.
pub fn fresh_second_factor(
    factors: &BTreeMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
    within: Duration,
) -> bool {
    shown_within(factors, &["otp", "hwk", "swk"], now, within)
}

/// A passkey's display name: trimmed, 1 to 64 characters, no control
/// characters.
pub fn passkey_name(input: &str) -> Result<String, &'static str> {
    let name = input.trim();
    if name.is_empty() {
        return Err("Give the passkey a name, such as \"Work laptop\".");
    }
    if name.chars().count() > 64 {
        return Err("A passkey name can have at most 64 characters.");
    }
    if name.chars().any(char::is_control) {
        return Err("A passkey name cannot contain control characters.");
    }
    Ok(name.to_string())
}

/// A credential may be removed unless it is the last way in: a user without
/// a password needs at least one passkey left.
pub fn may_remove_credential(has_password: bool, credentials_left_after: usize) -> bool {
    has_password || credentials_left_after > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_recent_factor_makes_a_session_recent() {
        let t = |s: i64| DateTime::from_timestamp(1_772_445_600 + s, 0).unwrap();
        let five = Duration::minutes(5);
        let mut f = BTreeMap::new();
        f.insert("pwd".to_string(), t(0));
        assert!(recently_authenticated(&f, t(300), five));
        assert!(!recently_authenticated(&f, t(301), five));
        f.insert("hwk".to_string(), t(600));
        assert!(recently_authenticated(&f, t(700), five));
        // A time in the future (a clock moved back) proves nothing.
        assert!(!recently_authenticated(&f, t(500), Duration::seconds(50)));
        let mut other = BTreeMap::new();
        other.insert("mfa".to_string(), t(0));
        assert!(!recently_authenticated(&other, t(1), five));
    }
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_772_445_600 + s, 0).unwrap()
    }

    fn attestation(flags: u8, aaguid: [u8; 16]) -> Vec<u8> {
        use serde_cbor_2::Value;
        let mut auth = vec![0u8; 32];
        auth.push(flags);
        auth.extend([0, 0, 0, 1]);
        auth.extend(aaguid);
        auth.extend([0, 2, 9, 9]);
        let mut m = BTreeMap::new();
        m.insert(Value::Text("fmt".into()), Value::Text("none".into()));
        m.insert(Value::Text("attStmt".into()), Value::Map(BTreeMap::new()));
        m.insert(Value::Text("authData".into()), Value::Bytes(auth));
        serde_cbor_2::to_vec(&Value::Map(m)).unwrap()
    }

    #[test]
    fn reads_the_aaguid() {
        let id = Uuid::parse_str("ee882879-721c-4913-9775-3dfcce97072a").unwrap();
        assert_eq!(aaguid_of(&attestation(0x45, *id.as_bytes())), Some(id));
        assert_eq!(aaguid_of(&attestation(0x05, *id.as_bytes())), None, "no AT");
        assert_eq!(aaguid_of(b"not cbor"), None);
        assert_eq!(aaguid_of(&[]), None);
    }

    #[test]
    fn allow_list() {
        let a = Uuid::from_u128(1);
        assert!(aaguid_allowed(&[], None));
        assert!(aaguid_allowed(&[a], Some(a)));
        assert!(!aaguid_allowed(&[a], Some(Uuid::from_u128(2))));
        assert!(!aaguid_allowed(&[a], None), "a hidden model is refused");
    }

    #[test]
    fn passkeys_prove_possession_and_verification() {
        assert_eq!(passkey_methods(false), ["hwk", "user", "mfa"]);
        assert_eq!(passkey_methods(true), ["swk", "user", "mfa"]);
    }

    #[test]
    fn merging_a_second_factor_makes_mfa() {
        let amr = vec!["pwd".to_string()];
        let f = initial_factors(&amr, t(0));
        let (amr2, f2) = merge_factors(&amr, &f, &["otp".into()], t(60));
        assert_eq!(amr2, ["pwd", "otp", "mfa"]);
        assert_eq!(f2["pwd"], t(0));
        assert_eq!(f2["otp"], t(60));
        let (amr3, f3) = merge_factors(&amr2, &f2, &passkey_methods(false), t(90));
        assert_eq!(amr3, ["pwd", "otp", "mfa", "hwk", "user"]);
        assert_eq!(f3["hwk"], t(90));
        assert!(!f3.contains_key("user") && !f3.contains_key("mfa"));
    }

    #[test]
    fn freshness_has_an_exact_edge() {
        let f = initial_factors(&passkey_methods(true), t(0));
        let five = Duration::minutes(5);
        assert!(fresh_passkey(&f, t(300), five));
        assert!(!fresh_passkey(&f, t(301), five));
        assert!(
            !fresh_passkey(&f, t(-1), five),
            "a future stamp is not fresh"
        );
        let pwd = initial_factors(&["pwd".into()], t(0));
        assert!(!fresh_passkey(&pwd, t(1), five));
        assert!(!fresh_second_factor(&pwd, t(1), five));
        let otp = initial_factors(&["pwd".into(), "otp".into()], t(0));
        assert!(fresh_second_factor(&otp, t(1), five));
        assert!(!fresh_passkey(&otp, t(1), five));
    }

    #[test]
    fn names() {
        assert_eq!(passkey_name("  Laptop ").unwrap(), "Laptop");
        assert!(passkey_name("   ").is_err());
        assert!(passkey_name(&"x".repeat(65)).is_err());
        assert!(passkey_name("a\u{7}b").is_err());
    }

    #[test]
    fn the_last_way_in_stays() {
        assert!(may_remove_credential(true, 0));
        assert!(may_remove_credential(false, 1));
        assert!(!may_remove_credential(false, 0));
    }
}

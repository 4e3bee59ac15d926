//! Signing webhook deliveries and spacing out retries.
//!
//! The timestamp is signed with the body so a receiver can refuse replays of
//! old deliveries; the signature is hex so it fits in a header.

use chrono::Duration;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Deliveries are attempted at most this often before being given up.
pub const MAX_ATTEMPTS: u32 = 8;

/// The event names: requested, approved, denied, activated, ended, revoked, expired, cancelled.
pub const EVENTS: [&str; 8] = [
    "requested",
    "approved",
    "denied",
    "activated",
    "ended",
    "revoked",
    "expired",
    "cancelled",
];

const PREFIX: &str = "sha256=";

/// HMAC-SHA256 keyed with `secret` over the signed message "{timestamp}.{body}".
fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Option<HmacSha256> {
    // HMAC takes keys of any length, so this never fails in practice.
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes hex (either case); None for odd lengths or any other character.
fn from_hex(text: &str) -> Option<Vec<u8>> {
    let pairs = text.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Header value for the body signature: "sha256=" + lowercase hex HMAC-SHA256(secret, "{timestamp}.{body}").
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    match mac(secret, timestamp, body) {
        Some(mac) => format!("{PREFIX}{}", to_hex(&mac.finalize().into_bytes())),
        None => String::new(),
    }
}

/// Constant-time check of a header value against the expected signature (receivers and tests use it).
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix(PREFIX) else {
        return false;
    };
    let (Some(given), Some(mac)) = (from_hex(hex), mac(secret, timestamp, body)) else {
        return false;
    };
    // verify_slice compares in constant time and rejects a wrong length.
    mac.verify_slice(&given).is_ok()
}

/// Delay before attempt number `attempt` (1-based, the first retry is attempt 2): 10s, 20s, 40s, ... capped at 1h. attempt <= 1 → 0.
pub fn backoff(attempt: u32) -> Duration {
    const FIRST: i64 = 10;
    const CAP: i64 = 3600;
    if attempt <= 1 {
        return Duration::zero();
    }
    // 10s doubled (attempt - 2) times; from the ninth doubling on the cap applies anyway.
    let doublings = (attempt - 2).min(9);
    Duration::seconds((FIRST << doublings).min(CAP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_core_matches_rfc_4231_case_2() {
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            to_hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signature_covers_timestamp_and_body() {
        let sig = signature(b"Jefe", 1_774_873_800, b"{\"event\":\"approved\"}");
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"1774873800.{\"event\":\"approved\"}");
        let want = format!("sha256={}", to_hex(&mac.finalize().into_bytes()));
        assert_eq!(sig, want);
        assert_eq!(sig.len(), 7 + 64);
        assert!(
            sig[7..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_ne!(
            sig,
            signature(b"Jefe", 1_774_873_801, b"{\"event\":\"approved\"}")
        );
        assert_ne!(
            sig,
            signature(b"jefe", 1_774_873_800, b"{\"event\":\"approved\"}")
        );
        assert!(signature(b"", 0, b"").starts_with("sha256="));
    }

    #[test]
    fn verify_accepts_only_the_right_signature() {
        let (secret, ts, body) = (b"s3cret".as_slice(), 1_774_873_800, b"body".as_slice());
        let sig = signature(secret, ts, body);
        assert!(verify(secret, ts, body, &sig));
        assert!(verify(
            secret,
            ts,
            body,
            &sig.to_uppercase().replace("SHA256=", "sha256=")
        ));
        assert!(!verify(secret, ts + 1, body, &sig));
        assert!(!verify(secret, ts, b"Body", &sig));
        assert!(!verify(b"other", ts, body, &sig));
        assert!(!verify(secret, ts, body, &sig[7..]));
        assert!(!verify(secret, ts, body, &sig[..sig.len() - 2]));
        assert!(!verify(secret, ts, body, &format!("{sig}00")));
        assert!(!verify(secret, ts, body, "sha256=zz"));
        let signed_digit = format!("sha256=+{}", &sig[8..]);
        assert!(!verify(secret, ts, body, &signed_digit));
        assert_eq!(from_hex("0aFf"), Some(vec![0x0a, 0xff]));
        assert!(!verify(secret, ts, body, "sha256=é1"));
        assert!(!verify(secret, ts, body, ""));
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let secs: Vec<i64> = (0..=12).map(|a| backoff(a).num_seconds()).collect();
        let want = [0, 0, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600];
        assert_eq!(secs, want);
        assert_eq!(backoff(u32::MAX), Duration::hours(1));
        let total: i64 = (2..=MAX_ATTEMPTS).map(|a| backoff(a).num_seconds()).sum();
        assert_eq!(total, 10 + 20 + 40 + 80 + 160 + 320 + 640);
    }

    #[test]
    fn event_names_are_distinct_snake_words() {
        let mut names = EVENTS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 8);
        assert!(
            EVENTS
                .iter()
                .all(|e| e.bytes().all(|b| b.is_ascii_lowercase()))
        );
    }
}

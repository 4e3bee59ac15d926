//! Second factors: TOTP (RFC 6238) and recovery codes.

use rand::Rng;
use totp_rs::{Algorithm, Builder, Totp};

/// Steps of 30 s either side of now that a code may come from.
const SKEW: u16 = 1;

fn totp(secret: &[u8], account: &str) -> Result<Totp, String> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_skew(SKEW)
        .with_secret(secret.to_vec())
        .with_issuer(Some("portcullis"))
        .with_account_name(account)
        .build()
        .map_err(|e| format!("TOTP: {e}"))
}

/// A new random TOTP secret (160 bits, as RFC 4226 recommends).
pub fn new_totp_secret() -> Vec<u8> {
    totp_rs::Secret::generate().as_bytes().to_vec()
}

/// What an authenticator app needs: the secret as text, the otpauth URL and
/// the QR code of it as a base64 PNG.
pub struct TotpEnrollment {
    pub secret_base32: String,
    pub url: String,
    pub qr_png_base64: String,
}

pub fn enrollment(secret: &[u8], account: &str) -> Result<TotpEnrollment, String> {
    let t = totp(secret, account)?;
    Ok(TotpEnrollment {
        secret_base32: totp_rs::Secret::from(secret.to_vec()).to_base32(),
        url: t.to_url().map_err(|e| e.to_string())?,
        qr_png_base64: t.to_qr_base64().map_err(|e| e.to_string())?,
    })
}

/// The time step a valid `code` belongs to, if it is within the window and
/// later than `last_step` (a code is never accepted twice).
pub fn check_totp(secret: &[u8], code: &str, unix_time: u64, last_step: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let step = totp(secret, "x").ok()?.check(&code, unix_time)? as i64;
    (step > last_step).then_some(step)
}

/// The code an authenticator shows at `unix_time` (for tests and tools).
pub fn totp_code(secret: &[u8], unix_time: u64) -> Option<String> {
    Some(totp(secret, "x").ok()?.generate(unix_time).to_string())
}

const RECOVERY_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// Ten recovery codes like `k7mq-2xwd-9tbr`: 60 bits each, no look-alikes.
pub fn new_recovery_codes() -> Vec<String> {
    let mut rng = rand::rngs::OsRng;
    (0..10)
        .map(|_| {
            let chars: Vec<char> = (0..12)
                .map(|_| RECOVERY_ALPHABET[rng.gen_range(0..RECOVERY_ALPHABET.len())] as char)
                .collect();
            format!(
                "{}-{}-{}",
                chars[..4].iter().collect::<String>(),
                chars[4..8].iter().collect::<String>(),
                chars[8..].iter().collect::<String>()
            )
        })
        .collect()
}

/// Lower-cases and drops spaces and dashes, so `K7MQ 2XWD 9TBR` matches.
pub fn normalise_recovery_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_772_445_600;

    #[test]
    fn codes_in_the_window_are_accepted_once() {
        let s = new_totp_secret();
        let now_code = totp_code(&s, NOW).unwrap();
        let step = check_totp(&s, &now_code, NOW, 0).unwrap();
        assert_eq!(step, (NOW / 30) as i64);
        assert_eq!(check_totp(&s, &now_code, NOW, step), None, "never twice");
        let prev = totp_code(&s, NOW - 30).unwrap();
        let next = totp_code(&s, NOW + 30).unwrap();
        assert!(check_totp(&s, &prev, NOW, 0).is_some(), "one step back");
        assert!(check_totp(&s, &next, NOW, 0).is_some(), "one step ahead");
        let old = totp_code(&s, NOW - 90).unwrap();
        if old != now_code && old != prev && old != next {
            assert_eq!(check_totp(&s, &old, NOW, 0), None, "outside the window");
        }
        assert_eq!(check_totp(&s, "12345", NOW, 0), None);
        assert_eq!(check_totp(&s, "abcdef", NOW, 0), None);
    }

    #[test]
    fn an_older_step_cannot_follow_a_newer_one() {
        let s = new_totp_secret();
        let prev = totp_code(&s, NOW - 30).unwrap();
        assert_eq!(check_totp(&s, &prev, NOW, (NOW / 30) as i64), None);
    }

    #[test]
    fn enrollment_describes_the_secret() {
        let s = new_totp_secret();
        let e = enrollment(&s, "alice").unwrap();
        assert!(
            e.url.starts_with("otpauth://totp/portcullis:alice?"),
            "{}",
            e.url
        );
        assert!(e.url.contains(&format!("secret={}", e.secret_base32)));
        assert!(!e.qr_png_base64.is_empty());
    }

    #[test]
    fn recovery_codes() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 14 && c.matches('-').count() == 2)
        );
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        assert_eq!(normalise_recovery_code(" K7MQ-2xwd 9TBR "), "k7mq2xwd9tbr");
    }
}

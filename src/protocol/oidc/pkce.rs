//! RFC 7636 Proof Key for Code Exchange. Only S256: `plain` would let anyone
//! who sees the authorization request redeem the code.

use crate::crypto::constant_time_eq;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

fn is_unreserved(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Checks a `code_challenge` / `code_challenge_method` pair from an
/// authorization request.
pub fn check_challenge(challenge: &str, method: Option<&str>) -> Result<(), &'static str> {
    match method {
        Some("S256") => {}
        Some("plain") | None => {
            return Err("code_challenge_method must be S256; plain is not accepted");
        }
        Some(_) => return Err("code_challenge_method must be S256"),
    }
    // A base64url SHA-256 digest is exactly 43 characters.
    if challenge.len() != 43 || !is_unreserved(challenge) {
        return Err("code_challenge must be the base64url SHA-256 of the verifier (43 characters)");
    }
    Ok(())
}

/// True when `verifier` hashes to `challenge` (S256).
pub fn verify(challenge: &str, verifier: &str) -> bool {
    if !(43..=128).contains(&verifier.len()) || !is_unreserved(verifier) {
        return false;
    }
    let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    constant_time_eq(digest.as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc_7636_example_verifies() {
        assert!(check_challenge(CHALLENGE, Some("S256")).is_ok());
        assert!(verify(CHALLENGE, VERIFIER));
    }

    #[test]
    fn wrong_verifier_fails() {
        assert!(!verify(CHALLENGE, &VERIFIER.replace('d', "e")));
        assert!(!verify(CHALLENGE, "short"));
        assert!(!verify(CHALLENGE, &"a".repeat(129)));
        assert!(!verify(CHALLENGE, &format!("{}!", &VERIFIER[..43])));
    }

    #[test]
    fn plain_and_missing_methods_are_refused() {
        assert!(
            check_challenge(CHALLENGE, Some("plain"))
                .unwrap_err()
                .contains("plain")
        );
        assert!(check_challenge(CHALLENGE, None).is_err());
        assert!(check_challenge(CHALLENGE, Some("S512")).is_err());
        assert!(check_challenge("tooshort", Some("S256")).is_err());
    }
}

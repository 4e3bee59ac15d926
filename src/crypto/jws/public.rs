//! Public keys from JWKs, parsed by OpenSSL, and signature checks.

use super::{JwsError, MAX_RSA_BITS, MIN_RSA_BITS, key_err, p256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::bn::BigNum;
use openssl::ec::EcKey;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey};
use openssl::rsa::Rsa;
use openssl::sign::Verifier;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A public JWK with its key parsed once by OpenSSL. A JWK that does not
/// parse is kept with its error, reported only when a token picks it.
#[derive(Clone)]
pub struct VerifyingKey {
    pub(super) jwk: Value,
    pub(super) key: Result<Public, JwsError>,
}

#[derive(Clone)]
pub enum Public {
    Rsa(PKey<openssl::pkey::Public>),
    Es(EcKey<openssl::pkey::Public>),
    Ed(PKey<openssl::pkey::Public>),
}

impl VerifyingKey {
    pub fn parse(jwk: Value) -> Self {
        let key = parse_public(&jwk);
        VerifyingKey { jwk, key }
    }
}

pub(super) fn parse_public(jwk: &Value) -> Result<Public, JwsError> {
    match jwk.get("kty").and_then(Value::as_str) {
        Some("RSA") => {
            let n = BigNum::from_slice(&jwk_bytes(jwk, "n")?).map_err(key_err)?;
            let e = BigNum::from_slice(&jwk_bytes(jwk, "e")?).map_err(key_err)?;
            let bits = n.num_bits() as usize;
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(JwsError::Key(format!(
                    "RSA modulus has {bits} bits, {MIN_RSA_BITS} to {MAX_RSA_BITS} accepted"
                )));
            }
            // An odd exponent of at most 33 bits, as RSA verifiers commonly require.
            if e.num_bits() > 33 || !e.is_bit_set(0) || e.num_bits() < 2 {
                return Err(JwsError::Key("RSA exponent out of range".into()));
            }
            let rsa = Rsa::from_public_components(n, e).map_err(key_err)?;
            Ok(Public::Rsa(PKey::from_rsa(rsa).map_err(key_err)?))
        }
        Some("EC") => {
            if jwk.get("crv").and_then(Value::as_str) != Some("P-256") {
                return Err(JwsError::Key("only the P-256 curve is supported".into()));
            }
            let x = BigNum::from_slice(&jwk_fixed::<32>(jwk, "x")?).map_err(key_err)?;
            let y = BigNum::from_slice(&jwk_fixed::<32>(jwk, "y")?).map_err(key_err)?;
            // OpenSSL runs its full key check here (EC_KEY_check_key): on the
            // curve, not the identity, of the group's order.
            let key = EcKey::from_public_key_affine_coordinates(p256(), &x, &y)
                .map_err(|_| JwsError::Key("the EC point is not on P-256".into()))?;
            Ok(Public::Es(key))
        }
        Some("OKP") => {
            if jwk.get("crv").and_then(Value::as_str) != Some("Ed25519") {
                return Err(JwsError::Key("only the Ed25519 curve is supported".into()));
            }
            let x: [u8; 32] = jwk_fixed(jwk, "x")?;
            if ed25519_small_order(&x) {
                return Err(JwsError::Key("the Ed25519 key has small order".into()));
            }
            let key = PKey::public_key_from_raw_bytes(&x, Id::ED25519).map_err(key_err)?;
            Ok(Public::Ed(key))
        }
        _ => Err(JwsError::Key("unsupported or missing kty".into())),
    }
}

/// The y-coordinates (little-endian, sign bit cleared) of the eight points of
/// small order on edwards25519: the identity (y=1), order 2 (y=-1), order 4
/// (y=0) and the two of order 8; plus y=0 and y=1 written non-canonically
/// (+p). Such a key or `R` lets a signature verify for many messages, so a
/// strict verifier refuses them as RFC 8032 leaves open.
const ED25519_SMALL_ORDER_Y: [[u8; 32]; 7] = {
    let mut ys = [[0u8; 32]; 7];
    ys[0][0] = 1;
    // p - 1, p and p + 1 (p = 2^255 - 19).
    let mut i = 1;
    while i < 4 {
        let mut y = [0xffu8; 32];
        y[0] = 0xeb + i as u8;
        y[31] = 0x7f;
        ys[i] = y;
        i += 1;
    }
    // ys[4] stays 0 (order 4).
    ys[5] = [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ];
    ys[6] = [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ];
    ys
};

pub(super) fn ed25519_small_order(point: &[u8]) -> bool {
    let Ok(mut y) = <[u8; 32]>::try_from(point) else {
        return true;
    };
    y[31] &= 0x7f;
    ED25519_SMALL_ORDER_Y.contains(&y)
}

fn jwk_bytes(jwk: &Value, name: &str) -> Result<Vec<u8>, JwsError> {
    let s = jwk
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| JwsError::Key(format!("JWK lacks {name:?}")))?;
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| JwsError::Key(format!("JWK member {name:?} is not base64url")))
}

fn jwk_fixed<const N: usize>(jwk: &Value, name: &str) -> Result<[u8; N], JwsError> {
    jwk_bytes(jwk, name)?
        .try_into()
        .map_err(|_| JwsError::Key(format!("JWK member {name:?} must be {N} bytes")))
}

/// The fitting check chose the key by the token's alg, so the key's kind
/// fixes the algorithm here.
pub(super) fn verify_signature(key: &Public, msg: &[u8], sig: &[u8]) -> Result<(), JwsError> {
    let valid = match key {
        Public::Rsa(k) => {
            // Exactly the modulus size: no leading-zero games.
            if sig.len() != k.size() {
                return Err(JwsError::BadSignature);
            }
            Verifier::new(MessageDigest::sha256(), k)
                .and_then(|mut v| v.verify_oneshot(sig, msg))
                .unwrap_or(false)
        }
        Public::Es(k) => {
            if sig.len() != 64 {
                return Err(JwsError::BadSignature);
            }
            // OpenSSL refuses r or s outside [1, n-1].
            let (Ok(r), Ok(s)) = (
                BigNum::from_slice(&sig[..32]),
                BigNum::from_slice(&sig[32..]),
            ) else {
                return Err(JwsError::BadSignature);
            };
            EcdsaSig::from_private_components(r, s)
                .and_then(|sig| sig.verify(&Sha256::digest(msg), k))
                .unwrap_or(false)
        }
        Public::Ed(k) => {
            // Strict: a small-order R is refused as a small-order key is;
            // OpenSSL itself refuses a non-canonical s.
            if sig.len() != 64 || ed25519_small_order(&sig[..32]) {
                return Err(JwsError::BadSignature);
            }
            Verifier::new_without_digest(k)
                .and_then(|mut v| v.verify_oneshot(sig, msg))
                .unwrap_or(false)
        }
    };
    if valid {
        Ok(())
    } else {
        Err(JwsError::BadSignature)
    }
}

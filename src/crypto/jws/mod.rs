//! Compact JWS (RFC 7515) signing and verification for RS256, ES256 and
//! EdDSA (Ed25519), with JWKs (RFC 7517/7518/8037) and RFC 7638 key ids.
//!
//! Verification trusts only the caller's key set and allow-list: the token's
//! header chooses among those keys but can never widen them (no `none`, no
//! HMAC, no keys embedded in the header).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::ec::EcGroup;
use openssl::nid::Nid;
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};
use std::sync::OnceLock;

mod public;
mod signing;

pub use public::VerifyingKey;
use public::{Public, parse_public, verify_signature};
pub use signing::SigningKey;
/// Tokens longer than this are refused before any decoding, to bound work.
const MAX_TOKEN_LEN: usize = 64 * 1024;
/// Smallest RSA modulus accepted (RFC 7518 §3.3).
const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted for verification, to bound the work.
const MAX_RSA_BITS: usize = 4096;
const RSA_GENERATE_BITS: u32 = 2048;

/// The algorithms we sign and verify with: RS256, ES256, EdDSA (serde and
/// `as_str`/`parse` use those exact names). One type for the whole crate: the
/// domain's, since stored keys and clients record it too.
pub use crate::domain::SigningAlg as Alg;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("unsupported or disallowed algorithm: {0}")]
    UnsupportedAlg(String),
    #[error("no matching key")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("key error: {0}")]
    Key(String),
}

fn key_err(e: impl std::fmt::Display) -> JwsError {
    JwsError::Key(e.to_string())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict: no padding, no whitespace, no non-canonical trailing bits.
fn unb64(s: &str, what: &str) -> Result<Vec<u8>, JwsError> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| JwsError::Malformed(format!("{what} is not base64url")))
}

/// The P-256 group, built once: every EC operation needs it.
fn p256() -> &'static EcGroup {
    static GROUP: OnceLock<EcGroup> = OnceLock::new();
    GROUP.get_or_init(|| {
        EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("OpenSSL knows P-256")
    })
}

fn json_str(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in
/// lexicographic order without whitespace, base64url without padding.
/// Supports RSA, EC and OKP (RFC 8037 §2) keys.
pub fn jwk_thumbprint(jwk: &Value) -> Result<String, JwsError> {
    let member = |name: &str| -> Result<String, JwsError> {
        match jwk.get(name) {
            Some(Value::String(s)) => Ok(json_str(s)),
            _ => Err(JwsError::Key(format!("JWK lacks string member {name:?}"))),
        }
    };
    let canonical = match jwk.get("kty").and_then(Value::as_str) {
        Some("RSA") => format!(
            "{{\"e\":{},\"kty\":\"RSA\",\"n\":{}}}",
            member("e")?,
            member("n")?
        ),
        Some("EC") => format!(
            "{{\"crv\":{},\"kty\":\"EC\",\"x\":{},\"y\":{}}}",
            member("crv")?,
            member("x")?,
            member("y")?
        ),
        Some("OKP") => format!(
            "{{\"crv\":{},\"kty\":\"OKP\",\"x\":{}}}",
            member("crv")?,
            member("x")?
        ),
        _ => return Err(JwsError::Key("unsupported or missing kty".into())),
    };
    Ok(b64(&Sha256::digest(canonical.as_bytes())))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

/// Only the members we act on. Derived Deserialize refuses a repeated
/// `alg`/`kid`/`typ`, so no two parsers can read a different value.
#[derive(serde::Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<Value>,
}

/// The three decoded parts of a compact JWS.
struct Parts<'a> {
    header: Header,
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

fn split(token: &str) -> Result<Parts<'_>, JwsError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwsError::Malformed("token too long".into()));
    }
    let mut it = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(JwsError::Malformed("expected three segments".into()));
    };
    if h.is_empty() || p.is_empty() || s.is_empty() {
        return Err(JwsError::Malformed("empty segment".into()));
    }
    let raw: RawHeader = serde_json::from_slice(&unb64(h, "header")?)
        .map_err(|_| JwsError::Malformed("header is not a valid JSON object".into()))?;
    // We understand no extensions, so any `crit` must be refused (RFC 7515 §4.1.11).
    if raw.crit.is_some() {
        return Err(JwsError::Malformed("unsupported crit header".into()));
    }
    Ok(Parts {
        header: Header {
            alg: raw.alg,
            kid: raw.kid,
            typ: raw.typ,
        },
        signing_input: &token[..h.len() + 1 + p.len()],
        payload: unb64(p, "payload")?,
        signature: unb64(s, "signature")?,
    })
}

/// Decodes the protected header without verifying anything.
pub fn decode_header(token: &str) -> Result<Header, JwsError> {
    split(token).map(|p| p.header)
}

/// Decodes the claims WITHOUT verifying the signature: only for choosing
/// which keys to verify with (e.g. a client assertion's `sub`). Never trust them.
pub fn decode_unverified_claims(token: &str) -> Result<Value, JwsError> {
    parse_claims(&split(token)?.payload)
}

fn parse_claims(payload: &[u8]) -> Result<Value, JwsError> {
    match serde_json::from_slice(payload) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(JwsError::Malformed("payload is not a JSON object".into())),
    }
}

/// Verifies `token` against a JWK Set's keys (`jwks` = the array under "keys", as JSON values)
/// and returns the claims. Refuses: alg "none", any HS*, any alg not in `allowed`, a kid that is
/// not in the set, a key whose kty/crv does not fit the alg, a JWK whose own "alg" member differs,
/// a JWK with "use" other than "sig", malformed base64/JSON, extra segments, and bad signatures.
/// When the header has no kid, try the keys that fit the alg.
pub fn verify(token: &str, jwks: &[Value], allowed: &[Alg]) -> Result<Value, JwsError> {
    verify_with(token, jwks, allowed)
}

/// A key a token may name: its JWK, and its public key (parsed now or before).
pub trait Key {
    fn jwk(&self) -> &Value;
    #[doc(hidden)]
    fn public(&self) -> Result<Public, JwsError>;
}

impl Key for Value {
    fn jwk(&self) -> &Value {
        self
    }
    fn public(&self) -> Result<Public, JwsError> {
        parse_public(self)
    }
}

impl Key for VerifyingKey {
    fn jwk(&self) -> &Value {
        &self.jwk
    }
    fn public(&self) -> Result<Public, JwsError> {
        self.key.clone()
    }
}

impl<K: Key> Key for &K {
    fn jwk(&self) -> &Value {
        (*self).jwk()
    }
    fn public(&self) -> Result<Public, JwsError> {
        (*self).public()
    }
}

/// As [`verify`], with keys that may be parsed beforehand (our own key ring).
pub fn verify_with<K: Key>(token: &str, keys: &[K], allowed: &[Alg]) -> Result<Value, JwsError> {
    let parts = split(token)?;
    let alg = Alg::parse(&parts.header.alg)
        .filter(|a| allowed.contains(a))
        .ok_or_else(|| JwsError::UnsupportedAlg(truncate(&parts.header.alg)))?;

    let fitting: Vec<&K> = match &parts.header.kid {
        Some(kid) => {
            let named: Vec<&K> = keys
                .iter()
                .filter(|k| k.jwk().get("kid").and_then(Value::as_str) == Some(kid))
                .collect();
            if named.is_empty() {
                return Err(JwsError::UnknownKey);
            }
            let fit: Vec<&K> = named.into_iter().filter(|k| fits(k.jwk(), alg)).collect();
            if fit.is_empty() {
                return Err(JwsError::Key(format!(
                    "key {} does not fit {}",
                    truncate(kid),
                    alg.as_str()
                )));
            }
            fit
        }
        None => keys.iter().filter(|k| fits(k.jwk(), alg)).collect(),
    };
    if fitting.is_empty() {
        return Err(JwsError::UnknownKey);
    }

    let mut failure = None;
    for k in fitting {
        let checked = k.public().and_then(|key| {
            verify_signature(&key, parts.signing_input.as_bytes(), &parts.signature)
        });
        match checked {
            Ok(()) => {
                failure = None;
                break;
            }
            // A bad signature outranks a broken key in the error we report.
            Err(e) if failure != Some(JwsError::BadSignature) => failure = Some(e),
            Err(_) => {}
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }

    parse_claims(&parts.payload)
}

/// Keeps attacker-chosen strings in error messages short.
fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Whether a JWK may verify `alg`: right kty/crv, its own `alg` (if any)
/// equal, `use` (if any) "sig", `key_ops` (if any) including "verify".
fn fits(jwk: &Value, alg: Alg) -> bool {
    let s = |name: &str| jwk.get(name).map(Value::as_str);
    let (kty, crv) = match alg {
        Alg::RS256 => ("RSA", None),
        Alg::ES256 => ("EC", Some("P-256")),
        Alg::EdDSA => ("OKP", Some("Ed25519")),
    };
    if s("kty") != Some(Some(kty)) {
        return false;
    }
    if let Some(crv) = crv
        && s("crv") != Some(Some(crv))
    {
        return false;
    }
    match s("alg") {
        None => {}
        Some(Some(a)) if a == alg.as_str() => {}
        _ => return false,
    }
    if !matches!(s("use"), None | Some(Some("sig"))) {
        return false;
    }
    match jwk.get("key_ops") {
        None => true,
        Some(Value::Array(ops)) => ops.iter().any(|o| o.as_str() == Some("verify")),
        Some(_) => false,
    }
}

/// OIDC at_hash / c_hash: left half of the hash of the ASCII token, base64url without padding.
///
/// RS256 and ES256 use SHA-256 (OIDC Core §3.1.3.6). "EdDSA" names no hash
/// and no spec text fixes one; for Ed25519 we use SHA-512 (its internal hash,
/// RFC 8032), so the half is 32 bytes, 43 characters. That is what the
/// `openidconnect` crate 4.x does (`CoreJsonWebKey::hash_bytes`: EdDsa with
/// crv Ed25519 → Sha512) and what the OpenID Connect working group agreed, so
/// relying parties built on it accept ours.
pub fn left_half_hash(alg: Alg, token: &str) -> String {
    match alg {
        Alg::RS256 | Alg::ES256 => b64(&Sha256::digest(token.as_bytes())[..16]),
        Alg::EdDSA => b64(&Sha512::digest(token.as_bytes())[..32]),
    }
}

#[cfg(test)]
mod tests;

//! Compact JWS (RFC 7515) signing and verification for RS256, ES256 and
//! EdDSA (Ed25519), with JWKs (RFC 7517/7518/8037) and RFC 7638 key ids.
//!
//! Verification trusts only the caller's key set and allow-list: the token's
//! header chooses among those keys but can never widen them (no `none`, no
//! HMAC, no keys embedded in the header).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::rngs::OsRng;
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};

/// Tokens longer than this are refused before any decoding, to bound work.
const MAX_TOKEN_LEN: usize = 64 * 1024;
/// Smallest RSA modulus accepted for verification (RFC 7518 §3.3).
const MIN_RSA_BITS: usize = 2048;
const RSA_GENERATE_BITS: usize = 2048;

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

#[derive(Clone)]
enum Private {
    Rsa(rsa::pkcs1v15::SigningKey<Sha256>),
    Es(p256::ecdsa::SigningKey),
    Ed(ed25519_dalek::SigningKey),
}

/// A private signing key with its algorithm and RFC 7638 key id.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    alg: Alg,
    key: Private,
    /// Public JWK without `kid`/`use`/`alg`, computed once.
    public: Value,
}

impl std::fmt::Debug for SigningKey {
    // Never print private key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh RSA-2048, P-256 or Ed25519 key from the OS RNG.
    pub fn generate(alg: Alg) -> Result<Self, JwsError> {
        let key = match alg {
            Alg::RS256 => Private::Rsa(rsa::pkcs1v15::SigningKey::new(
                rsa::RsaPrivateKey::new(&mut OsRng, RSA_GENERATE_BITS).map_err(key_err)?,
            )),
            Alg::ES256 => Private::Es(p256::ecdsa::SigningKey::random(&mut OsRng)),
            Alg::EdDSA => Private::Ed(ed25519_dalek::SigningKey::generate(&mut OsRng)),
        };
        Self::from_private(alg, key)
    }

    pub fn from_pkcs8_der(alg: Alg, der: &[u8]) -> Result<Self, JwsError> {
        let key = match alg {
            Alg::RS256 => {
                use rsa::pkcs8::DecodePrivateKey;
                use rsa::traits::PublicKeyParts;
                let k = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(key_err)?;
                if k.n().bits() < MIN_RSA_BITS {
                    return Err(JwsError::Key(format!(
                        "RSA key has {} bits, at least {MIN_RSA_BITS} required",
                        k.n().bits()
                    )));
                }
                Private::Rsa(rsa::pkcs1v15::SigningKey::new(k))
            }
            Alg::ES256 => {
                use p256::pkcs8::DecodePrivateKey;
                Private::Es(p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(key_err)?)
            }
            Alg::EdDSA => {
                use ed25519_dalek::pkcs8::DecodePrivateKey;
                Private::Ed(ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(key_err)?)
            }
        };
        Self::from_private(alg, key)
    }

    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, JwsError> {
        let doc = match &self.key {
            Private::Rsa(k) => rsa::pkcs8::EncodePrivateKey::to_pkcs8_der(k.as_ref()),
            Private::Es(k) => p256::pkcs8::EncodePrivateKey::to_pkcs8_der(k),
            Private::Ed(k) => ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(k),
        }
        .map_err(key_err)?;
        Ok(doc.as_bytes().to_vec())
    }

    fn from_private(alg: Alg, key: Private) -> Result<Self, JwsError> {
        let public = match &key {
            Private::Rsa(k) => {
                use rsa::traits::PublicKeyParts;
                let k: &rsa::RsaPrivateKey = k.as_ref();
                serde_json::json!({
                    "kty": "RSA",
                    "n": b64(&k.n().to_bytes_be()),
                    "e": b64(&k.e().to_bytes_be()),
                })
            }
            Private::Es(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                let (Some(x), Some(y)) = (p.x(), p.y()) else {
                    return Err(JwsError::Key(
                        "P-256 public key is not a finite point".into(),
                    ));
                };
                serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)})
            }
            Private::Ed(k) => serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64(k.verifying_key().as_bytes()),
            }),
        };
        let kid = jwk_thumbprint(&public)?;
        Ok(SigningKey {
            kid,
            alg,
            key,
            public,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The public half as a JWK for the JWKS endpoint.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.public.clone();
        if let Value::Object(m) = &mut jwk {
            m.insert("kid".into(), Value::String(self.kid.clone()));
            m.insert("use".into(), Value::String("sig".into()));
            m.insert("alg".into(), Value::String(self.alg.as_str().into()));
        }
        jwk
    }

    /// Signs `claims` (a JSON object) as a compact JWS with the protected
    /// header `{"alg","kid","typ"}` in that order.
    pub fn sign(&self, typ: &str, claims: &Value) -> Result<String, JwsError> {
        if !claims.is_object() {
            return Err(JwsError::Malformed("claims must be a JSON object".into()));
        }
        // Written by hand so the member order does not depend on serde_json features.
        let header = format!(
            "{{\"alg\":{},\"kid\":{},\"typ\":{}}}",
            json_str(self.alg.as_str()),
            json_str(&self.kid),
            json_str(typ)
        );
        let payload = serde_json::to_vec(claims).map_err(|e| JwsError::Malformed(e.to_string()))?;
        let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(&payload));
        let sig: Vec<u8> = match &self.key {
            Private::Rsa(k) => {
                // The randomized signer blinds the private-key operation.
                use rsa::signature::{RandomizedSigner, SignatureEncoding};
                k.try_sign_with_rng(&mut OsRng, signing_input.as_bytes())
                    .map_err(key_err)?
                    .to_vec()
            }
            Private::Es(k) => {
                // JWS wants the fixed 64-byte r||s form, not DER.
                use p256::ecdsa::signature::Signer;
                let s: p256::ecdsa::Signature =
                    k.try_sign(signing_input.as_bytes()).map_err(key_err)?;
                s.to_bytes().to_vec()
            }
            Private::Ed(k) => {
                use ed25519_dalek::Signer;
                k.sign(signing_input.as_bytes()).to_bytes().to_vec()
            }
        };
        Ok(format!("{signing_input}.{}", b64(&sig)))
    }
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
    let parts = split(token)?;
    let alg = Alg::parse(&parts.header.alg)
        .filter(|a| allowed.contains(a))
        .ok_or_else(|| JwsError::UnsupportedAlg(truncate(&parts.header.alg)))?;

    let fitting: Vec<&Value> = match &parts.header.kid {
        Some(kid) => {
            let named: Vec<&Value> = jwks
                .iter()
                .filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
                .collect();
            if named.is_empty() {
                return Err(JwsError::UnknownKey);
            }
            let fit: Vec<&Value> = named.into_iter().filter(|k| fits(k, alg)).collect();
            if fit.is_empty() {
                return Err(JwsError::Key(format!(
                    "key {} does not fit {}",
                    truncate(kid),
                    alg.as_str()
                )));
            }
            fit
        }
        None => jwks.iter().filter(|k| fits(k, alg)).collect(),
    };
    if fitting.is_empty() {
        return Err(JwsError::UnknownKey);
    }

    let mut failure = None;
    for jwk in fitting {
        match verify_with_jwk(alg, jwk, parts.signing_input.as_bytes(), &parts.signature) {
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

fn verify_with_jwk(alg: Alg, jwk: &Value, msg: &[u8], sig: &[u8]) -> Result<(), JwsError> {
    match alg {
        Alg::RS256 => {
            use rsa::signature::Verifier;
            use rsa::traits::PublicKeyParts;
            let n = rsa::BigUint::from_bytes_be(&jwk_bytes(jwk, "n")?);
            let e = rsa::BigUint::from_bytes_be(&jwk_bytes(jwk, "e")?);
            // `new` also caps the modulus at 4096 bits, bounding the work.
            let pk = rsa::RsaPublicKey::new(n, e).map_err(key_err)?;
            if pk.n().bits() < MIN_RSA_BITS {
                return Err(JwsError::Key("RSA key shorter than 2048 bits".into()));
            }
            // The crate also checks that the length equals the modulus size.
            let sig =
                rsa::pkcs1v15::Signature::try_from(sig).map_err(|_| JwsError::BadSignature)?;
            rsa::pkcs1v15::VerifyingKey::<Sha256>::new(pk)
                .verify(msg, &sig)
                .map_err(|_| JwsError::BadSignature)
        }
        Alg::ES256 => {
            use p256::ecdsa::signature::Verifier;
            let x: [u8; 32] = jwk_fixed(jwk, "x")?;
            let y: [u8; 32] = jwk_fixed(jwk, "y")?;
            let point = p256::EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
            // Rejects points that are not on the curve.
            let vk = p256::ecdsa::VerifyingKey::from_encoded_point(&point).map_err(key_err)?;
            let sig =
                p256::ecdsa::Signature::from_slice(sig).map_err(|_| JwsError::BadSignature)?;
            vk.verify(msg, &sig).map_err(|_| JwsError::BadSignature)
        }
        Alg::EdDSA => {
            let x: [u8; 32] = jwk_fixed(jwk, "x")?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(key_err)?;
            let sig: [u8; 64] = sig.try_into().map_err(|_| JwsError::BadSignature)?;
            // Strict: refuses small-order keys and non-canonical signatures.
            vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
                .map_err(|_| JwsError::BadSignature)
        }
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
#[path = "jws_tests.rs"]
mod tests;

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
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::OnceLock;

    /// RSA generation costs time: one key per alg, shared by the tests.
    fn key(alg: Alg) -> &'static SigningKey {
        static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
        let keys = KEYS.get_or_init(|| Alg::ALL.map(|a| SigningKey::generate(a).unwrap()).to_vec());
        keys.iter().find(|k| k.alg() == alg).unwrap()
    }

    fn jwks() -> Vec<Value> {
        Alg::ALL.iter().map(|a| key(*a).public_jwk()).collect()
    }

    fn claims() -> Value {
        json!({"iss": "https://idp.example", "sub": "u1", "aud": ["c1"], "exp": 1_900_000_000, "n": "ü\"x"})
    }

    fn seg(t: &str, i: usize) -> &str {
        t.split('.').nth(i).unwrap()
    }

    /// The error `verify` gives (panics if it accepts).
    fn err(t: &str, jwks: &[Value], allowed: &[Alg]) -> JwsError {
        verify(t, jwks, allowed).unwrap_err()
    }

    fn is_malformed(e: JwsError) -> bool {
        matches!(e, JwsError::Malformed(_))
    }

    fn is_key(e: JwsError) -> bool {
        matches!(e, JwsError::Key(_))
    }

    fn forge(header: &Value, claims: &Value, sig: &[u8]) -> String {
        let (h, c) = (header.to_string(), claims.to_string());
        format!("{}.{}.{}", b64(h.as_bytes()), b64(c.as_bytes()), b64(sig))
    }

    /// RFC 2104 by hand: the crate has no HMAC dependency of its own.
    fn hs256(secret: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut k = [0u8; 64];
        k[..32].copy_from_slice(&Sha256::digest(secret));
        let pad = |b: u8| k.map(|x| x ^ b);
        let inner = Sha256::new()
            .chain_update(pad(0x36))
            .chain_update(msg)
            .finalize();
        Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize()
            .to_vec()
    }

    #[test]
    fn alg_names_and_serde() {
        for a in Alg::ALL {
            assert_eq!(Alg::parse(a.as_str()), Some(a));
            assert_eq!(serde_json::to_value(a).unwrap(), json!(a.as_str()));
            assert_eq!(serde_json::from_value::<Alg>(json!(a.as_str())).unwrap(), a);
        }
        for s in ["rs256", "none", "HS256", "EDDSA", ""] {
            assert_eq!(Alg::parse(s), None);
        }
    }

    #[test]
    fn round_trip_each_alg_with_exact_header() {
        for alg in Alg::ALL {
            let k = key(alg);
            let t = k.sign("at+jwt", &claims()).unwrap();
            assert_eq!(verify(&t, &jwks(), &Alg::ALL).unwrap(), claims(), "{alg:?}");
            let h = URL_SAFE_NO_PAD.decode(seg(&t, 0)).unwrap();
            let want = format!(
                r#"{{"alg":"{}","kid":"{}","typ":"at+jwt"}}"#,
                alg.as_str(),
                k.kid()
            );
            assert_eq!(String::from_utf8(h).unwrap(), want);
            assert_eq!(decode_unverified_claims(&t).unwrap(), claims());
            let hd = decode_header(&t).unwrap();
            assert_eq!(
                (hd.alg.as_str(), hd.kid.as_deref()),
                (alg.as_str(), Some(k.kid()))
            );
            assert_eq!(hd.typ.as_deref(), Some("at+jwt"));
            // kid is the thumbprint of the published key.
            assert_eq!(k.kid(), jwk_thumbprint(&k.public_jwk()).unwrap());
            let jwk = k.public_jwk();
            assert_eq!(
                (&jwk["use"], &jwk["alg"], &jwk["kid"]),
                (&json!("sig"), &json!(alg.as_str()), &json!(k.kid()))
            );
            assert!(jwk.get("d").is_none());
        }
        assert!(is_malformed(
            key(Alg::EdDSA).sign("JWT", &json!([1])).unwrap_err()
        ));
    }

    #[test]
    fn rfc7638_vector() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            jwk_thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn pkcs8_round_trip_keeps_kid() {
        for alg in Alg::ALL {
            let k = key(alg);
            let der = k.to_pkcs8_der().unwrap();
            let k2 = SigningKey::from_pkcs8_der(alg, &der).unwrap();
            assert_eq!((k2.kid(), k2.public_jwk()), (k.kid(), k.public_jwk()));
            let t = k2.sign("JWT", &claims()).unwrap();
            assert_eq!(verify(&t, &[k.public_jwk()], &[alg]).unwrap(), claims());
            // DER of another kind of key is refused, not misread.
            let other = Alg::ALL.into_iter().find(|a| *a != alg).unwrap();
            assert!(is_key(SigningKey::from_pkcs8_der(other, &der).unwrap_err()));
        }
        assert!(is_key(
            SigningKey::from_pkcs8_der(Alg::RS256, b"garbage").unwrap_err()
        ));
    }

    #[test]
    fn signature_sizes() {
        for (alg, len) in [(Alg::RS256, 256), (Alg::ES256, 64), (Alg::EdDSA, 64)] {
            let t = key(alg).sign("JWT", &claims()).unwrap();
            assert_eq!(
                URL_SAFE_NO_PAD.decode(seg(&t, 2)).unwrap().len(),
                len,
                "{alg:?}"
            );
        }
    }

    #[test]
    fn tampering_refused() {
        for alg in Alg::ALL {
            let k = key(alg);
            let jwks = [k.public_jwk()];
            let t = k.sign("JWT", &claims()).unwrap();
            let (h, p, s) = (seg(&t, 0), seg(&t, 1), seg(&t, 2));
            let mut c = claims();
            c["sub"] = json!("admin");
            let bad = format!("{h}.{}.{s}", b64(c.to_string().as_bytes()));
            assert_eq!(err(&bad, &jwks, &Alg::ALL), JwsError::BadSignature);
            let mut sig = URL_SAFE_NO_PAD.decode(s).unwrap();
            sig[10] ^= 1;
            assert_eq!(
                err(&format!("{h}.{p}.{}", b64(&sig)), &jwks, &Alg::ALL),
                JwsError::BadSignature
            );
            let h2 = json!({"alg": alg.as_str(), "kid": k.kid(), "typ": "other"});
            let bad = format!("{}.{p}.{s}", b64(h2.to_string().as_bytes()));
            assert_eq!(err(&bad, &jwks, &Alg::ALL), JwsError::BadSignature);
            // Extra or missing segments, and padding, are malformed.
            assert!(is_malformed(err(&format!("{t}.x"), &jwks, &Alg::ALL)));
            assert!(is_malformed(err(&format!("{h}.{p}"), &jwks, &Alg::ALL)));
            assert!(is_malformed(err(&format!("{t}="), &jwks, &Alg::ALL)));
        }
    }

    #[test]
    fn other_key_and_unknown_kid_refused() {
        for alg in Alg::ALL {
            let k = key(alg);
            let other = SigningKey::generate(alg).unwrap();
            let t = other.sign("JWT", &claims()).unwrap();
            assert_eq!(err(&t, &[k.public_jwk()], &Alg::ALL), JwsError::UnknownKey);
            // The other key's kid claimed by our key: the signature does not verify.
            let mut jwk = k.public_jwk();
            jwk["kid"] = json!(other.kid());
            assert_eq!(err(&t, &[jwk], &Alg::ALL), JwsError::BadSignature);
            // The right key is picked by kid among several.
            let t = k.sign("JWT", &claims()).unwrap();
            assert_eq!(
                verify(&t, &[other.public_jwk(), k.public_jwk()], &Alg::ALL).unwrap(),
                claims()
            );
        }
    }

    #[test]
    fn header_without_kid_tries_fitting_keys() {
        let ed = ed25519_dalek::SigningKey::generate(&mut OsRng);
        let k = SigningKey::from_private(Alg::EdDSA, Private::Ed(ed.clone())).unwrap();
        let input = format!(
            "{}.{}",
            b64(br#"{"alg":"EdDSA"}"#),
            b64(claims().to_string().as_bytes())
        );
        use ed25519_dalek::Signer;
        let t = format!("{input}.{}", b64(&ed.sign(input.as_bytes()).to_bytes()));
        let set = [
            key(Alg::RS256).public_jwk(),
            key(Alg::EdDSA).public_jwk(),
            k.public_jwk(),
        ];
        assert_eq!(verify(&t, &set, &Alg::ALL).unwrap(), claims());
        assert_eq!(err(&t, &set[..2], &Alg::ALL), JwsError::BadSignature);
        assert_eq!(err(&t, &set[..1], &Alg::ALL), JwsError::UnknownKey);
    }

    #[test]
    fn none_hs256_and_disallowed_alg_refused() {
        let k = key(Alg::RS256);
        let jwks = [k.public_jwk()];
        let unsupported = |s: &str| JwsError::UnsupportedAlg(s.into());
        for sig in [&b""[..], b"x"] {
            let t = forge(&json!({"alg": "none", "kid": k.kid()}), &claims(), sig);
            assert!(verify(&t, &jwks, &Alg::ALL).is_err());
        }
        let t = forge(&json!({"alg": "none", "kid": k.kid()}), &claims(), b"x");
        assert_eq!(err(&t, &jwks, &Alg::ALL), unsupported("none"));

        // Algorithm confusion: HS256 keyed with the RSA public key's encodings.
        use rsa::pkcs8::EncodePublicKey;
        let Private::Rsa(sk) = &k.key else {
            unreachable!()
        };
        let pk = rsa::RsaPublicKey::from(sk.as_ref());
        let der = pk.to_public_key_der().unwrap();
        let pem = pk.to_public_key_pem(Default::default()).unwrap();
        let h = b64(json!({"alg": "HS256", "kid": k.kid(), "typ": "JWT"})
            .to_string()
            .as_bytes());
        let input = format!("{h}.{}", b64(claims().to_string().as_bytes()));
        for secret in [
            der.as_bytes(),
            pem.as_bytes(),
            jwks[0].to_string().as_bytes(),
        ] {
            let t = format!("{input}.{}", b64(&hs256(secret, input.as_bytes())));
            assert_eq!(err(&t, &jwks, &Alg::ALL), unsupported("HS256"));
        }

        let t = k.sign("JWT", &claims()).unwrap();
        assert_eq!(
            err(&t, &jwks, &[Alg::ES256, Alg::EdDSA]),
            unsupported("RS256")
        );
        assert_eq!(err(&t, &jwks, &[]), unsupported("RS256"));
    }

    #[test]
    fn unfit_or_broken_jwks_refused() {
        let k = key(Alg::ES256);
        let t = k.sign("JWT", &claims()).unwrap();
        let cases = [
            ("alg", json!("ES384")),
            ("alg", json!(null)),
            ("use", json!("enc")),
            ("crv", json!("P-384")),
            ("kty", json!("OKP")),
            ("key_ops", json!(["sign"])),
            ("x", json!("AAAA")),
            ("y", json!(b64(&[0; 32]))),
        ];
        for (member, value) in cases {
            let mut jwk = k.public_jwk();
            jwk[member] = value;
            assert!(is_key(err(&t, &[jwk], &Alg::ALL)), "{member}");
        }
        // An RSA key with the EC key's kid does not fit ES256.
        let mut rsa = key(Alg::RS256).public_jwk();
        rsa["kid"] = json!(k.kid());
        assert!(is_key(err(&t, &[rsa], &Alg::ALL)));
        let t = key(Alg::RS256).sign("JWT", &claims()).unwrap();
        for n in ["AQAB", &b64(&[0xff; 128])] {
            let mut jwk = key(Alg::RS256).public_jwk();
            jwk["n"] = json!(n);
            assert!(is_key(err(&t, &[jwk], &Alg::ALL)), "{n}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let good = key(Alg::ES256).sign("JWT", &claims()).unwrap();
        let (h, p, s) = (seg(&good, 0), seg(&good, 1), seg(&good, 2));
        let big = "A".repeat(4000);
        let z64 = [0u8; 64];
        let mut inputs: Vec<String> = vec![
            String::new(),
            ".".into(),
            "..".into(),
            "...".into(),
            "a.b.c".into(),
            format!("{h}..{s}"),
            format!("{h}.{p}."),
            format!(".{p}.{s}"),
            format!("{big}.{big}.{big}"),
            format!("{h}.{big}.{big}"),
            format!("{h}.{p}.{big}"),
            "é.é.é".into(),
            "\0.\0.\0".into(),
            "A".repeat(MAX_TOKEN_LEN + 1),
            forge(&json!({"alg": "ES256", "crit": ["b64"]}), &claims(), &z64),
            forge(&json!({"alg": 5}), &claims(), &z64),
            forge(&json!(["ES256"]), &claims(), &z64),
            forge(&json!({"alg": "ES256"}), &json!([1]), &z64),
            forge(&json!({"alg": "RS256"}), &claims(), &[0xff; 256]),
            forge(&json!({"alg": "RS256"}), &claims(), &[0; 1]),
            forge(&json!({"alg": "EdDSA"}), &claims(), &[0xff; 64]),
            format!("{}.{p}.{s}", b64(br#"{"alg":"ES256","alg":"none"}"#)),
        ];
        for i in 0..300usize {
            // Deterministic single-byte mutations of a valid token.
            let mut b = good.clone().into_bytes();
            let at = (i * 7919) % b.len();
            b[at] = b"A-_.=+/ \x01"[i % 9];
            inputs.push(String::from_utf8_lossy(&b).into_owned());
        }
        for t in &inputs {
            let _ = (decode_header(t), decode_unverified_claims(t));
            if let Ok(c) = verify(t, &jwks(), &Alg::ALL) {
                assert_eq!(c, claims(), "{t:.60}");
            }
        }
        for jwk in [
            json!(null),
            json!([]),
            json!({"kty": "EC", "crv": "P-256", "x": 1, "y": null}),
        ] {
            assert!(verify(&good, &[jwk], &Alg::ALL).is_err());
        }
    }

    #[test]
    fn left_half_hash_values() {
        let at = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(left_half_hash(Alg::RS256, at), "77QmUPtjPfzWtF2AnpK9RQ");
        assert_eq!(left_half_hash(Alg::ES256, at), "77QmUPtjPfzWtF2AnpK9RQ");
        // SHA-512 half, the value openidconnect 4.1 computes for an Ed25519 key.
        assert_eq!(
            left_half_hash(Alg::EdDSA, at),
            "q7nS86GgvvFaZkzALLWqJYaJIKw2wCDAVfCAsm5CrBM"
        );
        for (alg, len) in [(Alg::RS256, 22), (Alg::ES256, 22), (Alg::EdDSA, 43)] {
            let a = left_half_hash(alg, "some-code");
            assert_eq!(
                (a.len(), a.clone()),
                (len, left_half_hash(alg, "some-code"))
            );
            assert_ne!(a, left_half_hash(alg, "other-code"));
        }
    }

    #[test]
    fn signing_key_is_send_sync_clone_and_debug_hides_secrets() {
        fn assert_bounds<T: Send + Sync + Clone>() {}
        assert_bounds::<SigningKey>();
        let d = format!("{:?}", key(Alg::EdDSA));
        assert!(
            d.contains(key(Alg::EdDSA).kid()) && !d.contains("secret"),
            "{d}"
        );
    }
}

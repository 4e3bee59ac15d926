//! Private signing keys, held by OpenSSL.

use super::{
    Alg, JwsError, MIN_RSA_BITS, RSA_GENERATE_BITS, b64, json_str, jwk_thumbprint, key_err, p256,
};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcKey, EcPointRef};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A private key held by OpenSSL, whose RSA uses blinding and whose P-256
/// and Ed25519 code is constant-time (unlike the RustCrypto `rsa` crate,
/// RUSTSEC-2023-0071).
#[derive(Clone)]
pub(super) enum Private {
    Rsa(PKey<openssl::pkey::Private>),
    Es(EcKey<openssl::pkey::Private>),
    Ed(PKey<openssl::pkey::Private>),
}

/// A private signing key with its algorithm and RFC 7638 key id.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    alg: Alg,
    pub(super) key: Private,
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
    /// A fresh RSA-2048, P-256 or Ed25519 key from OpenSSL's RNG.
    pub fn generate(alg: Alg) -> Result<Self, JwsError> {
        let key = match alg {
            Alg::RS256 => Private::Rsa(
                PKey::from_rsa(Rsa::generate(RSA_GENERATE_BITS).map_err(key_err)?)
                    .map_err(key_err)?,
            ),
            Alg::ES256 => Private::Es(EcKey::generate(p256()).map_err(key_err)?),
            Alg::EdDSA => Private::Ed(PKey::generate_ed25519().map_err(key_err)?),
        };
        Self::from_private(alg, key)
    }

    /// Reads a PKCS#8 private key (the stored format), refusing one of
    /// another kind than `alg` or an RSA key under 2048 bits.
    pub fn from_pkcs8_der(alg: Alg, der: &[u8]) -> Result<Self, JwsError> {
        let pkey = match PKey::private_key_from_pkcs8(der) {
            Ok(k) => k,
            Err(_) if alg == Alg::EdDSA => ed25519_from_pkcs8_v2(der)?,
            Err(_) => return Err(JwsError::Key("not a PKCS#8 private key".into())),
        };
        let wrong = || JwsError::Key(format!("the stored key is not an {} key", alg.as_str()));
        let key = match (alg, pkey.id()) {
            (Alg::RS256, Id::RSA) => {
                let bits = pkey.bits() as usize;
                if bits < MIN_RSA_BITS {
                    return Err(JwsError::Key(format!(
                        "RSA key has {bits} bits, at least {MIN_RSA_BITS} required"
                    )));
                }
                Private::Rsa(pkey)
            }
            (Alg::ES256, Id::EC) => {
                let ec = pkey.ec_key().map_err(key_err)?;
                if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
                    return Err(wrong());
                }
                ec.check_key().map_err(key_err)?;
                Private::Es(ec)
            }
            (Alg::EdDSA, Id::ED25519) => Private::Ed(pkey),
            _ => return Err(wrong()),
        };
        Self::from_private(alg, key)
    }

    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, JwsError> {
        match &self.key {
            Private::Rsa(k) | Private::Ed(k) => k.private_key_to_pkcs8(),
            Private::Es(k) => PKey::from_ec_key(k.clone()).and_then(|k| k.private_key_to_pkcs8()),
        }
        .map_err(key_err)
    }

    fn from_private(alg: Alg, key: Private) -> Result<Self, JwsError> {
        let public = match &key {
            Private::Rsa(k) => {
                let r = k.rsa().map_err(key_err)?;
                serde_json::json!({
                    "kty": "RSA",
                    "n": b64(&r.n().to_vec()),
                    "e": b64(&r.e().to_vec()),
                })
            }
            Private::Es(k) => {
                let (x, y) = ec_coordinates(k.public_key())?;
                serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64(&x), "y": b64(&y)})
            }
            Private::Ed(k) => serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64(&k.raw_public_key().map_err(key_err)?),
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
        let sig = self.sign_bytes(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", b64(&sig)))
    }

    pub(super) fn sign_bytes(&self, msg: &[u8]) -> Result<Vec<u8>, JwsError> {
        match &self.key {
            // PKCS#1 v1.5 with SHA-256; OpenSSL blinds the private-key operation.
            Private::Rsa(k) => Signer::new(MessageDigest::sha256(), k)
                .and_then(|mut s| s.sign_oneshot_to_vec(msg))
                .map_err(key_err),
            Private::Es(k) => {
                // JWS wants the fixed 64-byte r||s form (RFC 7518 §3.4), not DER.
                let sig = EcdsaSig::sign(&Sha256::digest(msg), k).map_err(key_err)?;
                let mut out = sig.r().to_vec_padded(32).map_err(key_err)?;
                out.extend(sig.s().to_vec_padded(32).map_err(key_err)?);
                Ok(out)
            }
            Private::Ed(k) => Signer::new_without_digest(k)
                .and_then(|mut s| s.sign_oneshot_to_vec(msg))
                .map_err(key_err),
        }
    }
}

/// The DER prefix of an Ed25519 PKCS#8 document (RFC 8410 §7) up to the
/// 32-byte seed, after the outer SEQUENCE header: version, algorithm
/// 1.3.101.112, and the OCTET STRING holding the CurvePrivateKey.
const ED25519_PKCS8_BODY: [u8; 11] = [
    0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Ed25519 keys stored before the move to OpenSSL are PKCS#8 v2
/// (OneAsymmetricKey, RFC 5958) with the public key appended, which OpenSSL
/// 3.0 does not read. The layout is fixed, so it is read exactly here, and
/// the public key it carries must be the one the seed gives.
fn ed25519_from_pkcs8_v2(der: &[u8]) -> Result<PKey<openssl::pkey::Private>, JwsError> {
    let bad = || JwsError::Key("not a PKCS#8 private key".into());
    // 30 51 | 02 01 01 | 30 05 06 03 2b 65 70 | 04 22 04 20 <seed> | 81 21 00 <public>
    let seed_at = 5 + ED25519_PKCS8_BODY.len();
    if der.len() != 0x53
        || der[..5] != [0x30, 0x51, 0x02, 0x01, 0x01]
        || der[5..seed_at] != ED25519_PKCS8_BODY
        || der[seed_at + 32..seed_at + 35] != [0x81, 0x21, 0x00]
    {
        return Err(bad());
    }
    let key = PKey::private_key_from_raw_bytes(&der[seed_at..seed_at + 32], Id::ED25519)
        .map_err(|_| bad())?;
    if key.raw_public_key().map_err(key_err)? != der[seed_at + 35..] {
        return Err(JwsError::Key(
            "the stored Ed25519 key's public half does not match its seed".into(),
        ));
    }
    Ok(key)
}

/// The affine x and y of a P-256 point, 32 bytes each.
fn ec_coordinates(point: &EcPointRef) -> Result<(Vec<u8>, Vec<u8>), JwsError> {
    let (mut x, mut y) = (
        BigNum::new().map_err(key_err)?,
        BigNum::new().map_err(key_err)?,
    );
    let mut ctx = BigNumContext::new().map_err(key_err)?;
    point
        .affine_coordinates(p256(), &mut x, &mut y, &mut ctx)
        .map_err(key_err)?;
    Ok((
        x.to_vec_padded(32).map_err(key_err)?,
        y.to_vec_padded(32).map_err(key_err)?,
    ))
}

//! At-rest encryption of secrets (private signing keys) with AES-256-GCM.
//!
//! Sealed form: base64url without padding of `nonce (12 bytes) || ciphertext || tag (16 bytes)`.
//! The nonce is random per message; with 96-bit nonces that stays safe far
//! beyond the number of keys this server will ever seal under one key.
//! The `aad` binds a sealed value to its context (e.g. the key id), so a
//! ciphertext moved to another row does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, general_purpose};
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Padding is optional when reading a configured key: people paste both.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

pub struct Sealer {
    cipher: Aes256Gcm,
    /// A MAC key derived from the sealing key, so every node that shares the
    /// sealing key computes the same tags without another secret to deploy.
    mac_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer { .. }")
    }
}

impl Sealer {
    /// Accepts standard or URL-safe base64, padded or not, with surrounding
    /// whitespace (as read from a file or environment variable) ignored.
    pub fn from_base64(key_b64: &str) -> Result<Self, String> {
        let s = key_b64.trim();
        if s.is_empty() {
            return Err("sealing key is empty".into());
        }
        // Error messages never include the input or the decoder's detail
        // (which names the offending byte), so the key cannot leak into logs.
        let bytes = Zeroizing::new(
            STANDARD_LENIENT
                .decode(s)
                .or_else(|_| URL_SAFE_LENIENT.decode(s))
                .map_err(|_| {
                    "sealing key is not valid base64 (standard or URL-safe)".to_string()
                })?,
        );
        if bytes.len() != KEY_LEN {
            return Err(format!(
                "sealing key must decode to exactly {KEY_LEN} bytes, got {}",
                bytes.len()
            ));
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes)
            .map_err(|_| "sealing key has the wrong length".to_string())?;
        let mac_key = Zeroizing::new(hmac_sha256(&bytes, &[b"portcullis mac key"]));
        Ok(Sealer { cipher, mac_key })
    }

    /// A new random key, standard base64 (44 characters with padding).
    pub fn generate_key_base64() -> String {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(key.as_mut());
        general_purpose::STANDARD.encode(key.as_ref())
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            // Only fails for inputs beyond GCM's 64 GiB limit.
            .expect("AES-GCM encryption of an in-memory buffer");
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// A keyed tag over `data` for one `purpose` (tags for one purpose never
    /// verify for another).
    pub fn mac(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        hmac_sha256(self.mac_key.as_ref(), &[purpose.as_bytes(), &[0], data])
    }

    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, String> {
        let raw = URL_SAFE_NO_PAD
            .decode(sealed.trim())
            .map_err(|_| "sealed value is not base64url".to_string())?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err("sealed value is too short".into());
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            // GCM cannot tell these apart, and should not.
            .map_err(|_| "sealed value does not open: wrong key, wrong context, or tampered".into())
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut m =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::from_base64(&Sealer::generate_key_base64()).unwrap()
    }

    #[test]
    fn round_trip() {
        let s = sealer();
        for msg in [&b""[..], b"x", &[7u8; 5000]] {
            let sealed = s.seal(msg, b"kid-1");
            assert_eq!(s.open(&sealed, b"kid-1").unwrap(), msg);
        }
        // Random nonces: the same message seals differently.
        assert_ne!(s.seal(b"m", b""), s.seal(b"m", b""));
    }

    #[test]
    fn wrong_aad_other_key_and_tampering_fail() {
        let s = sealer();
        let sealed = s.seal(b"private key", b"kid-1");
        assert!(s.open(&sealed, b"kid-2").is_err());
        assert!(s.open(&sealed, b"").is_err());
        assert!(sealer().open(&sealed, b"kid-1").is_err());

        let raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        for i in 0..raw.len() {
            let mut t = raw.clone();
            t[i] ^= 0x01;
            assert!(
                s.open(&URL_SAFE_NO_PAD.encode(&t), b"kid-1").is_err(),
                "byte {i}"
            );
        }
        // Truncated and extended.
        let short = URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1]);
        assert!(s.open(&short, b"kid-1").is_err());
        let mut long = raw.clone();
        long.push(0);
        assert!(s.open(&URL_SAFE_NO_PAD.encode(&long), b"kid-1").is_err());
    }

    #[test]
    fn garbage_fails_cleanly() {
        let s = sealer();
        for g in [
            "",
            "!!!!",
            "AAAA",
            "A",
            &"A".repeat(4096),
            "é",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ] {
            assert!(s.open(g, b"").is_err(), "{g:.20}");
        }
    }

    #[test]
    fn key_forms_accepted() {
        let mut key = [0u8; 32];
        key[0] = 0xfb; // produces '+'/'/' vs '-'/'_' in the encodings
        key[1] = 0xff;
        let std = general_purpose::STANDARD.encode(key);
        let url = general_purpose::URL_SAFE.encode(key);
        assert_ne!(std, url);
        let a = Sealer::from_base64(&std).unwrap();
        let sealed = a.seal(b"hello", b"ctx");
        for form in [
            url.clone(),
            std.trim_end_matches('=').to_string(),
            url.trim_end_matches('=').to_string(),
            format!("  {std}\n"),
        ] {
            let b = Sealer::from_base64(&form).unwrap();
            assert_eq!(b.open(&sealed, b"ctx").unwrap(), b"hello");
        }
        let generated = Sealer::generate_key_base64();
        assert_eq!(generated.len(), 44);
        assert_eq!(
            general_purpose::STANDARD.decode(&generated).unwrap().len(),
            32
        );
    }

    #[test]
    fn bad_keys_rejected_clearly_without_echo() {
        let short = general_purpose::STANDARD.encode([1u8; 16]);
        let e = Sealer::from_base64(&short).unwrap_err();
        assert!(e.contains("32 bytes") && e.contains("16"), "{e}");
        assert!(!e.contains(&short));

        let long = general_purpose::STANDARD.encode([1u8; 33]);
        let e = Sealer::from_base64(&long).unwrap_err();
        assert!(e.contains("got 33"), "{e}");

        let e = Sealer::from_base64("not*base64*secretvalue").unwrap_err();
        assert!(e.contains("base64") && !e.contains("secretvalue"), "{e}");
        // Mixed alphabets are not a valid key in either.
        let e = Sealer::from_base64("ab+_").unwrap_err();
        assert!(e.contains("base64"), "{e}");
        assert!(Sealer::from_base64("   ").unwrap_err().contains("empty"));
    }

    #[test]
    fn debug_prints_no_key() {
        let key = Sealer::generate_key_base64();
        let d = format!("{:?}", Sealer::from_base64(&key).unwrap());
        assert_eq!(d, "Sealer { .. }");
    }
}

//! Encrypted assertions (XML Encryption): AES-128-GCM for the assertion,
//! RSA-OAEP (MGF1, SHA-1) to transport the key to the SP's certificate. These
//! are the algorithms SAML SP libraries commonly decrypt.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::rsa::Padding;
use openssl::symm::{Cipher, encrypt_aead};

const DATA_ALG: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
const KEY_ALG: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";

/// Wraps `assertion` (a complete, possibly signed, Assertion element) in an
/// EncryptedAssertion for the holder of `cert_b64` (base64 DER X.509).
pub fn encrypt_assertion(assertion: &str, cert_b64: &str) -> Result<String, String> {
    let der = STANDARD
        .decode(cert_b64)
        .map_err(|_| "the SP encryption certificate is not base64")?;
    let cert = openssl::x509::X509::from_der(&der)
        .map_err(|e| format!("the SP encryption certificate: {e}"))?;
    let rsa = cert
        .public_key()
        .and_then(|k| k.rsa())
        .map_err(|_| "the SP encryption certificate must hold an RSA key".to_string())?;
    let mut key = [0u8; 16];
    let mut iv = [0u8; 12];
    openssl::rand::rand_bytes(&mut key).map_err(|e| e.to_string())?;
    openssl::rand::rand_bytes(&mut iv).map_err(|e| e.to_string())?;
    let mut tag = [0u8; 16];
    let ct = encrypt_aead(
        Cipher::aes_128_gcm(),
        &key,
        Some(&iv),
        &[],
        assertion.as_bytes(),
        &mut tag,
    )
    .map_err(|e| format!("encrypting the assertion: {e}"))?;
    let mut data = Vec::with_capacity(iv.len() + ct.len() + tag.len());
    data.extend_from_slice(&iv);
    data.extend_from_slice(&ct);
    data.extend_from_slice(&tag);
    let mut wrapped = vec![0u8; rsa.size() as usize];
    let n = rsa
        .public_encrypt(&key, &mut wrapped, Padding::PKCS1_OAEP)
        .map_err(|e| format!("wrapping the key: {e}"))?;
    wrapped.truncate(n);
    Ok(format!(
        "<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\" \
Type=\"http://www.w3.org/2001/04/xmlenc#Element\"><xenc:EncryptionMethod Algorithm=\"{DATA_ALG}\"/>\
<ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><xenc:EncryptedKey>\
<xenc:EncryptionMethod Algorithm=\"{KEY_ALG}\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#sha1\"/></xenc:EncryptionMethod>\
<xenc:CipherData><xenc:CipherValue>{key}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>\
<xenc:CipherData><xenc:CipherValue>{data}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></saml:EncryptedAssertion>",
        key = STANDARD.encode(wrapped),
        data = STANDARD.encode(data),
    ))
}

/// Drops a leading `<?xml …?>` declaration, so a signed element can be
/// embedded in another document.
pub fn strip_declaration(xml: &str) -> &str {
    let t = xml.trim_start();
    match t.strip_prefix("<?xml") {
        Some(rest) => rest
            .split_once("?>")
            .map(|(_, r)| r.trim_start())
            .unwrap_or(t),
        None => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_are_stripped() {
        assert_eq!(strip_declaration("<?xml version=\"1.0\"?>\n<a/>"), "<a/>");
        assert_eq!(strip_declaration("<a/>"), "<a/>");
    }

    #[test]
    fn bad_certificates_are_refused() {
        assert!(encrypt_assertion("<a/>", "!!").is_err());
        assert!(encrypt_assertion("<a/>", &STANDARD.encode(b"not a certificate")).is_err());
    }
}

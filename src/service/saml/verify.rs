//! Signature checks on incoming SAML messages, for both bindings. The
//! third-party verifiers are called only with inputs already checked
//! (algorithms whitelisted, the XML's shape checked by
//! [`crate::protocol::saml::dsig`]), and behind [`guard`]: a panic in them
//! refuses the message instead of aborting the connection.

use crate::domain::ServiceProvider;
use crate::protocol::saml::dsig::redirect_sig_alg_allowed;
use crate::protocol::saml::guard;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use samael::crypto::{CertificateDer, Crypto, CryptoProvider, UrlVerifier};

/// Which message an HTTP-Redirect query carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Carries {
    Request,
    Response,
}

/// The SP's signing certificates.
pub(crate) fn sp_certs(sp: &ServiceProvider) -> Vec<CertificateDer> {
    sp.signing_certs
        .iter()
        .filter_map(|c| STANDARD.decode(c).ok())
        .map(CertificateDer::from)
        .collect()
}

/// The query signature of an HTTP-Redirect message at `path`: `Ok(false)`
/// when there is none, `Ok(true)` when one of `certs` verifies it, an error
/// otherwise (including a signature nobody here can check).
pub(crate) fn redirect(
    certs: &[CertificateDer],
    path: &str,
    raw_query: &str,
    carries: Carries,
) -> Result<bool, String> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    let count = |k: &str| pairs.iter().filter(|(n, _)| n == k).count();
    for k in [
        "SAMLRequest",
        "SAMLResponse",
        "RelayState",
        "SigAlg",
        "Signature",
    ] {
        if count(k) > 1 {
            return Err(format!("the parameter {k} is repeated"));
        }
    }
    match (count("SigAlg"), count("Signature")) {
        (0, 0) => return Ok(false),
        (1, 1) => {}
        _ => return Err("the message's signature is incomplete (SigAlg and Signature)".into()),
    }
    let alg = pairs
        .iter()
        .find(|(n, _)| n == "SigAlg")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    if !redirect_sig_alg_allowed(alg) {
        return Err(format!("the signature algorithm {alg} is not accepted"));
    }
    if certs.is_empty() {
        return Err("the message is signed but no certificate of the sender is known".into());
    }
    let uri = format!("{path}?{raw_query}");
    let ok = guard("signature", || {
        Ok(certs.iter().any(|c| {
            UrlVerifier::from_x509(c).ok().and_then(|v| match carries {
                Carries::Request => v.verify_percent_encoded_request_uri_string(&uri).ok(),
                Carries::Response => v.verify_percent_encoded_response_uri_string(&uri).ok(),
            }) == Some(true)
        }))
    })?;
    if ok {
        Ok(true)
    } else {
        Err("it does not verify with the certificate of the sender".into())
    }
}

/// The XML signature of an HTTP-POST message whose shape was checked
/// (`signed` as that check found): `Ok(false)` when there is none,
/// `Ok(true)` when one of `certs` verifies it, an error otherwise.
pub(crate) fn post(certs: &[CertificateDer], xml: &str, signed: bool) -> Result<bool, String> {
    if !signed {
        return Ok(false);
    }
    if certs.is_empty() {
        return Err("the message is signed but no certificate of the sender is known".into());
    }
    let ok = guard("signature", || {
        Ok(certs
            .iter()
            .any(|c| Crypto::verify_signed_xml(xml, c, Some("ID")).is_ok()))
    })?;
    if ok {
        Ok(true)
    } else {
        Err("it does not verify with the certificate of the sender".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use samael::idp::{CertificateParams, IdentityProvider, KeyType, Rsa};

    fn cert() -> CertificateDer {
        let idp = IdentityProvider::generate_new(KeyType::Rsa(Rsa::Rsa2048)).unwrap();
        let c = idp
            .create_certificate(&CertificateParams {
                common_name: "sp",
                issuer_name: "sp",
                days_until_expiration: 1,
            })
            .unwrap();
        CertificateDer::from(c.der_data().to_vec())
    }

    fn query(alg: &str, sig: &str) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("SAMLRequest", "fZBBa8Mw")
            .append_pair("SigAlg", alg)
            .append_pair("Signature", sig)
            .finish()
    }

    #[test]
    fn unexpected_algorithms_are_refused_before_the_verifier() {
        let certs = [cert()];
        for alg in [
            "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
            "",
        ] {
            let e =
                redirect(&certs, "/saml/sso", &query(alg, "AAAA"), Carries::Request).unwrap_err();
            assert!(e.contains("is not accepted"), "{e}");
        }
        let e = redirect(
            &certs,
            "/saml/sso",
            &format!("{}&SigAlg=x", query("x", "AAAA")),
            Carries::Request,
        )
        .unwrap_err();
        assert!(e.contains("repeated"), "{e}");
        assert_eq!(
            redirect(&certs, "/saml/sso", "SAMLRequest=x", Carries::Request),
            Ok(false)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(32),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn redirect_signatures_never_panic(
            alg in prop_oneof![
                Just("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256".to_string()),
                Just("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256".to_string()),
                "\\PC{0,60}",
            ],
            sig in "[A-Za-z0-9+/=%]{0,400}",
            extra in "[A-Za-z&=%]{0,40}",
        ) {
            let certs = [cert_once()];
            let q = format!("{}&{extra}", query(&alg, &sig));
            let _ = redirect(&certs, "/saml/sso", &q, Carries::Request);
            let _ = redirect(&certs, "/saml/slo", &q, Carries::Response);
        }
    }

    fn cert_once() -> CertificateDer {
        static CERT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        CertificateDer::from(CERT.get_or_init(|| cert().der_data().to_vec()).clone())
    }
}

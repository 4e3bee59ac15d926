//! Property tests for the SAML readers that take input from the network:
//! whatever arrives, they answer (Ok or Err) without panicking and within a
//! bounded time. Few cases by default so `cargo test` stays fast; set
//! `PROPTEST_CASES` for a longer run.

use super::{dsig, logout, request};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use std::io::Write;

use crate::protocol::proptests::timed;

fn config() -> ProptestConfig {
    crate::protocol::proptests::cases(48)
}

fn deflate(b: &[u8]) -> String {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    STANDARD.encode(e.finish().unwrap())
}

const AUTHN_OPEN: &str = r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a" Version="2.0" IssueInstant="2026-03-02T10:00:00Z" Destination="https://id.example/saml/sso">"#;
const LOGOUT_OPEN: &str = r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a" Version="2.0" IssueInstant="2026-03-02T10:00:00Z">"#;

/// Pieces an attacker would splice into a message: signatures, wrappers,
/// repeated IDs, stray markup, deep nesting, entities.
fn fragment() -> impl Strategy<Value = String> {
    let sig = |id: &'static str| super::response::signature_template(id, "MIIB");
    prop_oneof![
        Just("<saml:Issuer>https://sp.example</saml:Issuer>".to_string()),
        Just(sig("_a")),
        Just(sig("_b")),
        Just("<samlp:Extensions>".to_string()),
        Just("</samlp:Extensions>".to_string()),
        Just("<x:W xmlns:x=\"urn:x\" ID=\"_b\">".to_string()),
        Just("</x:W>".to_string()),
        Just("<x:Y xmlns:x=\"urn:x\" ID=\"_a\"/>".to_string()),
        Just("<saml:NameID>n</saml:NameID>".to_string()),
        Just("<samlp:SessionIndex>i</samlp:SessionIndex>".to_string()),
        Just("<!DOCTYPE x>".to_string()),
        Just("<!-- c -->".to_string()),
        Just("<![CDATA[x]]>".to_string()),
        Just("&amp;&#x41;&bogus;".to_string()),
        Just("<a>".repeat(40)),
        "[<>/=\"'a-z:# &;]{0,40}",
    ]
}

fn message(open: &'static str, close: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..12)
        .prop_map(move |parts| format!("{open}{}{close}", parts.concat()))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn redirect_and_post_decoding_never_panic(s in "[A-Za-z0-9+/= %\n]{0,512}") {
        timed(|| {
            let _ = request::decode_redirect(&s);
            let _ = request::decode_post(&s);
        });
    }

    #[test]
    fn inflated_junk_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        timed(|| {
            if let Ok(xml) = request::decode_redirect(&deflate(&bytes)) {
                let _ = request::parse(&xml);
                let _ = logout::parse(&xml, "LogoutRequest");
            }
        });
    }

    #[test]
    fn authn_request_parsing_never_panics(xml in message(AUTHN_OPEN, "</samlp:AuthnRequest>")) {
        timed(|| {
            let shape = dsig::check(&xml, "AuthnRequest");
            let parsed = request::parse(&xml);
            // Whatever the parser makes of it, a signed result has passed
            // the shape check.
            if let Ok((_, s)) = &parsed {
                prop_assert_eq!(Some(s), shape.as_ref().ok());
            }
            Ok(())
        })?;
    }

    #[test]
    fn logout_request_parsing_never_panics(xml in message(LOGOUT_OPEN, "</samlp:LogoutRequest>")) {
        timed(|| {
            if let Ok(m) = logout::parse(&xml, "LogoutRequest") {
                // A signature counted as such is the only one there is.
                if m.signed {
                    assert_eq!(xml.matches("<ds:Signature ").count(), 1, "{xml}");
                }
            }
        });
    }

    #[test]
    fn the_shape_check_never_panics_on_arbitrary_text(s in "\\PC{0,600}") {
        timed(|| {
            let _ = dsig::check(&s, "AuthnRequest");
            let _ = request::parse(&s);
            let _ = logout::parse(&s, "LogoutResponse");
        });
    }
}

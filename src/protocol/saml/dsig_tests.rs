//! Unit tests of the message and signature shape check.

use super::*;
use crate::protocol::saml::response::signature_template;

const OPEN: &str = r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a" Version="2.0" IssueInstant="2026-03-02T10:00:00Z">"#;
const ISSUER: &str = "<saml:Issuer>https://sp.example</saml:Issuer>";
const CLOSE: &str = "</samlp:AuthnRequest>";

fn sig(id: &str) -> String {
    signature_template(id, "MIIB")
}

fn msg(inner: &str) -> String {
    format!("{OPEN}{ISSUER}{inner}{CLOSE}")
}

fn refused(xml: &str, why: &str) {
    let e = check(xml, "AuthnRequest").expect_err(xml);
    assert!(e.contains(why), "{e} (wanted {why})");
}

#[test]
fn unsigned_and_signed_messages_of_the_accepted_shape() {
    assert_eq!(
        check(&msg(""), "AuthnRequest").unwrap(),
        Shape {
            id: "_a".into(),
            signed: false
        }
    );
    let s = check(&msg(&sig("_a")), "AuthnRequest").unwrap();
    assert!(s.signed);
    let decl = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
        msg(&sig("_a"))
    );
    assert!(check(&decl, "AuthnRequest").unwrap().signed);
}

#[test]
fn the_root_is_the_expected_message() {
    assert!(check(&msg(""), "LogoutRequest").is_err());
    refused(
        r#"<AuthnRequest ID="_a" Version="2.0"/>"#,
        "not a SAML AuthnRequest",
    );
    refused(&msg("").replace(" ID=\"_a\"", ""), "no usable ID");
}

#[test]
fn wrapping_variants_are_refused() {
    // An old, genuinely signed request moved inside Extensions of a
    // forged one, with and without a signature on the forged root.
    let old = format!(
        "<samlp:AuthnRequest ID=\"_old\" Version=\"2.0\" IssueInstant=\"2026-03-01T10:00:00Z\">{ISSUER}{}</samlp:AuthnRequest>",
        sig("_old")
    );
    let ext = format!("<samlp:Extensions>{old}</samlp:Extensions>");
    refused(&msg(&ext), "not a direct child");
    refused(
        &msg(&format!("{}{ext}", sig("_a"))),
        "more than one signature",
    );
    refused(&msg(&format!("{ext}{}", sig("_old"))), "more than one");
    // Inside another (non-SAML) element.
    refused(
        &msg(&format!("<x:W xmlns:x=\"urn:x\">{old}</x:W>")),
        "not a direct child",
    );
    // A second signature anywhere.
    refused(
        &msg(&format!("{}{}", sig("_a"), sig("_a"))),
        "more than one signature",
    );
    // The signature not a direct child of the root.
    refused(
        &msg(&format!(
            "<samlp:Extensions>{}</samlp:Extensions>",
            sig("_a")
        )),
        "not a direct child",
    );
    // A Reference to another ID.
    refused(
        &msg(&format!("{}<saml:Subject ID=\"_b\"/>", sig("_b"))),
        "does not reference the root",
    );
    // Duplicate IDs.
    refused(
        &msg(&format!("{}<saml:Subject ID=\"_a\"/>", sig("_a"))),
        "ID appears more than once",
    );
    refused(
        &msg(&format!(
            "{}<x:Y xmlns:x=\"urn:x\" xml:id=\"_a\"/>",
            sig("_a")
        )),
        "more than once",
    );
    // Several References.
    let two_refs = sig("_a").replace(
        "<ds:SignatureValue>",
        "<ds:Reference URI=\"#_a\"/><ds:SignatureValue>",
    );
    let two_refs = two_refs.replace(
        "</ds:SignedInfo><ds:Reference URI=\"#_a\"/>",
        "<ds:Reference URI=\"#_a\"/></ds:SignedInfo>",
    );
    refused(&msg(&two_refs), "more than one Reference");
    // Empty URI (the whole document) and XPointer.
    refused(
        &msg(&sig("_a").replace("URI=\"#_a\"", "URI=\"\"")),
        "does not reference",
    );
    refused(
        &msg(&sig("_a").replace("URI=\"#_a\"", "URI=\"#xpointer(/)\"")),
        "does not reference",
    );
    refused(&msg(&sig("_a").replace(" URI=\"#_a\"", "")), "no URI");
    // A signature element in another namespace still counts.
    refused(
        &msg(&format!("{}<x:Signature xmlns:x=\"urn:x\"/>", sig("_a"))),
        "more than one",
    );
    // Content pulled from elsewhere.
    refused(
        &msg(&sig("_a").replace("</ds:Signature>", "<ds:Object>x</ds:Object></ds:Signature>")),
        "Object",
    );
    refused(
        &msg(&sig("_a").replace(
            "<ds:X509Data>",
            "<ds:RetrievalMethod URI=\"#x\"/><ds:X509Data>",
        )),
        "RetrievalMethod",
    );
}

#[test]
fn algorithms_and_transforms_are_whitelisted() {
    let s = sig("_a");
    refused(
        &msg(&s
            .replace("xmldsig-more#rsa-sha256", "xmldsig-more#sha256-rsa-MGF1")
            .replace(
                "2001/04/xmldsig-more#sha256-rsa-MGF1",
                "2007/05/xmldsig-more#sha256-rsa-MGF1",
            )),
        "signature algorithm",
    );
    refused(
        &msg(&s.replace(
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        )),
        "signature algorithm",
    );
    refused(
        &msg(&s.replace(
            "http://www.w3.org/2001/04/xmlenc#sha256",
            "http://www.w3.org/2000/09/xmldsig#sha1",
        )),
        "digest algorithm",
    );
    refused(
        &msg(&s.replace("http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms>", "http://www.w3.org/TR/1999/REC-xpath-19991116\"><ds:XPath>1</ds:XPath></ds:Transform></ds:Transforms>")),
        "XPath",
    );
    refused(
        &msg(&s.replace(
            "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>",
            "",
        )),
        "not an enveloped signature",
    );
    assert!(
        check(
            &msg(&s.replace("rsa-sha256", "ecdsa-sha256")),
            "AuthnRequest"
        )
        .unwrap()
        .signed
    );
    assert!(redirect_sig_alg_allowed(
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    ));
    assert!(!redirect_sig_alg_allowed(
        "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1"
    ));
    assert!(!redirect_sig_alg_allowed(
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
    ));
}

#[test]
fn documents_out_of_bounds_are_refused() {
    refused(&format!("<!DOCTYPE x>{}", msg("")), "DTD");
    refused(&format!("{}<x/>", msg("")), "after the root");
    refused(&format!("{}text", msg("")), "outside the root");
    refused(&msg("<a>"), "well-formed");
    refused(&msg("<u:x/>"), "namespace prefix");
    refused(
        &msg("").replace("Version=", "ID=\"_b\" Version="),
        "repeated",
    );
    let deep = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
    refused(&msg(&deep), "too deeply nested");
    let wide = "<a/>".repeat(MAX_ELEMENTS);
    refused(&msg(&wide), "too many elements");
    refused(
        &format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{}", msg("")),
        "UTF-8",
    );
    refused(&msg(&sig("_a")).replace("\"_a\"", "\"1 a\""), "plain ID");
}

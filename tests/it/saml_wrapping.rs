//! Signature wrapping and algorithm substitution, over HTTP against a real
//! server: one signature, a direct child of the root, referencing the root,
//! is the one checked; unexpected algorithms are refused before any
//! third-party verifier sees them, and nothing makes a handler panic. Also:
//! signed requests must name the endpoint they were sent to.

use crate::common::{Browser, PASSWORD, Page, TestServer, field_value};
use crate::saml::{SP_ENTITY, authn_request, deflated};
use crate::saml_signed::{SpKey, setup, signed_post_request, sp_key, status_of};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis::protocol::saml::encrypt::strip_declaration;
use portcullis::protocol::saml::response::signature_template;
use samael::crypto::{Crypto, CryptoProvider};

const MGF1: &str = "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1";

/// POSTs an AuthnRequest and follows a same-site resume, as a browser does.
async fn post_sso(b: &Browser, xml: &str) -> Page {
    let r = b
        .post("/saml/sso", &[("SAMLRequest", &STANDARD.encode(xml))])
        .await;
    match r.location.as_deref() {
        Some(to) if to.starts_with("/saml/resume") => b.get(to).await,
        _ => r,
    }
}

fn assert_refused(page: &Page, why: &str, what: &str) {
    if let Some(resp) = field_value(&page.body, "SAMLResponse") {
        let xml = crate::saml::decode(&resp);
        assert!(!xml.contains("status:Success"), "{what}: accepted: {xml}");
    }
    assert_eq!(page.status, 400, "{what}: {}", page.body);
    assert!(
        page.body.contains(why),
        "{what}: wanted {why}: {}",
        page.body
    );
}

/// The `ds:Reference` element of a signed document.
fn reference(xml: &str) -> &str {
    let s = xml.find("<ds:Reference").unwrap();
    let e = xml.find("</ds:Reference>").unwrap() + "</ds:Reference>".len();
    &xml[s..e]
}

/// The `ds:Signature` element of a signed document.
fn signature(xml: &str) -> &str {
    let s = xml.find("<ds:Signature").unwrap();
    let e = xml.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    &xml[s..e]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrapped_authn_requests_are_refused() {
    let key = sp_key();
    let srv = setup(&key).await;
    let b = srv.browser();
    b.login("lou", PASSWORD).await;
    // An old request the SP once signed, as an attacker may hold one.
    let old = signed_post_request(&srv, &key, "_old");
    let old = strip_declaration(&old).to_string();
    let genuine = status_of(
        &post_sso(&b, &signed_post_request(&srv, &key, "_ok"))
            .await
            .body,
    );
    assert!(genuine.contains("status:Success"), "{genuine}");

    let forged = |id: &str, inner: &str| {
        authn_request(&srv, id, "").replacen("</saml:Issuer>", &format!("</saml:Issuer>{inner}"), 1)
    };
    let fake_sig = |id: &str| signature_template(id, &key.cert_b64);
    let sig = signature(&old).to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "the signed message inside Extensions, a bogus signature on the root",
            forged(
                "_w1",
                &format!(
                    "<samlp:Extensions>{old}</samlp:Extensions>{}",
                    fake_sig("_w1")
                ),
            ),
            "more than one signature",
        ),
        (
            "the signed message inside Extensions, the root unsigned",
            forged("_w2", &format!("<samlp:Extensions>{old}</samlp:Extensions>")),
            "not a direct child",
        ),
        (
            "the signed message inside another element",
            forged(
                "_w3",
                &format!("<x:Wrap xmlns:x=\"urn:x\">{old}</x:Wrap>"),
            ),
            "not a direct child",
        ),
        (
            "a second signature",
            old.replacen("</ds:Signature>", &format!("</ds:Signature>{sig}"), 1),
            "more than one signature",
        ),
        (
            "the signature not a direct child of the root",
            old.replacen(
                &sig,
                &format!("<samlp:Extensions>{sig}</samlp:Extensions>"),
                1,
            ),
            "not a direct child",
        ),
        (
            "a Reference to another element's ID",
            old.replacen("ID=\"_old\"", "ID=\"_w6\"", 1).replacen(
                "</ds:Signature>",
                "</ds:Signature><samlp:Extensions><x:Y xmlns:x=\"urn:x\" ID=\"_old\"/></samlp:Extensions>",
                1,
            ),
            "does not reference the root",
        ),
        (
            "duplicate IDs",
            old.replacen(
                "</ds:Signature>",
                "</ds:Signature><samlp:Extensions><x:Y xmlns:x=\"urn:x\" ID=\"_old\"/></samlp:Extensions>",
                1,
            ),
            "an ID appears more than once",
        ),
        (
            "two References",
            old.replacen(
                reference(&old),
                &format!("{r}{r}", r = reference(&old)),
                1,
            ),
            "more than one Reference",
        ),
        (
            "a Reference with an empty URI",
            old.replacen("URI=\"#_old\"", "URI=\"\"", 1),
            "does not reference the root",
        ),
        (
            "a Reference with an XPointer",
            old.replacen("URI=\"#_old\"", "URI=\"#xpointer(id('_old'))\"", 1),
            "does not reference the root",
        ),
        (
            "a weak signature algorithm",
            old.replacen(
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
                1,
            ),
            "is not accepted",
        ),
        (
            "an XPath transform",
            old.replacen(
                "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>",
                "<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"><ds:XPath>1</ds:XPath></ds:Transform>",
                1,
            ),
            "not accepted",
        ),
    ];
    for (what, xml, why) in cases {
        assert_ne!(xml, old, "{what}: the case changes the message");
        assert_refused(&post_sso(&b, &xml).await, why, what);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrapped_logout_request_ends_nothing() {
    let key = sp_key();
    let srv = setup(&key).await;
    let b = srv.browser();
    b.login("lou", PASSWORD).await;
    let ok = post_sso(&b, &signed_post_request(&srv, &key, "_in")).await;
    let resp = status_of(&ok.body);
    let grab = |x: &str, open: &str, close: &str| {
        let s = x.find(open).unwrap() + open.len();
        x[s..s + x[s..].find(close).unwrap()].to_string()
    };
    let index = grab(&resp, "SessionIndex=\"", "\"");
    let nid = grab(&resp, "<saml:NameID", "</saml:NameID>");
    let name_id = nid[nid.find('>').unwrap() + 1..].to_string();
    // An old LogoutRequest the SP signed, for somebody else's session.
    let signed_logout = |id: &str, nid: &str, si: &str| {
        let xml = crate::saml_slo::logout_request(&srv, SP_ENTITY, id, nid, si).replacen(
            "</saml:Issuer>",
            &format!("</saml:Issuer>{}", signature_template(id, &key.cert_b64)),
            1,
        );
        strip_declaration(&Crypto::sign_xml(&xml, &key.der).unwrap()).to_string()
    };
    let old = signed_logout("_lo_old", "someone-else", "another-index");
    let forged = crate::saml_slo::logout_request(&srv, SP_ENTITY, "_lo_f", &name_id, &index)
        .replacen(
            "</saml:Issuer>",
            &format!(
                "</saml:Issuer><samlp:Extensions>{old}</samlp:Extensions>{}",
                signature_template("_lo_f", &key.cert_b64)
            ),
            1,
        );
    let page = b
        .post("/saml/slo", &[("SAMLRequest", &STANDARD.encode(forged))])
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.body.contains("more than one signature"),
        "{}",
        page.body
    );
    assert_eq!(b.get("/account").await.status, 200, "the session lives on");

    // The same SP's genuine signed request does end it.
    let real = signed_logout("_lo_ok", &name_id, &index);
    let page = b
        .post("/saml/slo", &[("SAMLRequest", &STANDARD.encode(real))])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(b.get("/account").await.status, 303, "signed out");
}

/// A Redirect-binding URL at `path` carrying `field` with a claimed signature.
fn with_sig_alg(srv: &TestServer, path: &str, field: &str, xml: &str, alg: &str) -> String {
    portcullis::protocol::oidc::uri::with_query(
        &srv.url(path),
        &[
            (field, deflated(xml).as_str()),
            ("SigAlg", alg),
            ("Signature", &STANDARD.encode([7u8; 256])),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_signature_algorithms_are_refused_without_a_panic() {
    let key = sp_key();
    let srv = setup(&key).await;
    let b = srv.browser();
    b.login("lou", PASSWORD).await;

    let url = with_sig_alg(
        &srv,
        "/saml/sso",
        "SAMLRequest",
        &authn_request(&srv, "_m1", ""),
        MGF1,
    );
    let page = b.get_url(&url).await;
    let xml = status_of(&page.body);
    assert!(
        xml.contains("RequestDenied") && xml.contains("is not accepted"),
        "{xml}"
    );
    for alg in ["http://www.w3.org/2000/09/xmldsig#rsa-sha1", "junk", ""] {
        let url = with_sig_alg(
            &srv,
            "/saml/sso",
            "SAMLRequest",
            &authn_request(&srv, "_m2", ""),
            alg,
        );
        let xml = status_of(&b.get_url(&url).await.body);
        assert!(xml.contains("RequestDenied"), "{alg}: {xml}");
    }

    let logout = crate::saml_slo::logout_request(&srv, SP_ENTITY, "_m3", "n", "i");
    let page = b
        .get_url(&with_sig_alg(
            &srv,
            "/saml/slo",
            "SAMLRequest",
            &logout,
            MGF1,
        ))
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("is not accepted"), "{}", page.body);

    // Half a signature, or a repeated parameter, is refused too.
    let half = portcullis::protocol::oidc::uri::with_query(
        &srv.url("/saml/sso"),
        &[
            (
                "SAMLRequest",
                deflated(&authn_request(&srv, "_m4", "")).as_str(),
            ),
            (
                "SigAlg",
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            ),
        ],
    );
    let xml = status_of(&b.get_url(&half).await.body);
    assert!(xml.contains("incomplete"), "{xml}");

    assert_eq!(b.get("/account").await.status, 200, "the server is fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_must_name_their_destination() {
    let key: SpKey = sp_key();
    let srv = setup(&key).await;
    let b = srv.browser();
    b.login("lou", PASSWORD).await;
    let dest = format!(" Destination=\"{}\"", srv.url("/saml/sso"));

    // HTTP-POST: an XML signature over a request without Destination.
    let xml = authn_request(&srv, "_d1", "")
        .replacen(&dest, "", 1)
        .replacen(
            "</saml:Issuer>",
            &format!("</saml:Issuer>{}", signature_template("_d1", &key.cert_b64)),
            1,
        );
    let signed = Crypto::sign_xml(&xml, &key.der).unwrap();
    let r = status_of(&post_sso(&b, &signed).await.body);
    assert!(
        r.contains("RequestDenied") && r.contains("must carry a Destination"),
        "{r}"
    );

    // HTTP-Redirect: a query signature over a request without Destination.
    let base = url::Url::parse_with_params(
        &srv.url("/saml/sso"),
        &[(
            "SAMLRequest",
            deflated(&authn_request(&srv, "_d2", "").replacen(&dest, "", 1)),
        )],
    )
    .unwrap();
    let url = samael::crypto::sign_url(base, &key.pkey).unwrap();
    let r = status_of(&b.get_url(url.as_str()).await.body);
    assert!(
        r.contains("RequestDenied") && r.contains("must carry a Destination"),
        "{r}"
    );

    // A signed LogoutRequest without Destination.
    let logout = crate::saml_slo::logout_request(&srv, SP_ENTITY, "_d3", "n", "i").replacen(
        &format!(" Destination=\"{}\"", srv.url("/saml/slo")),
        "",
        1,
    );
    let base =
        url::Url::parse_with_params(&srv.url("/saml/slo"), &[("SAMLRequest", deflated(&logout))])
            .unwrap();
    let url = samael::crypto::sign_url(base, &key.pkey).unwrap();
    let page = b.get_url(url.as_str()).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.body.contains("must carry a Destination"),
        "{}",
        page.body
    );

    // With the Destination, the same signed request goes through.
    let base = url::Url::parse_with_params(
        &srv.url("/saml/sso"),
        &[("SAMLRequest", deflated(&authn_request(&srv, "_d4", "")))],
    )
    .unwrap();
    let url = samael::crypto::sign_url(base, &key.pkey).unwrap();
    let r = status_of(&b.get_url(url.as_str()).await.body);
    assert!(r.contains("status:Success"), "{r}");
}

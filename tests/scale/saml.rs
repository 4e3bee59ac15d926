//! SAML through the balancer: SP-initiated sign-on checked by samael, and
//! single logout answered with a query-signed LogoutResponse.

use crate::cluster::Cluster;
use crate::http::{Browser, field_value, param};
use crate::oidc::add_user;
use crate::require_environment;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use samael::crypto::{CertificateDer, UrlVerifier};
use samael::metadata::EntityDescriptor;
use samael::service_provider::ServiceProviderBuilder;
use std::io::{Read, Write};
use std::str::FromStr;

const SP: &str = "https://sp.example/saml";
const ACS: &str = "http://localhost:9999/acs";
const SLO: &str = "http://localhost:9999/slo";

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn deflated(xml: &str) -> String {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(xml.as_bytes()).unwrap();
    STANDARD.encode(e.finish().unwrap())
}

fn inflated(b64: &str) -> String {
    let raw = STANDARD.decode(b64).unwrap();
    let mut out = String::new();
    flate2::read::DeflateDecoder::new(raw.as_slice())
        .read_to_string(&mut out)
        .unwrap();
    out
}

/// The text between `start` and the next `end` in `xml`.
fn between<'a>(xml: &'a str, start: &str, end: &str) -> &'a str {
    let s = xml
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {xml}"))
        + start.len();
    &xml[s..s + xml[s..].find(end).unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts three servers and nginx: make scale-test"]
async fn sp_initiated_sign_on_and_single_logout_across_nodes() {
    require_environment!();
    let c = Cluster::start();
    add_user(&c, "ivy");
    c.cli(&[
        "sp",
        "add",
        "--entity-id",
        SP,
        "--name",
        "Example SP",
        "--acs-url",
        ACS,
        "--slo-url",
        SLO,
        "--allow-unsigned-logout",
    ]);
    let b = Browser::new(&c);
    let md = b.get("/saml/metadata").await;
    assert_eq!(md.status, 200);
    let sp = ServiceProviderBuilder::default()
        .entity_id(SP.to_string())
        .acs_url(ACS.to_string())
        .idp_metadata(EntityDescriptor::from_str(&md.body).unwrap())
        .build()
        .unwrap();

    let request = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_scale1" Version="2.0" IssueInstant="{}" Destination="{}" AssertionConsumerServiceURL="{ACS}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"><saml:Issuer>{SP}</saml:Issuer></samlp:AuthnRequest>"#,
        now(),
        c.url("/saml/sso"),
    );
    let url = portcullis::protocol::oidc::uri::with_query(
        &c.url("/saml/sso"),
        &[("SAMLRequest", &deflated(&request)), ("RelayState", "r1")],
    );
    let first = b.get(&url).await;
    let (page, away) = b.follow(first, "ivy").await;
    assert_eq!((page.status, away), (200, None), "{}", page.body);
    assert!(
        page.body.contains(&format!("action=\"{ACS}\"")),
        "{}",
        page.body
    );
    assert_eq!(field_value(&page.body, "RelayState").as_deref(), Some("r1"));
    let response = field_value(&page.body, "SAMLResponse").expect("a SAMLResponse");
    let assertion = sp
        .parse_base64_response(&response, Some(&["_scale1"]))
        .expect("samael accepts the assertion");
    let name_id = assertion.subject.unwrap().name_id.unwrap().value;
    let xml = String::from_utf8(STANDARD.decode(&response).unwrap()).unwrap();
    let session_index = between(&xml, "SessionIndex=\"", "\"").to_string();
    assert_eq!(b.get("/account").await.status, 200, "signed in at the IdP");

    // The SP starts single logout; the IdP ends the session on every node
    // and answers over HTTP-Redirect, signed with the key in its metadata.
    let logout = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_lo1" Version="2.0" IssueInstant="{}" Destination="{}"><saml:Issuer>{SP}</saml:Issuer><saml:NameID>{name_id}</saml:NameID><samlp:SessionIndex>{session_index}</samlp:SessionIndex></samlp:LogoutRequest>"#,
        now(),
        c.url("/saml/slo"),
    );
    let url = portcullis::protocol::oidc::uri::with_query(
        &c.url("/saml/slo"),
        &[("SAMLRequest", &deflated(&logout)), ("RelayState", "bye")],
    );
    let done = b.get(&url).await;
    let back = done
        .location
        .unwrap_or_else(|| panic!("{} {}", done.status, done.body));
    assert!(back.starts_with(&format!("{SLO}?")), "{back}");
    let cert = CertificateDer::from(
        STANDARD
            .decode(between(&md.body, "<ds:X509Certificate>", "<"))
            .unwrap(),
    );
    let verifier = UrlVerifier::from_x509(&cert).unwrap();
    assert!(
        verifier
            .verify_signed_response_url(&url::Url::parse(&back).unwrap())
            .unwrap(),
        "the LogoutResponse's query signature"
    );
    let answer = inflated(&param(&back, "SAMLResponse").unwrap());
    assert!(answer.contains("InResponseTo=\"_lo1\""), "{answer}");
    assert!(
        answer.contains("urn:oasis:names:tc:SAML:2.0:status:Success"),
        "{answer}"
    );
    assert_eq!(param(&back, "RelayState").as_deref(), Some("bye"));
    for _ in 0..3 {
        let p = b.get("/account").await;
        assert_eq!(p.status, 303, "signed out, whichever node answers");
    }
    assert_eq!(b.nodes_seen(), 3, "{:?}", b.served_by);
}

//! SAML journeys with samael as the service provider and xmlsec1 as an
//! independent signature check.

use crate::common::{Backend, Browser, PASSWORD, TestServer, field_value};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis::domain::NameIdFormat;
use portcullis::service::Actor;
use portcullis::service::saml::registry::SpInput;
use samael::metadata::EntityDescriptor;
use samael::service_provider::{ServiceProvider, ServiceProviderBuilder};
use std::io::Write;
use std::str::FromStr;

pub const SP_ENTITY: &str = "https://sp.example/saml";
pub const ACS: &str = "http://localhost:9999/acs";

pub async fn register_sp(srv: &TestServer, format: NameIdFormat) {
    srv.services
        .add_sp(
            &Actor::cli(),
            SpInput {
                entity_id: Some(SP_ENTITY.into()),
                name: Some("Example SP".into()),
                acs_urls: vec![ACS.into()],
                nameid_format: Some(format),
                sign_response: true,
                sign_assertion: true,
                ..SpInput::default()
            },
        )
        .await
        .unwrap();
}

pub async fn idp_metadata(srv: &TestServer) -> String {
    let r = reqwest::get(srv.url("/saml/metadata")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("samlmetadata+xml")
    );
    r.text().await.unwrap()
}

pub async fn samael_sp(srv: &TestServer) -> ServiceProvider {
    let md = EntityDescriptor::from_str(&idp_metadata(srv).await).unwrap();
    ServiceProviderBuilder::default()
        .entity_id(SP_ENTITY.to_string())
        .acs_url(ACS.to_string())
        .idp_metadata(md)
        .allow_idp_initiated(true)
        .build()
        .unwrap()
}

pub fn authn_request(srv: &TestServer, id: &str, extra: &str) -> String {
    let now = chrono::DateTime::from_timestamp(srv.clock_now(), 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ");
    format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}" AssertionConsumerServiceURL="{ACS}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"{extra}><saml:Issuer>{SP_ENTITY}</saml:Issuer></samlp:AuthnRequest>"#,
        dest = srv.url("/saml/sso"),
    )
}

pub fn deflated(xml: &str) -> String {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(xml.as_bytes()).unwrap();
    STANDARD.encode(e.finish().unwrap())
}

pub fn redirect_url(srv: &TestServer, xml: &str, relay: &str) -> String {
    portcullis::protocol::oidc::uri::with_query(
        &srv.url("/saml/sso"),
        &[("SAMLRequest", &deflated(xml)), ("RelayState", relay)],
    )
}

/// Follows the browser until the IdP answers with the auto-posting form;
/// returns (SAMLResponse, RelayState).
pub async fn until_response(
    b: &Browser,
    mut page: crate::common::Page,
    user: &str,
) -> (String, Option<String>) {
    for _ in 0..6 {
        if page.status == 200 {
            let resp = field_value(&page.body, "SAMLResponse")
                .unwrap_or_else(|| panic!("no SAMLResponse: {}", page.body));
            assert!(
                page.body.contains(&format!("action=\"{ACS}\"")),
                "{}",
                page.body
            );
            return (resp, field_value(&page.body, "RelayState"));
        }
        let loc = page
            .location
            .clone()
            .unwrap_or_else(|| panic!("{} {}", page.status, page.body));
        if loc.starts_with("/login") {
            let form = b.get(&loc).await;
            let next = field_value(&form.body, "next").unwrap();
            page = b
                .post(
                    "/login",
                    &[
                        ("username", user),
                        ("password", PASSWORD),
                        ("csrf", &form.csrf()),
                        ("next", &next),
                    ],
                )
                .await;
        } else {
            page = b.get(&loc).await;
        }
    }
    panic!("no SAML response");
}

pub fn decode(resp: &str) -> String {
    String::from_utf8(STANDARD.decode(resp).unwrap()).unwrap()
}

fn xmlsec1_verifies(xml: &str, cert_b64: &str) -> Option<bool> {
    if std::process::Command::new("xmlsec1")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: xmlsec1 check: the xmlsec1 command is not installed");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let pem = format!("-----BEGIN CERTIFICATE-----\n{cert_b64}\n-----END CERTIFICATE-----\n");
    std::fs::write(dir.path().join("idp.pem"), pem).unwrap();
    std::fs::write(dir.path().join("r.xml"), xml).unwrap();
    let out = std::process::Command::new("xmlsec1")
        .args([
            "--verify",
            "--pubkey-cert-pem",
            "idp.pem",
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:protocol:Response",
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
            "r.xml",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    Some(out.status.success())
}

fn idp_cert(md: &str) -> String {
    let start = md.find("<ds:X509Certificate>").unwrap() + "<ds:X509Certificate>".len();
    md[start..start + md[start..].find('<').unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sp_initiated_sso_over_both_bindings_validates_in_samael_and_xmlsec1() {
    for backend in crate::common::backends() {
        let srv = TestServer::start_now(backend).await;
        srv.user("ivy").await;
        srv.services
            .create_group(&Actor::cli(), "ops", "")
            .await
            .unwrap();
        srv.services
            .set_membership(&Actor::cli(), "ops", "ivy", true)
            .await
            .unwrap();
        register_sp(&srv, NameIdFormat::Persistent).await;
        let sp = samael_sp(&srv).await;

        // HTTP-Redirect
        let b = srv.browser();
        let first = b
            .get_url(&redirect_url(
                &srv,
                &authn_request(&srv, "_req1", ""),
                "relay-1",
            ))
            .await;
        let (resp, relay) = until_response(&b, first, "ivy").await;
        assert_eq!(relay.as_deref(), Some("relay-1"));
        let assertion = sp
            .parse_base64_response(&resp, Some(&["_req1"]))
            .unwrap_or_else(|e| panic!("{backend:?}: samael refused: {e}"));
        let name_id = assertion
            .subject
            .as_ref()
            .unwrap()
            .name_id
            .as_ref()
            .unwrap();
        assert_eq!(
            name_id.format.as_deref(),
            Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")
        );
        assert!(
            !name_id.value.contains("ivy"),
            "persistent NameIDs are opaque"
        );
        let xml = decode(&resp);
        assert!(xml.contains("InResponseTo=\"_req1\""));
        assert!(xml.contains(&format!("Recipient=\"{ACS}\"")));
        assert!(xml.contains(&format!("<saml:Audience>{SP_ENTITY}</saml:Audience>")));
        assert!(xml.contains("SessionNotOnOrAfter="));
        assert!(xml.contains("SessionIndex="));
        assert!(xml.contains("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"));
        assert!(xml.contains(">ivy@example.test<"), "email attribute");
        assert!(xml.contains(">ops<"), "groups attribute");
        assert_eq!(
            xml.matches("<ds:SignatureValue>").count(),
            2,
            "response and assertion signed"
        );
        if let Some(ok) = xmlsec1_verifies(&xml, &idp_cert(&idp_metadata(&srv).await)) {
            assert!(ok, "xmlsec1 verifies the response signature");
            let tampered = xml.replace("ivy@example.test", "eve@example.test");
            assert_eq!(
                xmlsec1_verifies(&tampered, &idp_cert(&idp_metadata(&srv).await)),
                Some(false)
            );
        }

        // HTTP-POST, with the existing session: no second sign-in.
        let posted = b
            .post(
                "/saml/sso",
                &[
                    (
                        "SAMLRequest",
                        &STANDARD.encode(authn_request(&srv, "_req2", "")),
                    ),
                    ("RelayState", "relay-2"),
                ],
            )
            .await;
        assert_eq!(posted.status, 303, "POST continues on a same-site GET");
        let page = b.get(posted.location.as_deref().unwrap()).await;
        assert_eq!(page.status, 200);
        let (resp2, relay2) = until_response(&b, page, "ivy").await;
        assert_eq!(relay2.as_deref(), Some("relay-2"));
        let a2 = sp.parse_base64_response(&resp2, Some(&["_req2"])).unwrap();
        assert_eq!(
            a2.subject.unwrap().name_id.unwrap().value,
            name_id.value,
            "stable per SP"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_initiated_sso() {
    let srv = TestServer::start_now(Backend::Embedded).await;
    srv.user("jay").await;
    register_sp(&srv, NameIdFormat::Email).await;
    let sp = samael_sp(&srv).await;
    let b = srv.browser();
    let url = portcullis::protocol::oidc::uri::with_query(
        &srv.url("/saml/sso/init"),
        &[("sp", SP_ENTITY), ("RelayState", "/dashboard")],
    );
    let first = b.get_url(&url).await;
    let (resp, relay) = until_response(&b, first, "jay").await;
    assert_eq!(relay.as_deref(), Some("/dashboard"));
    let a = sp.parse_base64_response(&resp, None).unwrap();
    assert_eq!(
        a.subject.unwrap().name_id.unwrap().value,
        "jay@example.test"
    );
    assert!(!decode(&resp).contains("InResponseTo"));

    // The account page lists the application with a working link.
    let account = b.get("/account").await;
    assert!(account.body.contains(">Example SP</a>"), "{}", account.body);
    let start = account.body.find("href=\"/saml/sso/init?").unwrap() + 6;
    let link =
        account.body[start..start + account.body[start..].find('"').unwrap()].replace("&amp;", "&");
    let page = b.get(&link).await;
    assert!(
        field_value(&page.body, "SAMLResponse").is_some(),
        "{}",
        page.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused() {
    let srv = TestServer::start_now(Backend::Embedded).await;
    srv.user("kai").await;
    register_sp(&srv, NameIdFormat::Persistent).await;
    let b = srv.browser();
    b.login("kai", PASSWORD).await;

    // Unknown SP and unregistered ACS: a page, nothing posted anywhere.
    let unknown = authn_request(&srv, "_u1", "").replace(SP_ENTITY, "https://stranger.example");
    let page = b.get_url(&redirect_url(&srv, &unknown, "")).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("not registered"));
    let bad_acs = authn_request(&srv, "_u2", "").replace(ACS, "https://evil.example/acs");
    let page = b.get_url(&redirect_url(&srv, &bad_acs, "")).await;
    assert_eq!(page.status, 400);
    assert!(!page.body.contains("evil.example"));

    // Replayed request ID and an expired IssueInstant: SAML error statuses.
    let ok = b
        .get_url(&redirect_url(&srv, &authn_request(&srv, "_once", ""), ""))
        .await;
    assert!(field_value(&ok.body, "SAMLResponse").is_some());
    let replay = b
        .get_url(&redirect_url(&srv, &authn_request(&srv, "_once", ""), ""))
        .await;
    let xml = decode(&field_value(&replay.body, "SAMLResponse").unwrap());
    assert!(
        xml.contains("urn:oasis:names:tc:SAML:2.0:status:RequestDenied"),
        "{xml}"
    );
    assert!(!xml.contains("<saml:Assertion"));
    let old = authn_request(&srv, "_old", "");
    srv.clock.advance(chrono::Duration::minutes(30));
    let page = b.get_url(&redirect_url(&srv, &old, "")).await;
    let xml = decode(&field_value(&page.body, "SAMLResponse").unwrap());
    assert!(
        xml.contains("RequestDenied") && xml.contains("expired"),
        "{xml}"
    );
    srv.clock.advance(chrono::Duration::minutes(-30));

    // Oversized, deflate bombs and DTDs: clear refusals.
    let huge = "A".repeat(100 * 1024);
    let page = b.post("/saml/sso", &[("SAMLRequest", huge.as_str())]).await;
    assert!(page.status == 400 || page.status == 413, "{}", page.status);
    let bomb = deflated(&"<x>".repeat(200_000));
    let page = b
        .get_url(&portcullis::protocol::oidc::uri::with_query(
            &srv.url("/saml/sso"),
            &[("SAMLRequest", bomb.as_str())],
        ))
        .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("size limit"), "{}", page.body);
    let dtd = format!(
        "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{}",
        authn_request(&srv, "_dtd", "")
    );
    let page = b.get_url(&redirect_url(&srv, &dtd, "")).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("DTD"));
    let page = b.get_url(&srv.url("/saml/sso?SAMLRequest=%%%")).await;
    assert_eq!(page.status, 400);
    let page = b.get("/saml/sso").await;
    assert_eq!(page.status, 400);

    // IsPassive without a session: NoPassive.
    let anon = srv.browser();
    let page = anon
        .get_url(&redirect_url(
            &srv,
            &authn_request(&srv, "_p", " IsPassive=\"true\""),
            "",
        ))
        .await;
    let xml = decode(&field_value(&page.body, "SAMLResponse").unwrap());
    assert!(
        xml.contains("urn:oasis:names:tc:SAML:2.0:status:NoPassive"),
        "{xml}"
    );

    // ForceAuthn: the signed-in user must sign in again.
    let page = b
        .get_url(&redirect_url(
            &srv,
            &authn_request(&srv, "_f", " ForceAuthn=\"true\""),
            "",
        ))
        .await;
    let loc = page.location.unwrap();
    assert!(
        loc.starts_with("/login") && loc.contains("reauth=1"),
        "{loc}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_lists_the_next_certificate_during_rollover() {
    let srv = TestServer::start_now(Backend::Embedded).await;
    let md = idp_metadata(&srv).await;
    let ed = EntityDescriptor::from_str(&md).unwrap();
    assert_eq!(
        ed.entity_id.as_deref(),
        Some(srv.url("/saml/metadata").as_str())
    );
    let idp = &ed.idp_sso_descriptors.as_ref().unwrap()[0];
    assert_eq!(idp.key_descriptors.len(), 1);
    let bindings: Vec<&str> = idp
        .single_sign_on_services
        .iter()
        .map(|s| s.binding.as_str())
        .collect();
    assert!(bindings.contains(&"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"));
    assert!(bindings.contains(&"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"));
    let current = idp_cert(&md);

    srv.services
        .rotate_saml_cert(&Actor::cli(), false)
        .await
        .unwrap();
    let md2 = idp_metadata(&srv).await;
    let ed2 = EntityDescriptor::from_str(&md2).unwrap();
    assert_eq!(
        ed2.idp_sso_descriptors.unwrap()[0].key_descriptors.len(),
        2,
        "current and next"
    );
    assert_eq!(
        idp_cert(&md2),
        current,
        "the current certificate still comes first"
    );
    srv.clock.advance(chrono::Duration::hours(1));
    assert_ne!(
        idp_cert(&idp_metadata(&srv).await),
        current,
        "the next one signs after publish_ahead"
    );
}

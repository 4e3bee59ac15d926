//! Single logout: SP-initiated through a chain of SPs, and IdP-initiated.

use crate::common::{Backend, Browser, TestServer, field_value};
use crate::saml::{authn_request, decode, deflated, until_response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis::service::Actor;
use portcullis::service::saml::registry::SpInput;
use samael::crypto::{CertificateDer, Crypto, CryptoProvider, UrlVerifier};
use std::io::Read;

pub const A: &str = "https://a.example/saml";
pub const B: &str = "https://b.example/saml";

pub async fn setup() -> TestServer {
    setup_on(Backend::Embedded).await
}

/// A (Redirect SLO, no certificate, unsigned logout allowed) and B (POST
/// SLO, no certificate, no opt-in), and the user max.
pub async fn setup_on(backend: Backend) -> TestServer {
    let srv = TestServer::start_now(backend).await;
    srv.user("max").await;
    srv.services
        .add_sp(
            &Actor::cli(),
            SpInput {
                entity_id: Some(A.into()),
                acs_urls: vec![crate::saml::ACS.into()],
                slo_url: Some("http://localhost:9999/a/slo".into()),
                allow_unsigned_logout: true,
                sign_response: true,
                sign_assertion: true,
                ..SpInput::default()
            },
        )
        .await
        .unwrap();
    let b_metadata = format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{B}"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="http://localhost:9999/b/slo"/><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>"#,
        acs = crate::saml::ACS
    );
    srv.services
        .add_sp(
            &Actor::cli(),
            SpInput {
                metadata: Some(b_metadata),
                sign_response: true,
                sign_assertion: true,
                ..SpInput::default()
            },
        )
        .await
        .unwrap();
    srv
}

/// Signs in to SP `entity` and returns the SessionIndex it received.
pub async fn sso(srv: &TestServer, b: &Browser, entity: &str, id: &str) -> (String, String) {
    let xml = authn_request(srv, id, "").replace(crate::saml::SP_ENTITY, entity);
    let first = b.get_url(&crate::saml::redirect_url(srv, &xml, "")).await;
    let (resp, _) = until_response(b, first, "max").await;
    let x = decode(&resp);
    let grab = |attr: &str| {
        let start = x.find(attr).unwrap() + attr.len();
        x[start..start + x[start..].find('"').unwrap()].to_string()
    };
    let name_id_start = x.find("<saml:NameID").unwrap();
    let nid = &x[name_id_start..];
    let name_id = nid[nid.find('>').unwrap() + 1..nid.find("</saml:NameID>").unwrap()].to_string();
    (grab("SessionIndex=\""), name_id)
}

pub fn logout_request(
    srv: &TestServer,
    issuer: &str,
    id: &str,
    name_id: &str,
    session_index: &str,
) -> String {
    let now = chrono::DateTime::from_timestamp(srv.clock_now(), 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ");
    format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}"><saml:Issuer>{issuer}</saml:Issuer><saml:NameID>{name_id}</saml:NameID><samlp:SessionIndex>{session_index}</samlp:SessionIndex></samlp:LogoutRequest>"#,
        dest = srv.url("/saml/slo")
    )
}

fn idp_cert(md: &str) -> CertificateDer {
    let start = md.find("<ds:X509Certificate>").unwrap() + "<ds:X509Certificate>".len();
    CertificateDer::from(
        STANDARD
            .decode(&md[start..start + md[start..].find('<').unwrap()])
            .unwrap(),
    )
}

fn inflate(b64: &str) -> String {
    let raw = STANDARD.decode(b64).unwrap();
    let mut out = String::new();
    flate2::read::DeflateDecoder::new(raw.as_slice())
        .read_to_string(&mut out)
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sp_initiated_logout_tells_the_other_sp_and_answers_the_requester() {
    let srv = setup().await;
    let cert = idp_cert(&crate::saml::idp_metadata(&srv).await);
    let b = srv.browser();
    let (index_a, name_a) = sso(&srv, &b, A, "_a1").await;
    sso(&srv, &b, B, "_b1").await;
    assert_eq!(b.get("/account").await.status, 200);

    // A starts single logout over HTTP-Redirect.
    let url = portcullis::protocol::oidc::uri::with_query(
        &srv.url("/saml/slo"),
        &[
            (
                "SAMLRequest",
                &deflated(&logout_request(&srv, A, "_lo1", &name_a, &index_a)),
            ),
            ("RelayState", "back-to-a"),
        ],
    );
    let page = b.get_url(&url).await;
    assert_eq!(
        b.get("/account").await.status,
        303,
        "the IdP session ended at once"
    );

    // The IdP asks B (HTTP-POST, XML-signed) to log out too.
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("action=\"http://localhost:9999/b/slo\""),
        "{}",
        page.body
    );
    let to_b = decode(&field_value(&page.body, "SAMLRequest").unwrap());
    assert!(
        to_b.contains("<samlp:LogoutRequest") && to_b.contains("<samlp:SessionIndex>"),
        "{to_b}"
    );
    Crypto::verify_signed_xml(&to_b, &cert, Some("ID"))
        .expect("the LogoutRequest to B is signed by the IdP");
    let chain = field_value(&page.body, "RelayState").unwrap();
    let request_id = {
        let s = to_b.find(" ID=\"").unwrap() + 5;
        to_b[s..s + to_b[s..].find('"').unwrap()].to_string()
    };

    // B answers; the IdP then answers A over HTTP-Redirect, query-signed.
    let now = chrono::DateTime::from_timestamp(srv.clock_now(), 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ");
    let b_response = format!(
        r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_br" InResponseTo="{request_id}" Version="2.0" IssueInstant="{now}"><saml:Issuer>{B}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>"#
    );
    let done = b
        .post(
            "/saml/slo",
            &[
                ("SAMLResponse", &STANDARD.encode(b_response)),
                ("RelayState", &chain),
            ],
        )
        .await;
    let to_a = done.location.expect("a redirect to A");
    assert!(to_a.starts_with("http://localhost:9999/a/slo?"), "{to_a}");
    let verifier = UrlVerifier::from_x509(&cert).unwrap();
    assert!(
        verifier
            .verify_signed_response_url(&url::Url::parse(&to_a).unwrap())
            .unwrap(),
        "query signature"
    );
    assert_eq!(
        crate::oidc::param(&to_a, "RelayState").as_deref(),
        Some("back-to-a")
    );
    let response = inflate(&crate::oidc::param(&to_a, "SAMLResponse").unwrap());
    assert!(response.contains("InResponseTo=\"_lo1\""), "{response}");
    assert!(response.contains("urn:oasis:names:tc:SAML:2.0:status:Success"));

    // A replayed chain step goes nowhere.
    let again = b
        .post(
            "/saml/slo",
            &[
                ("SAMLResponse", &STANDARD.encode("<x/>")),
                ("RelayState", &chain),
            ],
        )
        .await;
    assert_eq!(again.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_at_the_idp_tells_every_sp() {
    let srv = setup().await;
    let b = srv.browser();
    sso(&srv, &b, B, "_b2").await;
    let account = b.get("/account").await;
    let page = b.post("/logout", &[("csrf", &account.csrf())]).await;
    assert_eq!(page.status, 200, "a form to B");
    assert!(page.body.contains("http://localhost:9999/b/slo"));
    assert_eq!(b.get("/account").await.status, 303);
    let to_b = decode(&field_value(&page.body, "SAMLRequest").unwrap());
    let request_id = {
        let s = to_b.find(" ID=\"").unwrap() + 5;
        to_b[s..s + to_b[s..].find('"').unwrap()].to_string()
    };
    let now = chrono::DateTime::from_timestamp(srv.clock_now(), 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ");
    let reply = format!(
        r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r" InResponseTo="{request_id}" Version="2.0" IssueInstant="{now}"><saml:Issuer>{B}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>"#
    );
    let chain = field_value(&page.body, "RelayState").unwrap();
    let done = b
        .post(
            "/saml/slo",
            &[
                ("SAMLResponse", &STANDARD.encode(reply)),
                ("RelayState", &chain),
            ],
        )
        .await;
    assert_eq!(done.location.as_deref(), Some("/login?signed_out=1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_logout_messages_get_a_page() {
    let srv = setup().await;
    let b = srv.browser();
    for q in ["", "SAMLRequest=%%%", "SAMLRequest=AAAA&SAMLResponse=AAAA"] {
        let page = b.get(&format!("/saml/slo?{q}")).await;
        assert_eq!(page.status, 400, "{q}");
    }
    let stranger = logout_request(&srv, "https://stranger.example", "_s", "n", "i");
    let page = b
        .get_url(&portcullis::protocol::oidc::uri::with_query(
            &srv.url("/saml/slo"),
            &[("SAMLRequest", &deflated(&stranger))],
        ))
        .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("not registered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_logout_also_runs_the_saml_chain_and_ends_at_the_clients_page() {
    let srv = setup().await;
    let b = srv.browser();
    sso(&srv, &b, B, "_b3").await;
    let c = crate::oidc::client(&srv, crate::oidc::draft("rp")).await;
    let url = portcullis::protocol::oidc::uri::with_query(
        &srv.url("/end-session"),
        &[
            ("client_id", c.client.client_id.as_str()),
            ("post_logout_redirect_uri", "http://localhost:9999/bye"),
        ],
    );
    let confirm = b.get_url(&url).await;
    let id = field_value(&confirm.body, "id").unwrap();
    let page = b
        .post(
            "/end-session/confirm",
            &[("csrf", &confirm.csrf()), ("id", &id)],
        )
        .await;
    assert!(
        page.body.contains("http://localhost:9999/b/slo"),
        "B is told first: {}",
        page.body
    );
    let to_b = decode(&field_value(&page.body, "SAMLRequest").unwrap());
    let s = to_b.find(" ID=\"").unwrap() + 5;
    let request_id = &to_b[s..s + to_b[s..].find('"').unwrap()];
    let now = chrono::DateTime::from_timestamp(srv.clock_now(), 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ");
    let reply = format!(
        r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r3" InResponseTo="{request_id}" Version="2.0" IssueInstant="{now}"><saml:Issuer>{B}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>"#
    );
    let chain = field_value(&page.body, "RelayState").unwrap();
    let done = b
        .post(
            "/saml/slo",
            &[
                ("SAMLResponse", &STANDARD.encode(reply)),
                ("RelayState", &chain),
            ],
        )
        .await;
    assert_eq!(
        done.location.as_deref(),
        Some("http://localhost:9999/bye"),
        "then the OIDC client's page"
    );
    assert_eq!(b.get("/account").await.status, 303);
}

//! Signed AuthnRequests: verified over both bindings, required when the SP
//! says so, and refused when tampered with. Also the `sp` CLI.

use crate::common::{Backend, PASSWORD, TestServer, field_value};
use crate::saml::{ACS, SP_ENTITY, authn_request, decode, deflated};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::pkey::{PKey, Private};
use portcullis::service::Actor;
use portcullis::service::saml::registry::SpInput;
use samael::crypto::{Crypto, CryptoProvider};
use samael::idp::{CertificateParams, IdentityProvider};
use std::str::FromStr;

pub struct SpKey {
    pub pkey: PKey<Private>,
    pub der: Vec<u8>,
    pub cert_b64: String,
}

pub fn sp_key() -> SpKey {
    let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
    let der = rsa.private_key_to_der().unwrap();
    let pkey = PKey::from_rsa(rsa).unwrap();
    let idp = IdentityProvider::from_rsa_private_key_der(&der).unwrap();
    let cert = idp
        .create_certificate(&CertificateParams {
            common_name: "sp.example",
            issuer_name: "sp.example",
            days_until_expiration: 30,
        })
        .unwrap();
    SpKey {
        pkey,
        der,
        cert_b64: STANDARD.encode(cert.der_data()),
    }
}

pub async fn setup(key: &SpKey) -> TestServer {
    let srv = TestServer::start_now(Backend::Embedded).await;
    srv.user("lou").await;
    srv.services
        .add_sp(
            &Actor::cli(),
            SpInput {
                entity_id: Some(SP_ENTITY.into()),
                acs_urls: vec![ACS.into()],
                signing_cert: Some(key.cert_b64.clone()),
                want_authn_requests_signed: Some(true),
                sign_response: true,
                sign_assertion: true,
                ..SpInput::default()
            },
        )
        .await
        .unwrap();
    srv
}

pub fn status_of(body: &str) -> String {
    decode(&field_value(body, "SAMLResponse").expect("a SAML response"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_redirect_requests_are_verified_and_tampering_is_refused() {
    let key = sp_key();
    let srv = setup(&key).await;
    let b = srv.browser();
    b.login("lou", PASSWORD).await;

    let unsigned = crate::saml::redirect_url(&srv, &authn_request(&srv, "_r0", ""), "");
    let xml = status_of(&b.get_url(&unsigned).await.body);
    assert!(
        xml.contains("RequestDenied") && xml.contains("must be signed"),
        "{xml}"
    );

    let base = url::Url::parse_with_params(
        &srv.url("/saml/sso"),
        &[
            ("SAMLRequest", deflated(&authn_request(&srv, "_r1", ""))),
            ("RelayState", "r".into()),
        ],
    )
    .unwrap();
    let signed = samael::crypto::sign_url(base, &key.pkey).unwrap();
    let page = b.get_url(signed.as_str()).await;
    let xml = status_of(&page.body);
    assert!(xml.contains("status:Success"), "{xml}");

    // Change the RelayState after signing: the signature no longer holds.
    let base = url::Url::parse_with_params(
        &srv.url("/saml/sso"),
        &[
            ("SAMLRequest", deflated(&authn_request(&srv, "_r2", ""))),
            ("RelayState", "r".into()),
        ],
    )
    .unwrap();
    let signed = samael::crypto::sign_url(base, &key.pkey)
        .unwrap()
        .to_string();
    let tampered = signed.replace("RelayState=r", "RelayState=evil");
    let xml = status_of(&b.get_url(&tampered).await.body);
    assert!(
        xml.contains("RequestDenied") && xml.contains("signature is not valid"),
        "{xml}"
    );

    // Signed by somebody else's key.
    let stranger = sp_key();
    let base = url::Url::parse_with_params(
        &srv.url("/saml/sso"),
        &[("SAMLRequest", deflated(&authn_request(&srv, "_r3", "")))],
    )
    .unwrap();
    let forged = samael::crypto::sign_url(base, &stranger.pkey).unwrap();
    let xml = status_of(&b.get_url(forged.as_str()).await.body);
    assert!(xml.contains("RequestDenied"), "{xml}");
}

pub fn signed_post_request(srv: &TestServer, key: &SpKey, id: &str) -> String {
    let template = portcullis::protocol::saml::response::signature_template(id, &key.cert_b64);
    let xml = authn_request(srv, id, "").replacen(
        "</saml:Issuer>",
        &format!("</saml:Issuer>{template}"),
        1,
    );
    Crypto::sign_xml(&xml, &key.der).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_post_requests_are_verified_and_tampering_is_refused() {
    let key = sp_key();
    let srv = setup(&key).await;
    let b = srv.browser();
    b.login("lou", PASSWORD).await;

    let post = |xml: String| {
        let b = &b;
        async move {
            let r = b
                .post(
                    "/saml/sso",
                    &[("SAMLRequest", STANDARD.encode(xml).as_str())],
                )
                .await;
            // A good request continues on a same-site GET; a refused one is
            // answered at once with an error Response.
            match r.location.as_deref() {
                Some(to) => b.get(to).await,
                None => r,
            }
        }
    };
    let ok = post(signed_post_request(&srv, &key, "_p1")).await;
    assert!(status_of(&ok.body).contains("status:Success"));

    let tampered =
        signed_post_request(&srv, &key, "_p2").replace(ACS, "http://localhost:9999/acs?x");
    let page = b
        .post(
            "/saml/sso",
            &[("SAMLRequest", STANDARD.encode(tampered).as_str())],
        )
        .await;
    // The altered ACS URL is not registered: refused before anything is sent.
    assert_eq!(page.status, 400);

    let tampered = signed_post_request(&srv, &key, "_p3").replace(
        "Version=\"2.0\" IssueInstant",
        "Version=\"2.0\" ForceAuthn=\"false\" IssueInstant",
    );
    let xml = status_of(&post(tampered).await.body);
    assert!(
        xml.contains("RequestDenied") && xml.contains("signature is not valid"),
        "{xml}"
    );

    let unsigned = post(authn_request(&srv, "_p4", "")).await;
    assert!(status_of(&unsigned.body).contains("must be signed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sp_cli_registers_from_metadata_with_default_mappings() {
    let env = crate::common::TestEnv::new(Backend::Embedded);
    let dir = tempfile::tempdir().unwrap();
    let config = crate::cli::config_for(dir.path(), &env);
    let metadata = dir.path().join("sp.xml");
    std::fs::write(
        &metadata,
        format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://wiki.example/saml"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{ACS}" index="1"/></md:SPSSODescriptor></md:EntityDescriptor>"#
        ),
    )
    .unwrap();
    let _srv = TestServer::start_with(env).await;
    let run = |args: &[&str]| crate::cli::run_cli(&config, args);
    let (ok, out, err) = run(&[
        "sp",
        "add",
        "--metadata",
        metadata.to_str().unwrap(),
        "--name",
        "Wiki",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["entity_id"], "https://wiki.example/saml");
    assert_eq!(v["nameid_format"], "email");
    let sources: Vec<&str> = v["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["source"].as_str().unwrap())
        .collect();
    for s in ["email", "name", "groups", "roles"] {
        assert!(sources.contains(&s), "{sources:?}");
    }
    let (ok, _, err) = run(&["sp", "add", "--metadata", metadata.to_str().unwrap()]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, out, _) = run(&[
        "sp",
        "add",
        "--entity-id",
        "https://crm.example",
        "--acs-url",
        "https://crm.example/acs",
        "--nameid-format",
        "persistent",
        "--attribute",
        "email=mail",
        "--attribute",
        "groups=memberOf",
        "--json",
    ]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["attributes"][1]["name"], "memberOf");
    let (ok, _, err) = run(&[
        "sp",
        "add",
        "--entity-id",
        "x",
        "--acs-url",
        "https://x/acs",
        "--attribute",
        "password=pw",
    ]);
    assert!(!ok && err.contains("unknown attribute source"), "{err}");
    let (ok, out, _) = run(&["sp", "list", "--json"]);
    assert!(ok && out.contains("wiki.example") && out.contains("crm.example"));
    let (ok, _, _) = run(&["sp", "remove", "https://crm.example"]);
    assert!(ok);
    let (ok, _, err) = run(&["sp", "show", "https://crm.example"]);
    assert!(!ok && err.contains("no service provider"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assertions_are_encrypted_for_an_sp_with_an_encryption_certificate() {
    let key = sp_key();
    let srv = TestServer::start_now(Backend::Embedded).await;
    srv.user("mo").await;
    let metadata = format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{SP_ENTITY}"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{ACS}" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>"#,
        cert = key.cert_b64
    );
    srv.services
        .add_sp(
            &Actor::cli(),
            SpInput {
                metadata: Some(metadata),
                sign_response: true,
                sign_assertion: true,
                ..SpInput::default()
            },
        )
        .await
        .unwrap();
    let b = srv.browser();
    let first = b
        .get_url(&crate::saml::redirect_url(
            &srv,
            &authn_request(&srv, "_e1", ""),
            "",
        ))
        .await;
    let (resp, _) = crate::saml::until_response(&b, first, "mo").await;
    let xml = decode(&resp);
    assert!(xml.contains("<saml:EncryptedAssertion>"), "{xml}");
    assert!(!xml.contains("mo@example.test"), "nothing readable leaks");
    assert!(!xml.contains("<saml:Assertion"));

    let md = samael::metadata::EntityDescriptor::from_str(&crate::saml::idp_metadata(&srv).await)
        .unwrap();
    let sp = samael::service_provider::ServiceProviderBuilder::default()
        .entity_id(SP_ENTITY.to_string())
        .acs_url(ACS.to_string())
        .idp_metadata(md)
        .key(key.pkey.clone())
        .build()
        .unwrap();
    let assertion = sp
        .parse_base64_response(&resp, Some(&["_e1"]))
        .expect("samael decrypts and verifies");
    let attrs = assertion.attribute_statements.unwrap();
    let email = attrs[0]
        .attributes
        .iter()
        .find(|a| a.name.as_deref() == Some("email"))
        .unwrap();
    assert_eq!(email.values[0].value.as_deref(), Some("mo@example.test"));
}

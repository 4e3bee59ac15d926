//! Single logout ends a session only for the SP it concerns: each SP gets a
//! SessionIndex of its own (not the OIDC `sid`), a LogoutRequest must name
//! the NameID that SP was given, and unsigned logout is accepted only from
//! SPs registered to allow it.

use crate::common::{Backend, Browser, TestServer, backends, field_value};
use crate::oidc::{
    VERIFIER, authorize_as, authorize_url, client, draft, flow_payload, param, redeem,
};
use crate::saml::{decode, deflated};
use crate::saml_slo::{A, B, logout_request, setup_on, sso};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::io::Read;

fn inflate(b64: &str) -> String {
    let raw = STANDARD.decode(b64).unwrap();
    let mut out = String::new();
    flate2::read::DeflateDecoder::new(raw.as_slice())
        .read_to_string(&mut out)
        .unwrap();
    out
}

/// Sends an unsigned LogoutRequest over HTTP-Redirect.
async fn logout(b: &Browser, srv: &TestServer, xml: &str) -> crate::common::Page {
    b.get_url(&portcullis::protocol::oidc::uri::with_query(
        &srv.url("/saml/slo"),
        &[("SAMLRequest", &deflated(xml))],
    ))
    .await
}

/// The `sid` an OIDC relying party receives for the browser's session.
async fn oidc_sid(srv: &TestServer, b: &Browser) -> String {
    let c = client(srv, draft("rp")).await;
    let back = authorize_as(b, &authorize_url(srv, &c, &[]), "max").await;
    let code = param(&back, "code").unwrap();
    let (status, tokens) = redeem(srv, &c, &code, VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    flow_payload(tokens["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn alive(b: &Browser) -> bool {
    b.get("/account").await.status == 200
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_only_what_the_sp_names_with_its_own_index_and_name_id() {
    for backend in backends() {
        scoped_logout(backend).await;
    }
}

async fn scoped_logout(backend: Backend) {
    let srv = setup_on(backend).await;
    let b = srv.browser();
    let (index_a, name_a) = sso(&srv, &b, A, "_a1").await;
    let (index_b, name_b) = sso(&srv, &b, B, "_b1").await;
    let sid = oidc_sid(&srv, &b).await;
    assert_ne!(index_a, index_b, "a SessionIndex per SP");
    assert_ne!(index_a, sid, "the SessionIndex is not the OIDC sid");
    assert_ne!(index_b, sid);

    // The reported attack: an unsigned request naming B (no certificate)
    // with the sid every relying party sees, and no NameID.
    let no_name = |issuer: &str, id: &str, index: &str| {
        let x = logout_request(&srv, issuer, id, "-", index);
        x.replace("<saml:NameID>-</saml:NameID>", "")
    };
    let page = logout(&b, &srv, &no_name(B, "_x1", &sid)).await;
    assert_eq!(page.status, 200, "a refusal posted to B: {}", page.body);
    assert!(
        page.body.contains("http://localhost:9999/b/slo"),
        "{}",
        page.body
    );
    let refusal = decode(&field_value(&page.body, "SAMLResponse").unwrap());
    assert!(
        refusal.contains("<samlp:LogoutResponse")
            && refusal.contains("status:Requester")
            && refusal.contains("status:RequestDenied")
            && refusal.contains("unsigned logout requests are not accepted")
            && refusal.contains("InResponseTo=\"_x1\""),
        "{refusal}"
    );
    assert!(
        alive(&b).await,
        "B may not log out unsigned without the opt-in"
    );
    // Even B's own, complete request is refused unsigned.
    let page = logout(&b, &srv, &logout_request(&srv, B, "_x2", &name_b, &index_b)).await;
    assert!(
        page.body.contains("http://localhost:9999/b/slo"),
        "{}",
        page.body
    );
    assert!(alive(&b).await);

    // A may log out unsigned, but only with what A was given.
    let page = logout(&b, &srv, &no_name(A, "_x3", &index_a)).await;
    let to_a = page.location.expect("a refusal sent back to A");
    assert!(to_a.starts_with("http://localhost:9999/a/slo?"), "{to_a}");
    let refusal = inflate(&param(&to_a, "SAMLResponse").unwrap());
    assert!(
        refusal.contains("status:RequestDenied") && refusal.contains("names no NameID"),
        "{refusal}"
    );
    assert!(alive(&b).await, "no NameID, no logout");
    for (what, name, index) in [
        ("the OIDC sid", name_a.as_str(), sid.as_str()),
        ("B's SessionIndex", name_a.as_str(), index_b.as_str()),
        ("another NameID", name_b.as_str(), index_a.as_str()),
        ("an unknown NameID", "someone-else", index_a.as_str()),
    ] {
        logout(&b, &srv, &logout_request(&srv, A, "_x4", name, index)).await;
        assert!(alive(&b).await, "{what} ends nothing");
    }
    let page = logout(&b, &srv, &logout_request(&srv, A, "_x5", &name_a, &index_a)).await;
    assert!(page.status == 200 || page.status == 303, "{}", page.body);
    assert!(!alive(&b).await, "A's own index and NameID end the session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sp_cli_sets_the_unsigned_logout_opt_in() {
    let env = crate::common::TestEnv::new(Backend::Embedded);
    let dir = tempfile::tempdir().unwrap();
    let config = crate::cli::config_for(dir.path(), &env);
    let cert = dir.path().join("sp.pem");
    let key = crate::saml_signed::sp_key();
    std::fs::write(
        &cert,
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            key.cert_b64
        ),
    )
    .unwrap();
    let _srv = TestServer::start_with(env).await;
    let run = |args: &[&str]| crate::cli::run_cli(&config, args);
    let add = ["sp", "add", "--acs-url", "https://x.example/acs", "--json"];
    let (ok, out, err) = run(&[&add[..], &["--entity-id", "https://a.example"]].concat());
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["allow_unsigned_logout"], false, "off by default");
    let (ok, out, err) = run(&[
        &add[..],
        &[
            "--entity-id",
            "https://b.example",
            "--allow-unsigned-logout",
        ],
    ]
    .concat());
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["allow_unsigned_logout"], true);
    let (ok, _, err) = run(&[
        &add[..],
        &[
            "--entity-id",
            "https://c.example",
            "--allow-unsigned-logout",
            "--signing-cert",
            cert.to_str().unwrap(),
        ],
    ]
    .concat());
    assert!(!ok && err.contains("signs its logout requests"), "{err}");
}

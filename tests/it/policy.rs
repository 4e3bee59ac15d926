//! MFA required by an application, by a service provider, or everywhere.

use crate::common::{Backend, PASSWORD, TestEnv, TestServer, field_value};
use portcullis::service::Actor;
use portcullis::service::oidc::clients::ClientOptions;
use portcullis::service::saml::registry::SpInput;

async fn mfa_client(srv: &TestServer) -> portcullis::service::oidc::clients::NewClient {
    let opts = ClientOptions {
        consent_required: false,
        required_acr: Some("mfa".into()),
        ..ClientOptions::default()
    };
    srv.services
        .create_client(&Actor::cli(), crate::oidc::draft("payroll"), opts)
        .await
        .unwrap()
}

/// Signs in again through the page the IdP sent the browser to.
async fn password_again(b: &crate::common::Browser, loc: &str, user: &str) -> crate::common::Page {
    let form = b.get(loc).await;
    let next = field_value(&form.body, "next").unwrap();
    let done = b
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
    b.get(done.location.as_deref().unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_requires_mfa_refuses_password_only_sessions() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("pat").await;
    let c = mfa_client(&srv).await;
    let b = srv.browser();
    b.login("pat", PASSWORD).await;
    let page = b.get_url(&crate::oidc::authorize_url(&srv, &c, &[])).await;
    let loc = page.location.unwrap();
    assert!(
        loc.contains("reauth=1"),
        "first, a chance to sign in more strongly: {loc}"
    );
    let back = password_again(&b, &loc, "pat").await;
    let to = back.location.unwrap();
    assert_eq!(
        crate::oidc::param(&to, "error").as_deref(),
        Some("access_denied")
    );
    assert!(
        crate::oidc::param(&to, "error_description")
            .unwrap()
            .contains("requires signing in with urn:portcullis:acr:mfa")
    );
    // Other clients are not affected.
    let plain = crate::oidc::client(&srv, crate::oidc::draft("wiki")).await;
    let page = b
        .get_url(&crate::oidc::authorize_url(&srv, &plain, &[]))
        .await;
    assert!(crate::oidc::param(page.location.as_deref().unwrap(), "code").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_requirement_applies_to_every_application() {
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.login.required_acr = "mfa".into();
    let srv = TestServer::start_with(env).await;
    srv.user("pat").await;
    let c = crate::oidc::client(&srv, crate::oidc::draft("wiki")).await;
    let b = srv.browser();
    b.login("pat", PASSWORD).await;
    let page = b.get_url(&crate::oidc::authorize_url(&srv, &c, &[])).await;
    let back = password_again(&b, &page.location.unwrap(), "pat").await;
    assert_eq!(
        crate::oidc::param(back.location.as_deref().unwrap(), "error").as_deref(),
        Some("access_denied")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sp_that_requires_mfa_gets_request_denied_for_password_only_users() {
    let srv = TestServer::start_now(Backend::Embedded).await;
    srv.user("pat").await;
    srv.services
        .add_sp(
            &Actor::cli(),
            SpInput {
                entity_id: Some(crate::saml::SP_ENTITY.into()),
                acs_urls: vec![crate::saml::ACS.into()],
                sign_response: true,
                sign_assertion: true,
                required_acr: Some("mfa".into()),
                ..SpInput::default()
            },
        )
        .await
        .unwrap();
    let b = srv.browser();
    b.login("pat", PASSWORD).await;
    let page = b
        .get_url(&crate::saml::redirect_url(
            &srv,
            &crate::saml::authn_request(&srv, "_m", ""),
            "",
        ))
        .await;
    let loc = page.location.unwrap();
    assert!(loc.contains("reauth=1"), "{loc}");
    let back = password_again(&b, &loc, "pat").await;
    let xml = crate::saml::decode(&field_value(&back.body, "SAMLResponse").unwrap());
    assert!(
        xml.contains("RequestDenied") && xml.contains("requires signing in with"),
        "{xml}"
    );
    assert!(!xml.contains("<saml:Assertion"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_requirement_applies_to_its_members_only() {
    let env = TestEnv::new(Backend::Embedded);
    let dir = tempfile::tempdir().unwrap();
    let config = crate::cli::config_for(dir.path(), &env);
    let srv = TestServer::start_with(env).await;
    srv.user("pat").await;
    srv.user("quinn").await;
    srv.services
        .create_group(&Actor::cli(), "finance", "")
        .await
        .unwrap();
    srv.services
        .set_membership(&Actor::cli(), "finance", "pat", true)
        .await
        .unwrap();
    let cli = |args: &[&str]| crate::cli::run_cli(&config, args);
    let (ok, _, err) = cli(&["group", "set-require", "finance", "mfa"]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&["group", "set-require", "finance", "strong"]);
    assert!(!ok);
    assert!(err.contains("use pwd, mfa or phr"));
    let (_, listed, _) = cli(&["group", "list", "--json"]);
    assert!(listed.contains("urn:portcullis:acr:mfa"), "{listed}");

    let c = crate::oidc::client(&srv, crate::oidc::draft("wiki")).await;
    let member = srv.browser();
    member.login("pat", PASSWORD).await;
    let page = member
        .get_url(&crate::oidc::authorize_url(&srv, &c, &[]))
        .await;
    let back = password_again(&member, &page.location.unwrap(), "pat").await;
    assert_eq!(
        crate::oidc::param(back.location.as_deref().unwrap(), "error").as_deref(),
        Some("access_denied")
    );

    let outsider = srv.browser();
    outsider.login("quinn", PASSWORD).await;
    let page = outsider
        .get_url(&crate::oidc::authorize_url(&srv, &c, &[]))
        .await;
    assert!(
        crate::oidc::param(page.location.as_deref().unwrap(), "code").is_some(),
        "non-members sign in as before"
    );

    assert!(cli(&["group", "set-require", "finance", "none"]).0);
    let page = member
        .get_url(&crate::oidc::authorize_url(&srv, &c, &[]))
        .await;
    assert!(
        crate::oidc::param(page.location.as_deref().unwrap(), "code").is_some(),
        "cleared"
    );
}

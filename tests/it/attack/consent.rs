//! Consent is the user's own: an authorization transaction belongs to the
//! browser that started it, and consent counts only for whoever gave it.

use crate::common::{Backend, Browser, PASSWORD, TestServer, backends, field_value};
use crate::oidc::{authorize_url, draft, param};
use portcullis::service::Actor;
use portcullis::service::oidc::clients::{ClientOptions, NewClient};

async fn third_party(srv: &TestServer) -> NewClient {
    srv.services
        .create_client(
            &Actor::cli(),
            draft("Third Party"),
            ClientOptions::default(),
        )
        .await
        .unwrap()
}

/// The attacker starts a `prompt=login` request for a client that needs
/// consent and approves the consent page with his own session; the request
/// then waits for a fresh sign-in. Returns the transaction's ID.
async fn attacker_prepares(srv: &TestServer, c: &NewClient, mallory: &Browser) -> String {
    mallory.login("mallory", PASSWORD).await;
    let start = mallory
        .get_url(&authorize_url(srv, c, &[("prompt", "login")]))
        .await;
    let login = start.location.expect("sent to sign in");
    let next = param(&format!("http://x{login}"), "next").unwrap();
    let tx = param(&format!("http://x{next}"), "tx").unwrap();
    // The consent page, answered with the attacker's own session.
    let form = mallory.get("/account").await;
    let answered = mallory
        .post(
            "/authorize/consent",
            &[("csrf", &form.csrf()), ("tx", &tx), ("decision", "allow")],
        )
        .await;
    assert!(
        answered
            .location
            .as_deref()
            .unwrap_or("")
            .starts_with("/login"),
        "the stale session must sign in again: {:?} {}",
        answered.location,
        answered.status
    );
    tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_cannot_be_resumed_in_another_browser() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        srv.user("alice").await;
        srv.user("mallory").await;
        let c = third_party(&srv).await;
        let mallory = srv.browser();
        let tx = attacker_prepares(&srv, &c, &mallory).await;

        let victim = srv.browser();
        victim.login("alice", PASSWORD).await;
        let page = victim.get(&format!("/authorize/resume?tx={tx}")).await;
        assert_eq!(
            page.status, 403,
            "{backend:?}: {:?} {}",
            page.location, page.body
        );
        assert!(page.location.is_none(), "no code leaves for the victim");
        assert!(
            page.body.contains("started in another browser"),
            "{}",
            page.body
        );
        // Nor can the victim be made to answer the attacker's consent form.
        let csrf = victim.get("/account").await.csrf();
        let page = victim
            .post(
                "/authorize/consent",
                &[("csrf", &csrf), ("tx", &tx), ("decision", "allow")],
            )
            .await;
        assert_eq!(page.status, 403, "{backend:?}");
        assert!(page.location.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_counts_only_for_the_user_who_gave_it() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("alice").await;
    srv.user("mallory").await;
    let c = third_party(&srv).await;
    let mallory = srv.browser();
    let tx = attacker_prepares(&srv, &c, &mallory).await;

    // Even with the attacker's browser cookie planted in the victim's
    // browser, the attacker's consent is not hers: she is asked herself.
    let victim = srv.browser();
    victim.login("alice", PASSWORD).await;
    let planted = mallory.cookie("portcullis_csrf").unwrap();
    victim.jar.add_cookie_str(
        &format!("portcullis_csrf={planted}; Path=/"),
        &srv.base.parse().unwrap(),
    );
    let page = victim.get(&format!("/authorize/resume?tx={tx}")).await;
    assert_eq!(page.status, 200, "{:?}", page.location);
    assert!(
        page.body
            .contains("Third Party wants to access your account"),
        "{}",
        page.body
    );
    assert_eq!(field_value(&page.body, "tx").as_deref(), Some(tx.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saml_sign_in_cannot_be_resumed_in_another_browser() {
    use portcullis::domain::NameIdFormat;
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("alice").await;
    crate::saml::register_sp(&srv, NameIdFormat::Persistent).await;
    let attacker = srv.browser();
    let start = attacker
        .get_url(&crate::saml::redirect_url(
            &srv,
            &crate::saml::authn_request(&srv, "_bind1", ""),
            "r",
        ))
        .await;
    let login = start.location.expect("sent to sign in");
    let next = param(&format!("http://x{login}"), "next").unwrap();
    assert!(next.starts_with("/saml/resume?tx="), "{next}");

    let victim = srv.browser();
    victim.login("alice", PASSWORD).await;
    let page = victim.get(&next).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("started in another browser"));
    assert!(
        !page.body.contains("SAMLResponse"),
        "no assertion for the victim"
    );
}

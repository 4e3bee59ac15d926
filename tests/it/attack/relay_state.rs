//! IdP-initiated SAML SSO may only carry a local path as RelayState: many
//! service providers send the user wherever RelayState points, which would
//! make portcullis's own link an open redirect at the SP.

use crate::common::{Backend, PASSWORD, TestServer, field_value};
use crate::saml::{SP_ENTITY, authn_request, redirect_url, register_sp, until_response};
use portcullis::domain::NameIdFormat;
use portcullis::protocol::oidc::uri::with_query;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_initiated_relay_state_must_be_a_local_path() {
    let srv = TestServer::start_now(Backend::Embedded).await;
    srv.user("lou").await;
    register_sp(&srv, NameIdFormat::Email).await;
    let b = srv.browser();
    b.login("lou", PASSWORD).await;
    let init = |relay: &str| {
        with_query(
            &srv.url("/saml/sso/init"),
            &[("sp", SP_ENTITY), ("RelayState", relay)],
        )
    };
    let long = format!("/{}", "a".repeat(80));
    for bad in [
        "https://evil.example/x",
        "//evil.example/x",
        "/\\evil.example/x",
        "evil.example/x",
        "/x\r\nSet-Cookie: a=1",
        long.as_str(),
    ] {
        let page = b.get_url(&init(bad)).await;
        assert_eq!(page.status, 400, "{bad:?}: {}", page.body);
        assert!(
            field_value(&page.body, "SAMLResponse").is_none(),
            "{bad:?} was forwarded: {}",
            page.body
        );
        assert!(page.body.contains("RelayState"), "{}", page.body);
    }

    // A local path still goes through, unchanged.
    let page = b.get_url(&init("/dashboard?tab=1")).await;
    let (_, relay) = until_response(&b, page, "lou").await;
    assert_eq!(relay.as_deref(), Some("/dashboard?tab=1"));

    // SP-initiated, RelayState is the SP's own value and comes back as sent.
    let xml = authn_request(&srv, "_req1", "");
    let page = b
        .get_url(&redirect_url(&srv, &xml, "https://sp.example/after"))
        .await;
    let (_, relay) = until_response(&b, page, "lou").await;
    assert_eq!(relay.as_deref(), Some("https://sp.example/after"));
}

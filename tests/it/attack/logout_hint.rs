//! An access token is no `id_token_hint`: resource servers receive access
//! tokens, and any of them could otherwise sign the user out unasked.

use crate::common::{Backend, Browser, PASSWORD, TestServer};
use crate::oidc::{VERIFIER, authorize_url, client, draft, param, redeem};
use portcullis::protocol::oidc::uri::with_query;
use portcullis::service::oidc::clients::NewClient;
use serde_json::Value;

const BYE: &str = "http://localhost:9999/bye";

async fn signed_in_with_tokens(srv: &TestServer, c: &NewClient) -> (Browser, Value) {
    let b = srv.browser();
    b.login("ivy", PASSWORD).await;
    let url = authorize_url(srv, c, &[("scope", "openid")]);
    let code = param(&b.get_url(&url).await.location.unwrap(), "code").unwrap();
    let (status, tokens) = redeem(srv, c, &code, VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    (b, tokens)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_as_id_token_hint_does_not_sign_the_user_out() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("ivy").await;
    let c = client(&srv, draft("Notes")).await;
    let (b, tokens) = signed_in_with_tokens(&srv, &c).await;
    let access_token = tokens["access_token"].as_str().unwrap();
    let cid = c.client.client_id.as_str();

    // A resource server that saw the access token builds the logout link.
    for with_client_id in [true, false] {
        let mut params = vec![
            ("id_token_hint", access_token),
            ("post_logout_redirect_uri", BYE),
        ];
        if with_client_id {
            params.push(("client_id", cid));
        }
        let page = b
            .get_url(&with_query(&srv.url("/end-session"), &params))
            .await;
        assert!(
            page.location.is_none(),
            "signed out unasked and sent to {:?}",
            page.location
        );
        assert_eq!(b.get("/account").await.status, 200, "still signed in");
        if with_client_id {
            // As with no hint: the user is asked.
            assert_eq!(page.status, 200, "{}", page.body);
            assert!(
                page.body.contains("Notes asks to sign you out"),
                "{}",
                page.body
            );
        } else {
            // As with no hint: nothing names the client, so the redirect
            // cannot be honoured.
            assert_eq!(page.status, 400, "{}", page.body);
        }
    }

    // The ID token of the same sign-in is still a hint: sign-out at once.
    let page = b
        .get_url(&with_query(
            &srv.url("/end-session"),
            &[
                ("id_token_hint", tokens["id_token"].as_str().unwrap()),
                ("post_logout_redirect_uri", BYE),
            ],
        ))
        .await;
    assert_eq!(page.location.as_deref(), Some(BYE));
    assert_eq!(b.get("/account").await.status, 303, "signed out");
}

//! Sign-in journeys through the balancer: each request may land on another
//! node, and each journey checks that it did.

use crate::cluster::Cluster;
use crate::http::Browser;
use crate::oidc::{REDIRECT, active, add_client, add_user, claims, code, redeem_form, token};
use crate::require_environment;
use openidconnect::core::{CoreClient, CoreIdToken, CoreProviderMetadata};
use openidconnect::{ClientId, ClientSecret, IssuerUrl, Nonce, RedirectUrl};
use std::str::FromStr;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts three servers and nginx: make scale-test"]
async fn code_flow_with_pkce_and_refresh_rotation_across_nodes() {
    require_environment!();
    let c = Cluster::start();
    add_user(&c, "olga");
    let app = add_client(&c, "ledger");
    let b = Browser::new(&c);

    let (code, issued_by) = code(&c, &b, &app, "olga", "openid email profile offline_access").await;
    let (st, t, redeemed_by) = token(
        &b.http,
        &c.url("/token"),
        &app,
        &redeem_form(&code),
        &b.served_by,
    )
    .await;
    assert_eq!(st, 200, "{t}");
    assert_ne!(
        issued_by, redeemed_by,
        "the code was redeemed on another node"
    );

    // The relying-party library, configured by discovery through the
    // balancer, accepts the ID token whichever node signed it.
    let http = crate::http::client(&c, None);
    let meta =
        CoreProviderMetadata::discover_async(IssuerUrl::new(c.issuer.clone()).unwrap(), &http)
            .await
            .expect("discovery");
    let rp = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(app.id.clone()),
        Some(ClientSecret::new(app.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let id_token = CoreIdToken::from_str(t["id_token"].as_str().unwrap()).unwrap();
    let verified = id_token
        .claims(&rp.id_token_verifier(), &Nonce::new("n-0S6_WzA2Mj".into()))
        .expect("the RP verifies the ID token");
    assert_eq!(verified.preferred_username().unwrap().as_str(), "olga");

    // Every node knows the access token.
    let at = t["access_token"].as_str().unwrap();
    for n in &c.nodes {
        assert!(
            active(&http, &n.url("/introspect"), &app, at).await,
            "node {}",
            n.port
        );
        let r = http
            .get(n.url("/userinfo"))
            .bearer_auth(at)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "userinfo at node {}", n.port);
    }

    // Refresh rotation across nodes: each refresh on the next node, the
    // previous token refused afterwards wherever it is presented.
    let mut rt = t["refresh_token"].as_str().unwrap().to_string();
    let mut used = Vec::new();
    for _ in 0..3 {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ];
        let (st, n, _) = token(&b.http, &c.url("/token"), &app, &form, &b.served_by).await;
        assert_eq!(st, 200, "{n}");
        assert_eq!(
            claims(n["access_token"].as_str().unwrap())["sub"],
            claims(at)["sub"]
        );
        used.push(std::mem::replace(
            &mut rt,
            n["refresh_token"].as_str().unwrap().into(),
        ));
    }
    // Reuse of a rotated token revokes the grant: the newest token dies too.
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", used[0].as_str()),
    ];
    let (st, e, _) = token(&b.http, &c.url("/token"), &app, &form, &b.served_by).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];
    let (st, e, _) = token(&b.http, &c.url("/token"), &app, &form, &b.served_by).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
    assert_eq!(b.nodes_seen(), 3, "{:?}", b.served_by);
}

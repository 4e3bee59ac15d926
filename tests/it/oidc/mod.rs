//! OpenID Connect journeys, with the `openidconnect` crate as the relying party.

mod access_alg;
mod admin;
mod cli;
mod flow;
mod one_trip;
pub mod rules;

use crate::common::{Browser, PASSWORD, TestServer};
use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{
    ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, RedirectUrl,
};
use portcullis::domain::{AuthMethod, GrantType, SigningAlg};
use portcullis::protocol::oidc::registration::ClientDraft;
use portcullis::protocol::oidc::scope;
use portcullis::service::Actor;
use portcullis::service::oidc::clients::{ClientOptions, NewClient};
use serde_json::Value;

pub const REDIRECT: &str = "http://localhost:9999/cb";
/// RFC 7636 appendix B's verifier and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// An HTTP client as openidconnect wants it: no redirects followed.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn draft(name: &str) -> ClientDraft {
    ClientDraft {
        name: name.into(),
        auth_method: AuthMethod::ClientSecretBasic,
        redirect_uris: vec![REDIRECT.into()],
        post_logout_redirect_uris: vec!["http://localhost:9999/bye".into()],
        grant_types: vec![
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
        ],
        scopes: scope::parse("openid profile email groups roles offline_access"),
        id_token_alg: SigningAlg::RS256,
        jwks: None,
        backchannel_logout_uri: None,
    }
}

/// A first-party confidential client (no consent page).
pub async fn client(srv: &TestServer, d: ClientDraft) -> NewClient {
    let opts = ClientOptions {
        consent_required: false,
        ..ClientOptions::default()
    };
    srv.services
        .create_client(&Actor::cli(), d, opts)
        .await
        .unwrap()
}

/// The relying party, configured by discovery.
pub async fn rp(srv: &TestServer, c: &NewClient) -> Rp {
    let meta =
        CoreProviderMetadata::discover_async(IssuerUrl::new(srv.base.clone()).unwrap(), &http())
            .await
            .expect("discovery");
    CoreClient::from_provider_metadata(
        meta,
        ClientId::new(c.client.client_id.clone()),
        c.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
}

/// Follows a browser through /authorize, the sign-in page and back, and
/// returns where it was finally sent (the client's redirect URI with the
/// response in the query).
pub async fn authorize_as(b: &Browser, url: &str, user: &str) -> String {
    let mut page = b.get_url(url).await;
    for _ in 0..6 {
        let Some(loc) = page.location.clone() else {
            panic!("no redirect from {url}: {} {}", page.status, page.body);
        };
        if loc.starts_with("/login") {
            let form = b.get(&loc).await;
            let next = crate::common::field_value(&form.body, "next").unwrap();
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
        } else if loc.starts_with('/') {
            page = b.get(&loc).await;
        } else {
            return loc;
        }
    }
    panic!("too many redirects");
}

/// A query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// An authorization request for `c`, with `extra` replacing or (when empty)
/// removing parameters.
pub fn authorize_url(srv: &TestServer, c: &NewClient, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("client_id", c.client.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid email offline_access"),
        ("state", "st"),
        ("nonce", "n"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        params.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            params.push((k, v));
        }
    }
    portcullis::protocol::oidc::uri::with_query(&srv.url("/authorize"), &params)
}

pub async fn post_token(
    srv: &TestServer,
    c: &NewClient,
    form: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = reqwest::Client::new()
        .post(srv.url("/token"))
        .basic_auth(&c.client.client_id, c.secret.as_deref())
        .form(form)
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    assert_eq!(headers["cache-control"], "no-store");
    (status, r.json().await.unwrap(), headers)
}

/// The tokens `user` gets through a fresh browser's sign-in, code and PKCE.
pub async fn tokens_for(srv: &TestServer, c: &NewClient, user: &str) -> Value {
    let back = authorize_as(&srv.browser(), &authorize_url(srv, c, &[]), user).await;
    let (s, t) = redeem(srv, c, &param(&back, "code").unwrap(), VERIFIER).await;
    assert_eq!(s, 200, "{t}");
    t
}

pub async fn redeem(srv: &TestServer, c: &NewClient, code: &str, verifier: &str) -> (u16, Value) {
    let (s, v, _) = post_token(
        srv,
        c,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await;
    (s, v)
}

/// The claims of a JWT, unverified (the tests verify signatures elsewhere).
pub fn flow_payload(jwt: &str) -> serde_json::Value {
    flow::decode_payload(jwt)
}

/// The published JWK Set's keys.
pub async fn jwks(srv: &TestServer) -> Vec<Value> {
    let v: Value = reqwest::get(srv.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["keys"].as_array().unwrap().clone()
}

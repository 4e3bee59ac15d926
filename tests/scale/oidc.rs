//! Setting up users and clients with the command line, as an operator
//! would, and the relying party's side of the code flow.

use crate::cluster::Cluster;
use crate::http::{Browser, Nodes, PASSWORD, note_node, param};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

pub const REDIRECT: &str = "http://localhost:9999/cb";
/// RFC 7636 appendix B's verifier and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub fn add_user(c: &Cluster, name: &str) {
    c.cli_with_input(
        &["user", "add", name, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
}

/// A signed-in browser for a new user.
pub async fn signed_in(c: &Cluster, name: &str) -> Browser {
    add_user(c, name);
    let b = Browser::new(c);
    assert_eq!(b.login(name).await.status, 303);
    b
}

#[derive(Clone)]
pub struct Client {
    pub id: String,
    pub secret: String,
}

/// A first-party confidential client that may use every grant it needs.
pub fn add_client(c: &Cluster, name: &str) -> Client {
    let v = c.cli_json(&[
        "client",
        "add",
        "--name",
        name,
        "--redirect-uri",
        REDIRECT,
        "--first-party",
        "--grant-types",
        "authorization_code,refresh_token,client_credentials",
        "--scopes",
        "openid email profile roles offline_access pim",
        "--json",
    ]);
    Client {
        id: v["client_id"].as_str().unwrap().into(),
        secret: v["client_secret"].as_str().unwrap().into(),
    }
}

pub fn authorize_url(c: &Cluster, client: &Client, scope: &str) -> String {
    portcullis::protocol::oidc::uri::with_query(
        &c.url("/authorize"),
        &[
            ("client_id", client.id.as_str()),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", scope),
            ("state", "st"),
            ("nonce", "n-0S6_WzA2Mj"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )
}

/// Runs the browser through /authorize (signing in as `user` if asked);
/// returns the code and the node whose answer carried it.
pub async fn code(
    c: &Cluster,
    b: &Browser,
    client: &Client,
    user: &str,
    scope: &str,
) -> (String, String) {
    let first = b.get(&authorize_url(c, client, scope)).await;
    let (last, to) = b.follow(first, user).await;
    let to = to.unwrap_or_else(|| panic!("not sent back: {} {}", last.status, last.body));
    assert!(to.starts_with(REDIRECT), "{to}");
    assert_eq!(param(&to, "iss").as_deref(), Some(c.issuer.as_str()));
    assert_eq!(param(&to, "state").as_deref(), Some("st"));
    (param(&to, "code").expect("a code"), last.node)
}

/// A token request through the balancer: status, answer, node.
pub async fn token(
    http: &reqwest::Client,
    url: &str,
    client: &Client,
    form: &[(&str, &str)],
    nodes: &Nodes,
) -> (u16, Value, String) {
    let r = http
        .post(url)
        .basic_auth(&client.id, Some(&client.secret))
        .form(form)
        .send()
        .await
        .expect("the token endpoint answers");
    let node = note_node(nodes, &r);
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default(), node)
}

/// A code for `user` (signing in when asked) redeemed through the
/// balancer: the token answer.
pub async fn tokens_for(c: &Cluster, b: &Browser, app: &Client, user: &str, scope: &str) -> Value {
    let (code, _) = code(c, b, app, user, scope).await;
    let (st, t, _) = token(
        &b.http,
        &c.url("/token"),
        app,
        &redeem_form(&code),
        &b.served_by,
    )
    .await;
    assert_eq!(st, 200, "{t}");
    t
}

pub fn redeem_form(code: &str) -> [(&str, &str); 4] {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ]
}

/// `active` from token introspection at `url` (a node or the balancer).
pub async fn active(http: &reqwest::Client, url: &str, client: &Client, token: &str) -> bool {
    let r = http
        .post(url)
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["active"].as_bool().expect("introspection answers active")
}

/// Every node's introspection says `at` is no longer active.
pub async fn inactive_on_every_node(c: &Cluster, http: &reqwest::Client, app: &Client, at: &str) {
    for n in &c.nodes {
        assert!(
            !active(http, &n.url("/introspect"), app, at).await,
            "node {}",
            n.port
        );
    }
}

/// A `refresh_token` grant for `rt`.
pub fn refresh_form(rt: &str) -> [(&str, &str); 2] {
    [("grant_type", "refresh_token"), ("refresh_token", rt)]
}

/// The claims of a JWT, unverified.
pub fn claims(jwt: &str) -> Value {
    part(jwt, 1)
}

/// The JOSE header of a JWT.
pub fn header(jwt: &str) -> Value {
    part(jwt, 0)
}

fn part(jwt: &str, i: usize) -> Value {
    let p = jwt.split('.').nth(i).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

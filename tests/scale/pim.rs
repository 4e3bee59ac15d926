//! Privileged Identity Management through the balancer: request, approval,
//! elevated token, revocation, each step on whichever node answers.

use crate::cluster::Cluster;
use crate::http::Browser;
use crate::oidc::{
    Client, active, add_client, claims, inactive_on_every_node, refresh_form, signed_in, token,
    tokens_for,
};
use crate::require_environment;
use serde_json::{Value, json};

pub const ROLE: &str = "billing-admin";

/// A privileged role `ada` may request, approved by one of `approvers`
/// (`bob`, `cy`); `root` administers PIM. Returns the browsers of ada, bob,
/// cy and root, and an application that receives the role.
pub async fn approval_setup(c: &Cluster) -> (Browser, Browser, Browser, Browser, Client) {
    let (ada, bob, cy, root) = (
        signed_in(c, "ada").await,
        signed_in(c, "bob").await,
        signed_in(c, "cy").await,
        signed_in(c, "root").await,
    );
    c.cli(&["role", "add", ROLE]);
    c.cli(&["group", "add", "approvers"]);
    c.cli(&["group", "add-member", "approvers", "bob"]);
    c.cli(&["group", "add-member", "approvers", "cy"]);
    c.cli(&["group", "add-member", "admins", "root"]);
    c.cli(&[
        "pim",
        "policy",
        "set",
        ROLE,
        "--max-duration",
        "2h",
        "--approval",
        "group:approvers:1",
    ]);
    c.cli(&["pim", "eligible", "add", ROLE, "ada"]);
    (ada, bob, cy, root, add_client(c, "payroll"))
}

pub async fn request(b: &Browser) -> (u16, Value) {
    request_role(b, ROLE).await
}

/// Asks for `role` for half an hour.
pub async fn request_role(b: &Browser, role: &str) -> (u16, Value) {
    b.post_json(
        "/api/v1/me/elevations",
        &json!({"role": role, "duration_seconds": 1800, "reason": "month-end billing run"}),
    )
    .await
}

pub async fn decide(b: &Browser, id: &str) -> (u16, Value) {
    b.post_json(
        &format!("/api/v1/approvals/{id}"),
        &json!({"decision": "approve", "comment": "ticket checked"}),
    )
    .await
}

pub async fn revoke(b: &Browser, id: &str) -> (u16, Value) {
    b.post_json(
        &format!("/api/v1/elevations/{id}/revoke"),
        &json!({"reason": "audit finding"}),
    )
    .await
}

/// The roles in a token's claims.
pub fn roles(jwt: &str) -> Vec<String> {
    claims(jwt)["roles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A code flow for the signed-in browser; the token answer.
pub async fn tokens(c: &Cluster, b: &Browser, app: &Client) -> Value {
    tokens_for(c, b, app, "", "openid offline_access").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts three servers and nginx: make scale-test"]
async fn request_approval_elevated_token_and_revocation_across_nodes() {
    require_environment!();
    let c = Cluster::start();
    let (ada, bob, _cy, root, app) = approval_setup(&c).await;

    let (st, q) = request(&ada).await;
    assert_eq!((st, q["state"].as_str()), (201, Some("pending")), "{q}");
    let id = q["id"].as_str().unwrap().to_string();
    let (st, inbox) = bob.get_json("/api/v1/approvals").await;
    assert_eq!(st, 200);
    assert_eq!(
        inbox["approvals"][0]["request"]["id"],
        id.as_str(),
        "{inbox}"
    );
    let before = tokens(&c, &ada, &app).await;
    assert!(!roles(before["access_token"].as_str().unwrap()).contains(&ROLE.into()));

    let (st, v) = decide(&bob, &id).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("active")), "{v}");
    let t = tokens(&c, &ada, &app).await;
    let at = t["access_token"].as_str().unwrap();
    assert!(roles(at).contains(&ROLE.into()), "{}", claims(at));
    assert_eq!(
        claims(t["id_token"].as_str().unwrap())["pim"][0]["activation"],
        id.as_str()
    );
    let http = crate::http::client(&c, None);
    for n in &c.nodes {
        assert!(active(&http, &n.url("/introspect"), &app, at).await);
    }

    let (st, v) = revoke(&root, &id).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("revoked")), "{v}");
    // Rule 4 on every node, and rule 3: a refresh yields no role.
    inactive_on_every_node(&c, &http, &app, at).await;
    let form = refresh_form(t["refresh_token"].as_str().unwrap());
    let (st, r, _) = token(&ada.http, &c.url("/token"), &app, &form, &ada.served_by).await;
    assert_eq!(st, 200, "{r}");
    assert!(!roles(r["access_token"].as_str().unwrap()).contains(&ROLE.into()));
    for _ in 0..3 {
        let (st, v) = ada.get_json(&format!("/api/v1/me/elevations/{id}")).await;
        assert_eq!((st, v["state"].as_str()), (200, Some("revoked")), "{v}");
    }
    assert_eq!(ada.nodes_seen(), 3, "{:?}", ada.served_by);
}

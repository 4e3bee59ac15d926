//! Starting together and rotating keys: what nodes must agree on.

use crate::cluster::{Cluster, Start};
use crate::oidc::{Client, active, add_client, header};
use crate::require_environment;
use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Text};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[derive(diesel::QueryableByName)]
struct Applied {
    #[diesel(sql_type = Text)]
    version: String,
    #[diesel(sql_type = BigInt)]
    times: i64,
}

/// The migrations this build carries (one directory each).
fn shipped_migrations() -> usize {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts three servers and nginx: make scale-test"]
async fn three_nodes_started_at_once_on_an_empty_database_migrate_once() {
    require_environment!();
    // Every node must come up (the start panics with its log otherwise).
    let c = Cluster::start_with(Start::AllAtOnce);
    let applied: Vec<Applied> = diesel::sql_query(
        "SELECT version, count(*) AS times FROM __diesel_schema_migrations GROUP BY version",
    )
    .load(&mut c.db.connect())
    .unwrap();
    assert_eq!(applied.len(), shipped_migrations());
    let twice: Vec<&str> = applied
        .iter()
        .filter(|m| m.times != 1)
        .map(|m| m.version.as_str())
        .collect();
    assert!(twice.is_empty(), "applied more than once: {twice:?}");

    // The first administrator was created once.
    let users = c.cli_json(&["user", "list", "--json"]);
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin"]);
    let logs: String = c.nodes.iter().map(|n| n.log_text()).collect();
    assert_eq!(
        logs.matches("created the first administrator").count(),
        1,
        "{logs}"
    );

    // One SAML signing certificate, the same in every node's metadata.
    let http = crate::http::client(&c, None);
    let mut listed = Vec::new();
    for n in &c.nodes {
        let md = http
            .get(n.url("/saml/metadata"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        listed.push(
            md.split("<ds:X509Certificate>")
                .skip(1)
                .map(|s| s.split('<').next().unwrap().to_string())
                .collect::<BTreeSet<_>>(),
        );
    }
    assert_eq!(listed[0].len(), 1, "one certificate, not one per node");
    assert!(listed.windows(2).all(|w| w[0] == w[1]));
}

async fn jwks_kids(http: &reqwest::Client, url: &str) -> BTreeSet<String> {
    let v: Value = http.get(url).send().await.unwrap().json().await.unwrap();
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// A client-credentials access token from one node.
async fn machine_token(http: &reqwest::Client, node_url: &str, app: &Client) -> String {
    let r = http
        .post(node_url)
        .basic_auth(&app.id, Some(&app.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

/// Expects the fixed key service: nodes starting together create one key
/// per algorithm between them, and every node publishes the same set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts three servers and nginx: make scale-test"]
async fn three_nodes_started_at_once_share_one_key_per_algorithm() {
    require_environment!();
    let c = Cluster::start_with(Start::AllAtOnce);
    let keys = c.cli_json(&["keys", "list", "--json"]);
    let algs: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert_eq!(
        algs.len(),
        3,
        "one key per algorithm, not one per node: {keys}"
    );
    let http = crate::http::client(&c, None);
    let mut published = Vec::new();
    for n in &c.nodes {
        published.push(jwks_kids(&http, &n.url("/jwks")).await);
    }
    assert!(published.windows(2).all(|w| w[0] == w[1]), "{published:?}");
    // A token signed by any node is accepted by every node.
    let app = add_client(&c, "batch");
    for signer in &c.nodes {
        let at = machine_token(&http, &signer.url("/token"), &app).await;
        for n in &c.nodes {
            assert!(
                active(&http, &n.url("/introspect"), &app, &at).await,
                "signed by {}, checked by {}",
                signer.port,
                n.port
            );
        }
    }
}

/// `keys rotate --now` with the command line; a node that (re)starts signs
/// with the new key at once. The others have not reloaded yet (they do
/// every minute); expecting the fixed key service, a token naming a key
/// they do not hold makes them read the key table again rather than refuse
/// it until their next reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts three servers and nginx: make scale-test"]
async fn a_key_rotated_with_the_cli_is_accepted_on_every_node_at_once() {
    require_environment!();
    let mut c = Cluster::start();
    let app = add_client(&c, "batch");
    let http = crate::http::client(&c, None);
    let before = machine_token(&http, &c.nodes[1].url("/token"), &app).await;

    let out = c.cli(&["keys", "rotate", "--now"]);
    let new_kid = out
        .lines()
        .find_map(|l| l.strip_prefix("RS256 ")?.split(' ').next())
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    assert_ne!(header(&before)["kid"], new_kid.as_str());
    c.restart(0);
    let after = machine_token(&http, &c.nodes[0].url("/token"), &app).await;
    assert_eq!(
        header(&after)["kid"],
        new_kid.as_str(),
        "the restarted node signs with the new key"
    );

    for n in &c.nodes {
        assert!(
            active(&http, &n.url("/introspect"), &app, &before).await,
            "the old key's tokens live on"
        );
        // A re-read may be rate-limited; a few seconds is still far
        // inside the one-minute reload this must not wait for.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !active(&http, &n.url("/introspect"), &app, &after).await {
            assert!(
                Instant::now() < deadline,
                "node {} did not accept the new key within 10 s",
                n.port
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(
            jwks_kids(&http, &n.url("/jwks")).await.contains(&new_kid),
            "node {} publishes it",
            n.port
        );
    }
}

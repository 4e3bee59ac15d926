//! Nodes on one PostgreSQL database and one Redis, started together, as a
//! rolling start behind a load balancer does it: they create one set of
//! signing keys, one SAML certificate and one first administrator, and
//! each accepts the others' tokens at once, also right after one of them
//! rotated its keys.

use crate::common::{Backend, TestEnv, TestServer, now_secs};
use crate::oidc::draft;
use crate::oidc::rules::as_client;
use portcullis::clock::FixedClock;
use portcullis::service::Actor;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

async fn kids(node: &TestServer) -> BTreeSet<String> {
    let jwks: Value = reqwest::get(node.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// `n` nodes started at the same moment on `env`'s database and Redis.
async fn start_together(env: &TestEnv, clock: &Arc<FixedClock>, n: usize) -> Vec<TestServer> {
    let starts = (0..n).map(|_| TestServer::node(env.settings.clone(), clock.clone()));
    futures_util::future::join_all(starts).await
}

async fn client_credentials(node: &TestServer, id: &str, secret: &str) -> String {
    let form = [("grant_type", "client_credentials")];
    let v = as_client(&node.url("/token"), id, secret, &form).await;
    v["access_token"].as_str().expect("a token").to_string()
}

async fn active_at(node: &TestServer, id: &str, secret: &str, token: &str) -> bool {
    let v = as_client(&node.url("/introspect"), id, secret, &[("token", token)]).await;
    v["active"].as_bool().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_share_one_set_of_keys_and_each_others_rotations() {
    if !crate::common::backends().contains(&Backend::Shared) {
        return;
    }
    let mut env = TestEnv::new(Backend::Shared);
    // One issuer for all, as behind a load balancer.
    env.settings.issuer = Some("http://portcullis.test".into());
    let clock = FixedClock::new(now_secs());
    let nodes = start_together(&env, &clock, 3).await;

    let store = &nodes[0].services.store;
    let keys = store.tx(|r| r.keys()).unwrap();
    assert_eq!(keys.len(), 3, "one key per algorithm: {keys:?}");
    assert_eq!(store.tx(|r| r.saml_certs()).unwrap().len(), 1);
    assert_eq!(
        store.tx(|r| r.count_users()).unwrap(),
        1,
        "one first administrator"
    );
    let audit = nodes[0].services.recent_audit(100).await.unwrap();
    let created = audit.iter().filter(|e| e.entry.action == "keys.create");
    assert_eq!(created.count(), 1, "{audit:?}");
    let stored: BTreeSet<String> = keys.iter().map(|k| k.kid.clone()).collect();
    for n in &nodes {
        assert_eq!(
            kids(n).await,
            stored,
            "{} publishes the stored keys",
            n.base
        );
    }

    // Node 0 rotates and signs with the new key at once; the others accept
    // its tokens without waiting for their periodic reload, and publish it.
    let c = nodes[0]
        .services
        .create_client(&Actor::cli(), draft("across"), Default::default())
        .await
        .unwrap();
    let (id, secret) = (c.client.client_id.as_str(), c.secret.as_deref().unwrap());
    clock.advance(chrono::Duration::seconds(1));
    let rotated = nodes[0]
        .services
        .rotate_keys(&Actor::cli(), true)
        .await
        .unwrap();
    let token = client_credentials(&nodes[0], id, secret).await;
    let kid = portcullis::crypto::jws::decode_header(&token)
        .unwrap()
        .kid
        .unwrap();
    assert!(
        rotated.iter().any(|k| k.kid == kid),
        "signed with the new key"
    );
    for n in &nodes[1..] {
        assert!(
            !kids(n).await.contains(&kid),
            "{} has not reloaded yet",
            n.base
        );
        assert!(
            active_at(n, id, secret, &token).await,
            "{} accepts it",
            n.base
        );
        assert!(kids(n).await.contains(&kid), "{} now publishes it", n.base);
    }
    // A made-up key ID is refused, whatever the node.
    let forged = {
        let mut parts = token.splitn(2, '.');
        let header =
            base64_url(&serde_json::json!({"alg": "RS256", "typ": "at+jwt", "kid": "made-up"}));
        let _ = parts.next();
        format!("{header}.{}", parts.next().unwrap())
    };
    for n in &nodes {
        assert!(!active_at(n, id, secret, &forged).await);
    }
}

fn base64_url(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

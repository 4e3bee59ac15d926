//! A node killed (SIGKILL) in the middle of a refresh-token rotation: the
//! rotation is one transaction, so afterwards exactly one refresh token of
//! the grant works — the old one if the rotation did not commit, the new
//! one if it did — never both, never neither, and the grant lives on.

use crate::cluster::{Cluster, NODES};
use crate::http::Browser;
use crate::oidc::{Client, add_client, add_user, claims, refresh_form, tokens_for};
use crate::require_environment;
use diesel::RunQueryDsl;
use portcullis::crypto::sha256_hex;
use serde_json::Value;
use std::time::Duration;

/// What the database says of a grant's refresh tokens.
#[derive(Debug, diesel::QueryableByName)]
struct GrantState {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    unused: i64,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    revoked: bool,
    /// Whether the token the client holds is still the unused one.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    held_unused: bool,
}

fn grant_state(c: &Cluster, grant: &str, held: &str) -> GrantState {
    let sql = "SELECT \
        (SELECT count(*) FROM refresh_tokens WHERE grant_id = $1 AND used_at IS NULL) AS unused, \
        (SELECT revoked_at IS NOT NULL FROM grants WHERE id = $1) AS revoked, \
        EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = $2 AND used_at IS NULL) AS held_unused";
    diesel::sql_query(sql)
        .bind::<diesel::sql_types::Text, _>(grant)
        .bind::<diesel::sql_types::Text, _>(sha256_hex(held.as_bytes()))
        .get_result(&mut c.db.connect())
        .unwrap()
}

/// A fresh grant for `user`: its ID and its refresh token.
async fn new_grant(c: &Cluster, app: &Client, user: &str) -> (String, String) {
    let t = tokens_for(c, &Browser::new(c), app, user, "openid offline_access").await;
    let jti = claims(t["access_token"].as_str().unwrap())["jti"].clone();
    let grant = jti.as_str().unwrap().split('.').next().unwrap().to_string();
    (grant, t["refresh_token"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts three servers and nginx: make scale-test"]
async fn a_node_killed_during_refresh_rotation_leaves_exactly_one_live_token() {
    require_environment!();
    let mut c = Cluster::start();
    add_user(&c, "rita");
    let app = add_client(&c, "ledger");
    let (mut grant, mut held) = new_grant(&c, &app, "rita").await;
    let (mut answered, mut lost) = (0, 0);
    for round in 0..9u64 {
        let i = (round as usize) % NODES;
        // The refresh goes straight to the node about to die; the kill
        // lands a little later each round, before, during or after it.
        let (url, app2, rt) = (c.nodes[i].url("/token"), app.clone(), held.clone());
        let request = tokio::spawn(async move {
            let form = refresh_form(&rt);
            let r = reqwest::Client::new()
                .post(url)
                .basic_auth(&app2.id, Some(&app2.secret))
                .form(&form)
                .send()
                .await
                .ok()?;
            (r.status() == 200).then_some(())?;
            r.json::<Value>().await.ok()
        });
        tokio::time::sleep(Duration::from_millis(round * 4)).await;
        c.nodes[i].kill();
        let reply = request.await.unwrap();
        c.start_again(i);

        let state = grant_state(&c, &grant, &held);
        assert!(
            !state.revoked,
            "round {round}: a crash is not reuse: {state:?}"
        );
        assert_eq!(
            state.unused, 1,
            "round {round}: exactly one live token: {state:?}"
        );
        match reply.and_then(|v| v["refresh_token"].as_str().map(str::to_string)) {
            Some(next) => {
                answered += 1;
                assert!(
                    !state.held_unused,
                    "round {round}: rotated, so the old one is spent"
                );
                held = next;
            }
            // No answer: the old token still works if the rotation did not
            // commit; otherwise its answer died with the node, and the new
            // token (the live one) is nobody's: start a new grant.
            None if state.held_unused => lost += 1,
            None => {
                lost += 1;
                (grant, held) = new_grant(&c, &app, "rita").await;
            }
        }
        // Whatever happened, the token now held works on another node.
        let other = &c.nodes[(i + 1) % NODES];
        let form = refresh_form(&held);
        let r = reqwest::Client::new()
            .post(other.url("/token"))
            .basic_auth(&app.id, Some(&app.secret))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "round {round}: the live token works");
        let v: Value = r.json().await.unwrap();
        held = v["refresh_token"].as_str().unwrap().to_string();
    }
    eprintln!("refreshes answered before the kill: {answered}, cut off: {lost}");
}

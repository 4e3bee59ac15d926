//! Races spread over the three nodes: single-use items are used once, and
//! limits hold, however many requests arrive together on different nodes.

use crate::cluster::Cluster;
use crate::http::{Browser, Nodes, client, spread};
use crate::oidc::{
    active, add_client, add_user, code, inactive_on_every_node, redeem_form, refresh_form,
    signed_in, token, tokens_for,
};
use crate::pim::{ROLE, approval_setup, decide, request, request_role, revoke, roles, tokens};
use crate::require_environment;
use futures_util::future::join_all;
use serde_json::Value;

fn statuses(got: &[(u16, Value, String)]) -> Vec<u16> {
    got.iter().map(|(s, ..)| *s).collect()
}

/// Exactly one answer is a success; every other is `invalid_grant`.
fn one_winner(got: &[(u16, Value, String)]) -> Value {
    let wins: Vec<&Value> = got
        .iter()
        .filter(|(s, ..)| *s == 200)
        .map(|(_, v, _)| v)
        .collect();
    assert_eq!(wins.len(), 1, "{:?}", statuses(got));
    for (s, v, _) in got.iter().filter(|(s, ..)| *s != 200) {
        assert_eq!(
            (*s, v["error"].as_str()),
            (400, Some("invalid_grant")),
            "{v}"
        );
    }
    wins[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts three servers and nginx: make scale-test"]
async fn one_code_redeemed_200_times_at_once_on_three_nodes() {
    require_environment!();
    let c = Cluster::start();
    add_user(&c, "olga");
    let app = add_client(&c, "ledger");
    let b = Browser::new(&c);
    let (code, _) = code(&c, &b, &app, "olga", "openid offline_access").await;

    let (http, nodes, url) = (client(&c, None), Nodes::default(), c.url("/token"));
    let form = redeem_form(&code);
    let got = join_all((0..200).map(|_| token(&http, &url, &app, &form, &nodes))).await;
    let won = one_winner(&got);
    assert_eq!(spread(&nodes), 3, "the redemptions reached every node");

    // The replay revoked what the code issued, on every node.
    let at = won["access_token"].as_str().unwrap();
    inactive_on_every_node(&c, &http, &app, at).await;
    let form = refresh_form(won["refresh_token"].as_str().unwrap());
    let (st, e, _) = token(&http, &url, &app, &form, &nodes).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts three servers and nginx: make scale-test"]
async fn one_refresh_token_used_100_times_at_once_on_three_nodes() {
    require_environment!();
    let c = Cluster::start();
    add_user(&c, "olga");
    let app = add_client(&c, "ledger");
    let t = tokens_for(&c, &Browser::new(&c), &app, "olga", "openid offline_access").await;
    let (http, nodes, url) = (client(&c, None), Nodes::default(), c.url("/token"));

    let form = refresh_form(t["refresh_token"].as_str().unwrap());
    let got = join_all((0..100).map(|_| token(&http, &url, &app, &form, &nodes))).await;
    let won = one_winner(&got);
    assert_eq!(spread(&nodes), 3, "the refreshes reached every node");

    // The reuse revoked the grant: the one new refresh token is dead, and
    // so are the access tokens issued under the grant.
    let form = refresh_form(won["refresh_token"].as_str().unwrap());
    let (st, e, _) = token(&http, &url, &app, &form, &nodes).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
    for at in [&t["access_token"], &won["access_token"]] {
        for n in &c.nodes {
            assert!(!active(&http, &n.url("/introspect"), &app, at.as_str().unwrap()).await);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts three servers and nginx: make scale-test"]
async fn two_approvals_and_a_revocation_at_once_leave_one_consistent_state() {
    require_environment!();
    let c = Cluster::start();
    let (ada, bob, cy, root, app) = approval_setup(&c).await;
    for round in 0..8 {
        let (st, q) = request(&ada).await;
        assert_eq!((st, q["state"].as_str()), (201, Some("pending")), "{q}");
        let id = q["id"].as_str().unwrap();
        let ((b_st, _), (c_st, _), (r_st, r)) =
            tokio::join!(decide(&bob, id), decide(&cy, id), revoke(&root, id));
        let approvals = [b_st, c_st].iter().filter(|s| **s == 200).count();
        assert!(
            [b_st, c_st].iter().all(|s| [200, 409].contains(s)),
            "round {round}: {b_st} {c_st}"
        );
        assert!(
            [200, 409].contains(&r_st),
            "round {round}: revocation {r_st} {r}"
        );
        assert!(
            approvals <= 1,
            "round {round}: one approval activates, the other finds it decided"
        );

        // Every node tells the same story, and it is the one the answers told.
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (st, v) = ada.get_json(&format!("/api/v1/me/elevations/{id}")).await;
            assert_eq!(st, 200, "{v}");
            seen.push((
                v["state"].as_str().unwrap().to_string(),
                v["decisions"].as_array().unwrap().len(),
            ));
        }
        assert!(
            seen.windows(2).all(|w| w[0] == w[1]),
            "round {round}: {seen:?}"
        );
        let (state, decisions) = seen[0].clone();
        assert_eq!(
            decisions, approvals,
            "round {round}: decisions recorded = approvals answered 200"
        );
        let expected = if r_st == 200 { "revoked" } else { "active" };
        assert_eq!(
            state, expected,
            "round {round}: approvals {b_st} {c_st}, revocation {r_st}"
        );
        if r_st == 409 {
            assert_eq!(approvals, 1, "a revocation only loses to an approval");
        }

        // Tokens follow the state.
        let t = tokens(&c, &ada, &app).await;
        let elevated = roles(t["access_token"].as_str().unwrap()).contains(&ROLE.into());
        assert_eq!(elevated, state == "active", "round {round}");
        if state == "active" {
            let (st, _) = ada
                .post_json(
                    &format!("/api/v1/me/elevations/{id}/end"),
                    &serde_json::json!({}),
                )
                .await;
            assert_eq!(st, 200);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts three servers and nginx: make scale-test"]
async fn elevation_requests_at_once_never_pass_the_role_limits() {
    require_environment!();
    let c = Cluster::start();
    const ONCALL: &str = "db-admin";
    c.cli(&["role", "add", ONCALL]);
    c.cli(&["group", "add", "dbas"]);
    c.cli(&[
        "pim",
        "policy",
        "set",
        ONCALL,
        "--max-duration",
        "2h",
        "--max-concurrent",
        "1",
    ]);
    c.cli(&["pim", "eligible", "add", ONCALL, "group:dbas"]);
    let mut users = Vec::new();
    for i in 0..6 {
        let name = format!("dba{i}");
        users.push(signed_in(&c, &name).await);
        c.cli(&["group", "add-member", "dbas", &name]);
    }

    // Many users at once: one window.
    let got = join_all(users.iter().map(|b| request_role(b, ONCALL))).await;
    let won: Vec<usize> = (0..got.len()).filter(|i| got[*i].0 == 201).collect();
    assert_eq!(won.len(), 1, "{got:?}");
    for (st, v) in got.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(
            (*st, v["error"].as_str()),
            (403, Some("too_many_active")),
            "{v}"
        );
    }
    let winner = &users[won[0]];
    let (st, _) = winner
        .post_json(
            &format!(
                "/api/v1/me/elevations/{}/end",
                got[won[0]].1["id"].as_str().unwrap()
            ),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(st, 200);

    // One user many times at once, through every node: one open request.
    let loser = &users[(won[0] + 1) % users.len()];
    let got = join_all((0..12).map(|_| request_role(loser, ONCALL))).await;
    assert_eq!(got.iter().filter(|(s, _)| *s == 201).count(), 1, "{got:?}");
    assert!(got.iter().all(|(s, _)| *s == 201 || *s == 409), "{got:?}");
    assert_eq!(loser.nodes_seen(), 3);
}

//! What a node holds of the machine stays bounded: memory after a burst of
//! password sign-ins (each Argon2id check takes 19 MiB), and memory,
//! database connections and file descriptors through a minute of mixed
//! load — nothing grows with the traffic, nothing leaks after it.

use crate::cluster::{Cluster, NODES, Node};
use crate::http::{PASSWORD, field_value};
use crate::oidc::{add_client, add_user};
use crate::require_environment;
use futures_util::future::join_all;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A node's anonymous memory may not pass this, whatever the load.
const MEMORY_BOUND_MIB: f64 = 100.0;
/// `database.max_connections`' default: each node's pool.
const POOL: i64 = 10;

/// One password sign-in straight at `node`; the status of the answer.
async fn sign_in_at(node: &Node, user: &str) -> u16 {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = http.get(node.url("/login")).send().await.unwrap();
    let csrf = field_value(&form.text().await.unwrap(), "csrf").expect("a sign-in form");
    let fields = [("username", user), ("password", PASSWORD), ("csrf", &csrf)];
    let r = http.post(node.url("/login")).form(&fields).send().await;
    r.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts three servers and nginx: make scale-test"]
async fn sixty_four_sign_ins_at_once_leave_a_node_within_its_memory_bound() {
    require_environment!();
    let c = Cluster::start();
    add_user(&c, "sam");
    let node = &c.nodes[1];
    let before = node.resources();
    let burst = (0..64).map(|_| sign_in_at(node, "sam"));
    let statuses = join_all(burst).await;
    assert!(
        statuses.iter().all(|s| *s == 303),
        "every sign-in went through, in turn: {statuses:?}"
    );
    let after = node.resources();
    assert!(
        after.anon_mib <= MEMORY_BOUND_MIB,
        "{:.1} MiB after 64 sign-ins at once ({:.1} before)",
        after.anon_mib,
        before.anon_mib
    );
}

/// Seconds of mixed load (`SCALE_SOAK_SECONDS`, default 60).
fn soak() -> Duration {
    let secs = std::env::var("SCALE_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// Twelve clients through the balancer until `until`: tokens, their
/// introspection, discovery, and now and then a password sign-in straight
/// at a node. How many rounds went right, and why the others did not.
async fn mixed_load(
    c: &Arc<Cluster>,
    app: &crate::oidc::Client,
    until: Instant,
) -> (usize, Vec<String>) {
    let workers = (0..12).map(|w| {
        let (c, app) = (c.clone(), app.clone());
        tokio::spawn(async move {
            let http = crate::http::client(&c, None);
            let (mut ok, mut failed) = (0, Vec::new());
            for round in 0usize.. {
                if Instant::now() >= until {
                    break;
                }
                let outcome = if (round + w) % 25 == 0 {
                    match sign_in_at(&c.nodes[round % NODES], "mia").await {
                        303 => Ok(()),
                        other => Err(format!("sign-in answered {other}")),
                    }
                } else {
                    one_token_round(&c, &http, &app).await
                };
                match outcome {
                    Ok(()) => ok += 1,
                    Err(why) => failed.push(why),
                }
            }
            (ok, failed)
        })
    });
    let mut all = (0, Vec::new());
    for (ok, failed) in join_all(workers).await.into_iter().map(Result::unwrap) {
        all.0 += ok;
        all.1.extend(failed);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts three servers and nginx: make scale-test"]
async fn a_minute_of_mixed_load_keeps_memory_connections_and_descriptors_bounded() {
    require_environment!();
    let c = Arc::new(Cluster::start());
    add_user(&c, "mia");
    let app = add_client(&c, "steady");
    // A few seconds first, so that the balancer's kept-alive connections
    // and the pools are at their working size before the baseline.
    mixed_load(&c, &app, Instant::now() + Duration::from_secs(3)).await;
    let warm: Vec<_> = c.nodes.iter().map(Node::resources).collect();
    let load = tokio::spawn({
        let (c, app) = (c.clone(), app.clone());
        async move { mixed_load(&c, &app, Instant::now() + soak()).await }
    });
    let (mut peak_mib, mut peak_conns) = (0f64, 0i64);
    while !load.is_finished() {
        for n in &c.nodes {
            peak_mib = peak_mib.max(n.resources().anon_mib);
        }
        let db = c.clone();
        let conns = tokio::task::spawn_blocking(move || db.db.connections())
            .await
            .unwrap();
        peak_conns = peak_conns.max(conns);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (done, failed) = load.await.unwrap();
    assert!(
        failed.is_empty(),
        "{} of {} rounds failed: {failed:?}",
        failed.len(),
        done + failed.len()
    );
    assert!(done > 100, "the load ran: {done} rounds");
    assert!(
        peak_mib <= MEMORY_BOUND_MIB,
        "a node reached {peak_mib:.1} MiB"
    );
    assert!(
        peak_conns <= NODES as i64 * POOL,
        "{peak_conns} connections for {NODES} pools of {POOL}"
    );
    // Afterwards nothing is left open beyond the working set: descriptors
    // return to where they were after the warm-up.
    let leaked: Vec<_> = c
        .nodes
        .iter()
        .zip(&warm)
        .map(|(n, before)| (n.port, before.fds, n.resources().fds))
        .filter(|(_, before, after)| *after > before + 16)
        .collect();
    assert!(
        leaked.is_empty(),
        "descriptors (port, before, after): {leaked:?}"
    );
}

/// A `client_credentials` token through the balancer, then its introspection
/// and discovery; why not, if any of them did not answer as it should.
async fn one_token_round(
    c: &Cluster,
    http: &reqwest::Client,
    app: &crate::oidc::Client,
) -> Result<(), String> {
    let answer = |what: &str, r: reqwest::Result<reqwest::Response>| match r {
        Ok(r) => Ok(r),
        Err(e) => Err(format!("{what}: {e}")),
    };
    let r = answer(
        "token",
        http.post(c.url("/token"))
            .basic_auth(&app.id, Some(&app.secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "pim")])
            .send()
            .await,
    )?;
    let (status, t) = (r.status(), r.text().await.unwrap_or_default());
    let v: Value = serde_json::from_str(&t).unwrap_or_default();
    let at = v["access_token"]
        .as_str()
        .ok_or_else(|| format!("token: {status} {t}"))?;
    let r = answer(
        "introspection",
        http.post(c.url("/introspect"))
            .basic_auth(&app.id, Some(&app.secret))
            .form(&[("token", at)])
            .send()
            .await,
    )?;
    let (status, t) = (r.status(), r.text().await.unwrap_or_default());
    if !t.contains("\"active\":true") {
        return Err(format!("introspection: {status} {t}"));
    }
    let r = answer(
        "discovery",
        http.get(c.url("/.well-known/openid-configuration"))
            .send()
            .await,
    )?;
    match r.status().as_u16() {
        200 => Ok(()),
        other => Err(format!("discovery: {other}")),
    }
}

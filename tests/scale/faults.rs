//! Redis going away under load and coming back: what needs it answers 503
//! quickly and says so, what does not keeps working, and the nodes recover
//! without a restart.

use crate::cluster::{Cluster, http_status};
use crate::http::{Browser, client};
use crate::oidc::{active, add_client, add_user, authorize_url, redeem_form, tokens_for};
use crate::require_environment;
use futures_util::future::join_all;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Longest a request may take while Redis is down.
const PROMPT: Duration = Duration::from_secs(5);

struct Answer {
    what: &'static str,
    status: u16,
    body: String,
    retry_after: bool,
    took: Duration,
}

async fn timed(what: &'static str, req: reqwest::RequestBuilder) -> Answer {
    let start = Instant::now();
    let r = req
        .timeout(PROMPT * 2)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = r.status().as_u16();
    let retry_after = r.headers().contains_key("retry-after");
    Answer {
        what,
        status,
        retry_after,
        body: r.text().await.unwrap_or_default(),
        took: start.elapsed(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts three servers and nginx: make scale-test"]
async fn redis_down_under_load_then_back_without_a_restart() {
    require_environment!();
    let mut c = Cluster::start();
    add_user(&c, "olga");
    let app = add_client(&c, "ledger");
    let b = Browser::new(&c);
    let t = tokens_for(&c, &b, &app, "olga", "openid offline_access").await;
    let at = t["access_token"].as_str().unwrap().to_string();
    let before: Vec<usize> = c.nodes.iter().map(|n| n.resources().fds).collect();

    c.redis.kill();
    let http = client(&c, None);
    let fresh = Browser::new(&c);
    let login = fresh.get("/login").await;
    assert_eq!(login.status, 200, "a page view needs no Redis");
    let csrf = login.csrf();
    let mut load = Vec::new();
    for _ in 0..10 {
        load.push(timed(
            "discovery",
            http.get(c.url("/.well-known/openid-configuration")),
        ));
        load.push(timed("jwks", http.get(c.url("/jwks"))));
        load.push(timed(
            "userinfo",
            http.get(c.url("/userinfo")).bearer_auth(&at),
        ));
        load.push(timed(
            "introspection",
            http.post(c.url("/introspect"))
                .basic_auth(&app.id, Some(&app.secret))
                .form(&[("token", at.as_str())]),
        ));
        load.push(timed(
            "sign-in",
            fresh.http.post(c.url("/login")).form(&[
                ("username", "olga"),
                ("password", crate::http::PASSWORD),
                ("csrf", csrf.as_str()),
            ]),
        ));
        load.push(timed(
            "authorization",
            b.http.get(authorize_url(&c, &app, "openid")),
        ));
        load.push(timed(
            "code redemption",
            http.post(c.url("/token"))
                .basic_auth(&app.id, Some(&app.secret))
                .form(&redeem_form("a-code-from-before")),
        ));
    }
    for a in join_all(load).await {
        assert!(a.took < PROMPT, "{} took {:?}", a.what, a.took);
        match a.what {
            "discovery" | "jwks" | "userinfo" | "introspection" => {
                assert_eq!(a.status, 200, "{} without Redis: {}", a.what, a.body)
            }
            _ => {
                assert_eq!(a.status, 503, "{} without Redis: {}", a.what, a.body);
                assert!(a.retry_after, "{}: a 503 says when to come back", a.what);
                assert!(
                    a.body.contains("a required service is unavailable")
                        || a.body.contains("temporarily_unavailable"),
                    "{}: {}",
                    a.what,
                    a.body
                );
            }
        }
    }
    for n in &c.nodes {
        let r = http.get(n.url("/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 503);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (v["database"].as_str(), v["ephemeral"].as_str()),
            (Some("ok"), Some("unreachable")),
            "{v}"
        );
    }

    // Redis returns (empty): every node is ready again by itself, and a
    // whole sign-in works through the balancer.
    c.redis.resume();
    let deadline = Instant::now() + Duration::from_secs(30);
    for n in &c.nodes {
        while http_status(&n.url("/readyz")) != Some(200) {
            assert!(Instant::now() < deadline, "node {} did not recover", n.port);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let t = tokens_for(&c, &Browser::new(&c), &app, "olga", "openid").await;
    assert!(
        active(
            &http,
            &c.url("/introspect"),
            &app,
            t["access_token"].as_str().unwrap()
        )
        .await
    );
    // The outage left nothing open behind it. The load may have grown the
    // database pool (up to 10) and the balancer's kept-alive connections;
    // a leak would be one per request that met the outage (70 here).
    for (n, before) in c.nodes.iter().zip(before) {
        let after = n.resources().fds;
        assert!(
            after <= before + 10 + 16,
            "node {}: {before} descriptors before, {after} after: {}",
            n.port,
            n.descriptor_kinds()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts three servers and nginx: make scale-test"]
async fn sigterm_lets_running_requests_finish() {
    require_environment!();
    let mut c = Cluster::start();
    add_user(&c, "olga");
    // Sign-ins straight to node 0: each waits its turn for password hashing
    // (three at once), so most are still running when the signal comes.
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let node0 = c.nodes[0].url("/login");
    let form = http.get(&node0).send().await.unwrap().text().await.unwrap();
    let csrf = crate::http::field_value(&form, "csrf").unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    const SIGN_INS: usize = 24;
    for _ in 0..SIGN_INS {
        let (http, url, csrf, tx) = (http.clone(), node0.clone(), csrf.clone(), tx.clone());
        tokio::spawn(async move {
            let form = [
                ("username", "olga"),
                ("password", crate::http::PASSWORD),
                ("csrf", &csrf),
            ];
            let r = http.post(url).form(&form).send().await;
            let _ = tx.send(r.map(|r| r.status().as_u16()).map_err(|e| e.to_string()));
        });
    }
    let mut done = vec![rx.recv().await.unwrap()];
    while let Ok(r) = rx.try_recv() {
        done.push(r);
    }
    assert!(done.len() < SIGN_INS, "some sign-ins are still running");
    let status = c.nodes[0].terminate().expect("node 0 stopped");
    assert!(status.success(), "a graceful stop: {status:?}");
    while done.len() < SIGN_INS {
        done.push(rx.recv().await.unwrap());
    }
    assert!(
        done.iter().all(|r| r == &Ok(303)),
        "every sign-in that had started finished: {done:?}"
    );

    // The node is gone; the balancer serves from the others.
    assert_eq!(http_status(&node0), None);
    let b = Browser::new(&c);
    for _ in 0..4 {
        assert_eq!(b.get("/login").await.status, 200);
    }
}

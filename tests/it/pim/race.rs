//! Requests for one role that arrive together are checked one at a time:
//! at most `--max-concurrent` windows, and one open request per user, however
//! many requests race (PostgreSQL locks the role's policy row; SQLite's
//! single writer serialises them anyway).

use super::*;
use crate::common::{TestServer, backends};

const RACERS: usize = 8;

fn statuses(got: &[(u16, Value)]) -> Vec<u16> {
    got.iter().map(|(s, _)| *s).collect()
}

async fn race(browsers: Vec<Arc<Browser>>) -> Vec<(u16, Value)> {
    let tasks: Vec<_> = browsers
        .into_iter()
        .map(|b| tokio::spawn(async move { request(&b, 30, None).await }))
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_requests_never_pass_the_role_limits_together() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let policy = PolicyInput {
            max_concurrent: Some(2),
            ..open_policy()
        };
        srv.services
            .create_role(&Actor::cli(), ROLE, "")
            .await
            .unwrap();
        srv.services
            .set_pim_policy(&Actor::cli(), ROLE, policy)
            .await
            .unwrap();
        srv.services
            .create_group(&Actor::cli(), "billing", "")
            .await
            .unwrap();
        srv.services
            .add_eligibility(
                &Actor::cli(),
                ROLE,
                Principal::Group("billing".into()),
                None,
                None,
            )
            .await
            .unwrap();
        let mut users = Vec::new();
        for i in 0..RACERS {
            let name = format!("user{i}");
            let b = signed_in(&srv, &name).await;
            srv.services
                .set_membership(&Actor::cli(), "billing", &name, true)
                .await
                .unwrap();
            users.push(Arc::new(b));
        }

        // Many users at once: at most two windows.
        let got = race(users.clone()).await;
        let won = got.iter().filter(|(s, _)| *s == 201).count();
        assert_eq!(won, 2, "{backend:?}: {:?}", statuses(&got));
        for (s, v) in got.iter().filter(|(s, _)| *s != 201) {
            assert_eq!(
                (*s, v["error"].as_str()),
                (403, Some("too_many_active")),
                "{v}"
            );
        }

        // One user many times at once: one open request.
        let loser = users
            .iter()
            .zip(&got)
            .find(|(_, (s, _))| *s != 201)
            .map(|(b, _)| b.clone())
            .unwrap();
        let winners: Vec<Value> = got
            .iter()
            .filter(|(s, _)| *s == 201)
            .map(|(_, v)| v["id"].clone())
            .collect();
        // Free the role's slots, so only the per-user rule limits.
        for (b, (s, v)) in users.iter().zip(&got) {
            if *s == 201 {
                assert_eq!(end_elevation(b, &v["id"]).await.0, 200);
            }
        }
        assert_eq!(winners.len(), 2);
        let got = race(vec![loser; RACERS]).await;
        let won = got.iter().filter(|(s, _)| *s == 201).count();
        assert_eq!(won, 1, "{backend:?}: {:?}", statuses(&got));
        assert!(
            got.iter().all(|(s, _)| *s == 201 || *s == 409),
            "{:?}",
            statuses(&got)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_never_opens_more_windows_than_the_role_allows() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let ada = signed_in(&srv, "ada").await;
        let cy = signed_in(&srv, "cy").await;
        let bob = signed_in(&srv, "bob").await;
        srv.services
            .create_group(&Actor::cli(), "approvers", "")
            .await
            .unwrap();
        srv.services
            .set_membership(&Actor::cli(), "approvers", "bob", true)
            .await
            .unwrap();
        let policy = PolicyInput {
            approval: Some("group:approvers:1".into()),
            max_concurrent: Some(1),
            ..open_policy()
        };
        privileged_role(&srv, policy, "ada").await;
        eligible(&srv, "cy").await;
        // Pending requests hold no window, so both may wait.
        let (_, a) = request(&ada, 30, None).await;
        let (_, c) = request(&cy, 30, None).await;
        assert_eq!(
            (a["state"].as_str(), c["state"].as_str()),
            (Some("pending"), Some("pending"))
        );
        let decide = |id: Value| {
            let http = bob.http.clone();
            let url = api(&bob, &format!("/api/v1/approvals/{}", id.as_str().unwrap()));
            async move {
                let r = http
                    .post(url)
                    .json(&json!({"decision": "approve", "comment": "ticket checked"}))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        let (st, v) = decide(a["id"].clone()).await;
        assert_eq!((st, v["state"].as_str()), (200, Some("active")), "{v}");
        let (st, e) = decide(c["id"].clone()).await;
        assert_eq!(
            (st, e["error"].as_str()),
            (403, Some("too_many_active")),
            "{backend:?}: {e}"
        );
        // The refusal stored no decision: it can be approved once a slot frees.
        assert_eq!(end_elevation(&ada, &a["id"]).await.0, 200);
        let (st, v) = decide(c["id"].clone()).await;
        assert_eq!((st, v["state"].as_str()), (200, Some("active")), "{v}");
    }
}

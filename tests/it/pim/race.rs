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
                let r = b
                    .http
                    .post(api(
                        b,
                        &format!("/api/v1/me/elevations/{}/end", v["id"].as_str().unwrap()),
                    ))
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
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

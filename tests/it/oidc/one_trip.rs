//! The token endpoint authenticates a secret-holding client inside the
//! grant's own transaction. These check that nothing of the old order or
//! atomicity was lost: refusals keep their precedence, a refresh race has one
//! winner, and a refused request writes nothing.

use super::{client, draft, tokens_for};
use crate::common::{TestServer, backends};
use portcullis::domain::GrantType;
use portcullis::service::oidc::clients::NewClient;
use serde_json::Value;

async fn post(srv: &TestServer, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(srv.url("/token"))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn grants_of(srv: &TestServer, c: &NewClient) -> usize {
    let id = c.client.client_id.clone();
    srv.services
        .store
        .tx(move |r| r.grants_of_client(&id))
        .unwrap()
        .len()
}

async fn refresh_token(srv: &TestServer, c: &NewClient) -> String {
    let t = tokens_for(srv, c, "dora").await;
    t["refresh_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_keep_their_order_and_write_nothing() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        srv.user("dora").await;
        let c = client(&srv, draft("one-trip")).await;
        let (id, secret) = (c.client.client_id.as_str(), c.secret.as_deref().unwrap());
        let cc = [("grant_type", "client_credentials")];
        // Authentication comes first: a wrong secret or an unknown client is
        // invalid_client whatever the grant asks for.
        for (who, pass) in [(id, "wrong"), ("no-such-client", secret)] {
            for form in [&cc[..], &[("grant_type", "refresh_token")][..]] {
                let (s, v) = post(&srv, who, pass, form).await;
                assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")));
            }
        }
        // Then the grant: a scope the client lacks, a missing refresh token.
        let (s, v) = post(&srv, id, secret, &[cc[0], ("scope", "admin")]).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_scope")),
            "{v}"
        );
        let (s, v) = post(&srv, id, secret, &[("grant_type", "refresh_token")]).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{v}"
        );
        assert_eq!(
            grants_of(&srv, &c).await,
            0,
            "{backend:?}: a refusal wrote a grant"
        );
        // A client that did not register client_credentials may not use it.
        let mut d = draft("code-only");
        d.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
        let narrow = client(&srv, d).await;
        let (s, v) = post(
            &srv,
            &narrow.client.client_id,
            narrow.secret.as_deref().unwrap(),
            &cc,
        )
        .await;
        assert_eq!((s, v["error"].as_str()), (400, Some("unauthorized_client")));
        assert_eq!(grants_of(&srv, &narrow).await, 0);
        // And the one that may gets its token and exactly one grant.
        let (s, v) = post(&srv, id, secret, &cc).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(grants_of(&srv, &c).await, 1);
        // Another client's refresh token is not this client's to use.
        let rt = refresh_token(&srv, &narrow).await;
        let form = [("grant_type", "refresh_token"), ("refresh_token", &rt)];
        let (s, v) = post(&srv, id, secret, &form).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")));
        let (s, v) = post(
            &srv,
            &narrow.client.client_id,
            narrow.secret.as_deref().unwrap(),
            &form,
        )
        .await;
        assert_eq!(s, 200, "the rightful client still may: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_race_has_one_winner_and_ends_the_grant() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        srv.user("dora").await;
        let c = client(&srv, draft("racer")).await;
        let rt = refresh_token(&srv, &c).await;
        let (id, secret) = (c.client.client_id.clone(), c.secret.clone().unwrap());
        let racers = (0..8).map(|_| {
            let (srv_url, id, secret, rt) =
                (srv.url("/token"), id.clone(), secret.clone(), rt.clone());
            tokio::spawn(async move {
                let r = reqwest::Client::new()
                    .post(srv_url)
                    .basic_auth(id, Some(secret))
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap())
            })
        });
        let mut won = Vec::new();
        for r in futures_util::future::join_all(racers).await {
            let (s, v) = r.unwrap();
            match s {
                200 => won.push(v),
                400 => assert_eq!(v["error"], "invalid_grant", "{v}"),
                other => panic!("{backend:?}: {other} {v}"),
            }
        }
        assert_eq!(won.len(), 1, "{backend:?}: exactly one refresh wins");
        // Every loser counted as reuse: the winner's new token is dead too.
        let next = won[0]["refresh_token"].as_str().unwrap();
        let (s, v) = post(
            &srv,
            &id,
            &secret,
            &[("grant_type", "refresh_token"), ("refresh_token", next)],
        )
        .await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")));
        let at = won[0]["access_token"].as_str().unwrap();
        assert_eq!(
            super::rules::introspect(&srv, &c, at).await["active"],
            false
        );
    }
}

async fn post_token_to(srv: &TestServer, path: &str, id: &str, secret: &str, token: &str) -> u16 {
    let r = reqwest::Client::new()
        .post(srv.url(path))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status != 200 {
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_client", "{path}: {v}");
    }
    status
}

/// Introspection and revocation read the client and the token in one
/// transaction; the client's authentication still decides first, whatever
/// the token, and another client's revocation changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_and_revocation_authenticate_before_they_answer() {
    use super::rules::introspect;
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        srv.user("dora").await;
        let c = client(&srv, draft("reader")).await;
        let other = client(&srv, draft("stranger")).await;
        let (id, secret) = (c.client.client_id.as_str(), c.secret.as_deref().unwrap());
        let t = tokens_for(&srv, &c, "dora").await;
        let at = t["access_token"].as_str().unwrap();
        let rt = t["refresh_token"].as_str().unwrap();
        for path in ["/introspect", "/revoke"] {
            for token in [at, rt, "garbage", "a.b.c"] {
                for (who, pass) in [(id, "wrong"), ("no-such-client", secret)] {
                    let s = post_token_to(&srv, path, who, pass, token).await;
                    assert_eq!(s, 401, "{backend:?}: {path} answered {who}/{pass}");
                }
            }
        }
        // The stranger may call, learns nothing and revokes nothing.
        let stranger = (
            other.client.client_id.as_str(),
            other.secret.as_deref().unwrap(),
        );
        for token in [at, rt] {
            assert_eq!(introspect(&srv, &other, token).await["active"], false);
            let s = post_token_to(&srv, "/revoke", stranger.0, stranger.1, token).await;
            assert_eq!(s, 200, "RFC 7009: say nothing");
        }
        assert_eq!(
            introspect(&srv, &c, at).await["active"],
            true,
            "{backend:?}"
        );
        let v = introspect(&srv, &c, rt).await;
        assert_eq!(
            (v["active"].as_bool(), v["username"].as_str()),
            (Some(true), Some("dora"))
        );
        let audit = srv.services.recent_audit(50).await.unwrap();
        assert!(
            !audit
                .iter()
                .any(|e| e.entry.action.starts_with("oidc.revoke")),
            "{backend:?}: {audit:?}"
        );
        // The rightful client's revocation is done and audited.
        assert_eq!(post_token_to(&srv, "/revoke", id, secret, rt).await, 200);
        assert_eq!(introspect(&srv, &c, rt).await["active"], false);
        assert_eq!(
            introspect(&srv, &c, at).await["active"],
            false,
            "the grant ended"
        );
        let audit = srv.services.recent_audit(50).await.unwrap();
        assert!(audit.iter().any(|e| e.entry.action == "oidc.revoke_grant"));
    }
}

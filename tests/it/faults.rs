//! Redis stops while the server is busy: what needs it (sign-in, codes,
//! ceremonies) answers 503 at once with a message and `Retry-After`, never
//! a 500 or a hang; what does not (discovery, JWKS, tokens from the
//! database, introspection, userinfo) keeps working; `/readyz` names Redis;
//! and everything comes back by itself when Redis does.

use crate::common::{Backend, PASSWORD, PgSchema, TestEnv, TestServer, pg_url, redis_url, skip};
use crate::cuttable::{Cuttable, host_port, readiness_within_seconds};
use crate::oidc::{authorize_url, client, draft, tokens_for};
use portcullis::config::Secret;
use serde_json::Value;
use std::time::{Duration, Instant};

/// A request that must answer within a few seconds whatever is down.
async fn timed<F: std::future::Future<Output = T>, T>(what: &str, f: F) -> T {
    let start = Instant::now();
    let out = f.await;
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "{what} took {took:?}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_a_clear_503_for_what_needs_it_and_nothing_else() {
    let (Some(pg), Some(redis)) = (pg_url(), redis_url()) else {
        return skip(
            "redis_down_is_a_clear_503_for_what_needs_it_and_nothing_else",
            "PORTCULLIS_TEST_DATABASE_URL/PORTCULLIS_TEST_REDIS_URL",
        );
    };
    let redis_proxy = Cuttable::to(host_port(&redis)).await;
    let schema = PgSchema::create(&pg);
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.database.url = Secret::new(schema.url());
    env.settings.keys.encryption_key = Some(Secret::new(
        portcullis::crypto::seal::Sealer::generate_key_base64(),
    ));
    env.settings.ephemeral.url =
        Secret::new(redis.replacen(&host_port(&redis), &redis_proxy.addr, 1));
    let srv = TestServer::start_with(env).await;
    srv.user("dora").await;
    let c = client(&srv, draft("steady")).await;
    let (id, secret) = (c.client.client_id.as_str(), c.secret.as_deref().unwrap());
    // A browser with a session, for a code asked for while Redis is away.
    let b = srv.browser();
    assert_eq!(b.login("dora", PASSWORD).await.status, 303);
    let t = tokens_for(&srv, &c, "dora").await;
    let at = t["access_token"].as_str().unwrap().to_string();
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();

    redis_proxy.cut();
    // Readiness names what is down.
    let r = timed("/readyz", http.get(srv.url("/readyz")).send())
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["database"].as_str(), body["ephemeral"].as_str()),
        (Some("ok"), Some("unreachable"))
    );

    // What needs only the database and the keys keeps working.
    for path in ["/.well-known/openid-configuration", "/jwks", "/healthz"] {
        let r = timed(path, http.get(srv.url(path)).send()).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = timed(
        "/userinfo",
        http.get(srv.url("/userinfo")).bearer_auth(&at).send(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "userinfo");
    let form = |f: &[(&str, &str)]| {
        http.post(srv.url("/token"))
            .basic_auth(id, Some(secret))
            .form(f)
            .send()
    };
    let r = timed(
        "/introspect",
        http.post(srv.url("/introspect"))
            .basic_auth(id, Some(secret))
            .form(&[("token", at.as_str())])
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["active"],
        true,
        "introspection"
    );
    let r = timed(
        "client_credentials",
        form(&[("grant_type", "client_credentials")]),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "client_credentials");
    let r = timed(
        "refresh",
        form(&[("grant_type", "refresh_token"), ("refresh_token", &rt)]),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "refresh");
    let rt = r.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();

    // What needs Redis says so: a new sign-in, a new code.
    let stranger = srv.browser();
    let form_page = timed("/login", stranger.get("/login")).await;
    let page = timed(
        "sign-in",
        stranger.post(
            "/login",
            &[
                ("username", "dora"),
                ("password", PASSWORD),
                ("csrf", &form_page.csrf()),
            ],
        ),
    )
    .await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.headers.contains_key("retry-after"));
    assert!(
        !page.body.contains("redis:"),
        "no internals on a page: {}",
        page.body
    );
    let page = timed("authorize", b.get_url(&authorize_url(&srv, &c, &[]))).await;
    assert_eq!(page.status, 503, "{}", page.body);

    // Redis returns: everything works again without a restart.
    let _back = redis_proxy.restore().await;
    let ready = readiness_within_seconds(&srv).await;
    assert_eq!(ready, 200, "ready again");
    tokens_for(&srv, &c, "dora").await;
    let r = form(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(schema);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_gone_is_a_503_and_the_pool_recovers_by_itself() {
    let Some(pg) = pg_url() else {
        return skip(
            "postgres_gone_is_a_503_and_the_pool_recovers_by_itself",
            "PORTCULLIS_TEST_DATABASE_URL",
        );
    };
    let pg_proxy = Cuttable::to(host_port(&pg)).await;
    let schema = PgSchema::create(&pg);
    let via = pg.replacen(&host_port(&pg), &pg_proxy.addr, 1);
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.database.url = Secret::new(schema.url_via(&via));
    env.settings.database.connect_timeout = Duration::from_secs(1);
    env.settings.keys.encryption_key = Some(Secret::new(
        portcullis::crypto::seal::Sealer::generate_key_base64(),
    ));
    let srv = TestServer::start_with(env).await;
    let c = client(&srv, draft("patient")).await;
    let (id, secret) = (c.client.client_id.as_str(), c.secret.as_deref().unwrap());
    let http = reqwest::Client::new();
    let token = || {
        http.post(srv.url("/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    assert_eq!(token().await.unwrap().status(), 200);

    // The server restarts under us: pooled connections die with it.
    pg_proxy.cut();
    let r = timed("/token", token()).await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "temporarily_unavailable", "{v}");
    assert!(
        !v.to_string().contains(&pg_proxy.addr),
        "no connection details to clients: {v}"
    );
    // Keys are held in memory: relying parties can still verify.
    for path in ["/.well-known/openid-configuration", "/jwks"] {
        let r = timed(path, http.get(srv.url(path)).send()).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }

    let _back = pg_proxy.restore().await;
    assert_eq!(
        token().await.unwrap().status(),
        200,
        "recovered without a restart"
    );
    drop(schema);
}

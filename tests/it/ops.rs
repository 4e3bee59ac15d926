//! Health, readiness, metrics and request IDs.

use crate::common::{Backend, PASSWORD, PgSchema, TestEnv, TestServer, pg_url, redis_url, skip};
use crate::cuttable::{Cuttable, host_port, readiness_within_seconds};
use portcullis::config::Secret;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("mia").await;
    let http = reqwest::Client::new();

    let h = http.get(srv.url("/healthz")).send().await.unwrap();
    assert_eq!(h.status(), 200);
    let r = http.get(srv.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["ephemeral"], "ok");

    let b = srv.browser();
    b.login("mia", "wrong wrong").await;
    b.login("mia", PASSWORD).await;
    let m = http.get(srv.url("/metrics")).send().await.unwrap();
    assert!(
        m.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = m.text().await.unwrap();
    assert!(
        text.contains(r#"portcullis_signins_total{method="pwd",outcome="success"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"portcullis_signins_total{method="pwd",outcome="bad_credentials"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"portcullis_http_requests_total{method="POST",route="/login",status="303"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"portcullis_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains("portcullis_http_request_duration_seconds_bucket{route=\"/login\""),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id() {
    let srv = TestServer::start(Backend::Embedded).await;
    let http = reqwest::Client::new();
    let r = http.get(srv.url("/healthz")).send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "{id}");
    let r = http
        .get(srv.url("/healthz"))
        .header("x-request-id", "trace-abc_123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-abc_123");
    let r = http
        .get(srv.url("/healthz"))
        .header("x-request-id", "bad id\twith junk")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "bad id\twith junk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_503_when_the_database_or_redis_is_unreachable() {
    let (Some(pg), Some(redis)) = (pg_url(), redis_url()) else {
        return skip(
            "readyz_turns_503_when_the_database_or_redis_is_unreachable",
            "PORTCULLIS_TEST_DATABASE_URL/PORTCULLIS_TEST_REDIS_URL",
        );
    };
    let pg_proxy = Cuttable::to(host_port(&pg)).await;
    let redis_proxy = Cuttable::to(host_port(&redis)).await;
    let schema = PgSchema::create(&pg);
    let via = pg.replacen(&host_port(&pg), &pg_proxy.addr, 1);
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.database.url = Secret::new(schema.url_via(&via));
    env.settings.database.connect_timeout = std::time::Duration::from_secs(1);
    env.settings.keys.encryption_key = Some(Secret::new(
        portcullis::crypto::seal::Sealer::generate_key_base64(),
    ));
    env.settings.ephemeral.url =
        Secret::new(redis.replacen(&host_port(&redis), &redis_proxy.addr, 1));
    let srv = TestServer::start_with(env).await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(srv.url("/readyz")).send().await.unwrap().status(),
        200
    );

    pg_proxy.cut();
    let r = http.get(srv.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["database"], "unreachable");
    assert_eq!(body["ephemeral"], "ok");
    // Still alive: liveness does not depend on the database.
    assert_eq!(
        http.get(srv.url("/healthz")).send().await.unwrap().status(),
        200
    );
    // Pages that need the database say so instead of failing obscurely.
    let login = srv.browser().get("/login").await;
    assert_eq!(
        login.status, 200,
        "the sign-in form needs only the ephemeral store"
    );

    redis_proxy.cut();
    let r = http.get(srv.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["ephemeral"], "unreachable");

    // When both come back, so does readiness: the pool and the Redis
    // connection manager reconnect by themselves.
    let _pg_back = pg_proxy.restore().await;
    let _redis_back = redis_proxy.restore().await;
    let status = readiness_within_seconds(&srv).await;
    assert_eq!(status, 200, "ready again after the dependencies return");
    drop(schema);
}

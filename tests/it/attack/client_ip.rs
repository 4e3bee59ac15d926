//! The client address comes from every header line, walked right to left
//! through the trusted proxies only.

use crate::common::{Backend, PASSWORD, TestEnv, TestServer};

async fn sign_in_from(srv: &TestServer, header: &str, lines: &[&str]) -> Option<String> {
    let b = srv.browser();
    let csrf = b.get("/login").await.csrf();
    let mut req = b.http.post(srv.url("/login")).form(&[
        ("username", "alice"),
        ("password", PASSWORD),
        ("csrf", csrf.as_str()),
    ]);
    for l in lines {
        req = req.header(header, *l);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 303);
    let audit = srv.services.recent_audit(20).await.unwrap();
    audit
        .iter()
        .find(|e| e.entry.action == "login.success")
        .and_then(|e| e.entry.ip.clone())
}

fn behind_proxy(header: &str) -> TestEnv {
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.trusted_proxies = vec![
        "127.0.0.0/8".parse().unwrap(),
        "10.0.0.0/8".parse().unwrap(),
    ];
    if header == "forwarded" {
        env.settings.forwarded_header = portcullis::config::ForwardedHeader::Forwarded;
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_x_forwarded_for_line_is_not_ignored() {
    let srv = TestServer::start_with(behind_proxy("x-forwarded-for")).await;
    srv.user("alice").await;
    // The client claims a trusted inside address in its own line; the proxy
    // appends the real one as a line of its own.
    let ip = sign_in_from(&srv, "x-forwarded-for", &["10.1.2.3", "203.0.113.9"]).await;
    assert_eq!(ip.as_deref(), Some("203.0.113.9"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc_7239_forwarded_is_understood_when_configured() {
    let srv = TestServer::start_with(behind_proxy("forwarded")).await;
    srv.user("alice").await;
    let ip = sign_in_from(
        &srv,
        "forwarded",
        &["for=10.1.2.3", "for=\"[2001:db8::9]:4711\";proto=https"],
    )
    .await;
    assert_eq!(ip.as_deref(), Some("2001:db8::9"));
    // X-Forwarded-For, which the client can send itself, is not read then.
    let ip = sign_in_from(&srv, "x-forwarded-for", &["198.51.100.1"]).await;
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
}

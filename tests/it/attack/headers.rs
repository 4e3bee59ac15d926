//! HSTS when the issuer is https, and not on a plain-http development issuer.

use crate::common::{Backend, TestEnv, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_only_for_an_https_issuer() {
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.issuer = Some("https://id.example.test".into());
    let srv = TestServer::start_with(env).await;
    // The socket is plain http on loopback; the issuer says what users reach.
    let r = reqwest::get(format!("http://127.0.0.1:{}/login", srv.port))
        .await
        .unwrap();
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    // The browser cookie carries the __Host- prefix (Secure, Path=/, no
    // Domain): a sibling subdomain cannot plant one.
    let set: Vec<&str> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let binding = set
        .iter()
        .find(|c| c.starts_with("__Host-portcullis_csrf="))
        .unwrap_or_else(|| panic!("{set:?}"));
    assert!(
        binding.contains("Secure") && binding.contains("Path=/"),
        "{binding}"
    );
    assert!(!binding.contains("Domain"), "{binding}");
    let plain = TestServer::start(Backend::Embedded).await;
    let r = reqwest::get(plain.url("/login")).await.unwrap();
    assert!(r.headers().get("strict-transport-security").is_none());
}

/// Made-up HTTP methods all count as one `OTHER` series: a client cannot
/// grow /metrics without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_do_not_grow_the_metrics() {
    use std::io::{Read, Write};
    let srv = TestServer::start(Backend::Embedded).await;
    for i in 0..50 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
        write!(
            s,
            "XMETHOD{i:04x} /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
    }
    let m = reqwest::get(srv.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!m.contains("XMETHOD"), "invented methods reached /metrics");
    assert!(m.contains("method=\"OTHER\""), "{m}");
}

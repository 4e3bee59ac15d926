//! A message queued by a node that then dies is still delivered, by another
//! node: the back-channel logout of a sign-out is a row in the database,
//! written with the sign-out, and every node sends what is due.

use crate::cluster::Cluster;
use crate::http::Browser;
use crate::oidc::{REDIRECT, tokens_for};
use crate::require_environment;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A relying party's back-channel logout endpoint: answers 200 and keeps
/// the bodies it was sent.
struct LogoutReceiver {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl LogoutReceiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/bcl", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Headers, then as much body as Content-Length says.
                    while let Ok(n) = s.read(&mut chunk).await {
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            if body.len() >= len {
                                kept.lock().unwrap().push(body.to_string());
                                break;
                            }
                        }
                    }
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        Self { url, bodies }
    }

    fn logout_tokens(&self) -> usize {
        let bodies = self.bodies.lock().unwrap();
        bodies
            .iter()
            .filter(|b| b.starts_with("logout_token="))
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts three servers and nginx: make scale-test"]
async fn a_logout_queued_by_a_node_that_died_is_delivered_by_another() {
    require_environment!();
    let mut c = Cluster::start();
    let rp = LogoutReceiver::start().await;
    crate::oidc::add_user(&c, "nora");
    let v = c.cli_json(&[
        "client",
        "add",
        "--name",
        "notified",
        "--redirect-uri",
        REDIRECT,
        "--first-party",
        "--grant-types",
        "authorization_code",
        "--scopes",
        "openid",
        "--backchannel-logout-uri",
        &rp.url,
        "--json",
    ]);
    let app = crate::oidc::Client {
        id: v["client_id"].as_str().unwrap().into(),
        secret: v["client_secret"].as_str().unwrap().into(),
    };
    let b = Browser::new(&c);
    tokens_for(&c, &b, &app, "nora", "openid").await;

    // The sign-out is answered by some node, which dies at once: SIGKILL,
    // before its own sender (every `pim.sweep_interval`) comes round.
    let account = b.get("/account").await;
    let out = b.post("/logout", &[("csrf", &account.csrf())]).await;
    assert_eq!(out.status, 303, "{}", out.body);
    let dead = c
        .nodes
        .iter()
        .position(|n| out.node.ends_with(&format!(":{}", n.port)))
        .unwrap_or_else(|| panic!("served by {}", out.node));
    c.nodes[dead].kill();

    // Another node sends it. (Had the dead one sent it and died before it
    // recorded that, the attempt's lease would let another send it again.)
    let deadline = Instant::now() + Duration::from_secs(90);
    while rp.logout_tokens() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered = rp.logout_tokens();
    assert!(
        (1..=2).contains(&delivered),
        "{delivered} logout tokens arrived"
    );
    // And the outbox says so, once the sender has recorded it.
    let state = || {
        let log = c.cli_json(&["pim", "webhooks", "--json"]);
        let row = log
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["event"] == "logout.backchannel")
            .cloned();
        row.map(|d| d["state"].as_str().unwrap_or_default().to_string())
    };
    let mut last = state();
    while last.as_deref() != Some("delivered") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        last = state();
    }
    assert_eq!(last.as_deref(), Some("delivered"));
}

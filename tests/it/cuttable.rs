//! A TCP forwarder between a server and a dependency (PostgreSQL, Redis)
//! that a test can cut and restore: the dependency stops, then returns.

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP forwarder the test can cut (and restore), to make a dependency
/// unreachable.
pub struct Cuttable {
    pub addr: String,
    upstream: String,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Cuttable {
    pub async fn to(upstream: String) -> Self {
        Self::listen("127.0.0.1:0", upstream).await
    }

    async fn listen(addr: &str, upstream: String) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let tasks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let t = tasks.clone();
        let up_for_task = upstream.clone();
        let accept = tokio::spawn(async move {
            let upstream = up_for_task;
            while let Ok((mut inbound, _)) = listener.accept().await {
                let up = upstream.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&up).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                t.lock().unwrap().push(h);
            }
        });
        Self {
            addr,
            upstream,
            tasks,
            accept,
        }
    }

    /// Listens again on the same address.
    pub async fn restore(&self) -> Self {
        Self::listen(&self.addr, self.upstream.clone()).await
    }

    pub fn cut(&self) {
        self.accept.abort();
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

pub fn host_port(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split(['/', '?']).next().unwrap();
    let hp = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    if hp.contains(':') {
        hp.to_string()
    } else {
        format!("{hp}:5432")
    }
}

/// `/readyz`'s status once it turns 200, or its last within five seconds:
/// what comes back (a pool, a Redis connection) reconnects by itself.
pub async fn readiness_within_seconds(srv: &crate::common::TestServer) -> u16 {
    let mut status = 0;
    for _ in 0..20 {
        status = reqwest::get(srv.url("/readyz"))
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    status
}

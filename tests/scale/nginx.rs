//! The load balancer in front of the nodes: nginx in the foreground, one
//! process, from a configuration generated for each test.

use crate::cluster::{spawn_tied, stop};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// nginx in the foreground, one process, from a generated configuration.
pub struct Nginx {
    child: Child,
    pub port: u16,
}

impl Nginx {
    pub(crate) fn start(dir: &Path, port: u16, upstreams: &[u16]) -> Self {
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, nginx_conf(dir, port, upstreams)).unwrap();
        let child = spawn_tied(
            Command::new("nginx")
                .arg("-p")
                .arg(dir)
                .arg("-c")
                .arg(&conf)
                // Also the log for what happens before the configuration is
                // read (by default a system path, not writable unprivileged).
                .arg("-e")
                .arg(dir.join("nginx-error.log"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("nginx.stderr")).unwrap()),
        )
        .expect("nginx starts");
        Self { child, port }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        stop(&mut self.child, libc::SIGTERM, Duration::from_secs(5));
    }
}

/// Round robin over the nodes, no stickiness; which node answered is in
/// `X-Served-By`. One process (`master_process off`) so that killing it
/// leaves no worker behind.
pub fn nginx_conf(dir: &Path, port: u16, upstreams: &[u16]) -> String {
    let d = dir.display();
    let servers: String = upstreams
        .iter()
        .map(|p| format!("        server 127.0.0.1:{p};\n"))
        .collect();
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;

    upstream portcullis {{
{servers}        keepalive 32;
        # Below portcullis' own 5 s, so nginx never reuses a connection the
        # node has just closed (a POST on it would fail with 502).
        keepalive_timeout 4s;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://portcullis;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            add_header X-Served-By $upstream_addr always;
        }}
    }}
}}
"#
    )
}

//! The release server as an operator runs it: a config file, the CLI for
//! set-up, `serve` pinned to core 0 with `taskset`, `/readyz` for readiness.

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn env_url(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|s| !s.is_empty())
}

/// Where durable and ephemeral state live for one run.
pub enum Backend {
    /// SQLite in a temporary directory, in-memory ephemeral state.
    Embedded,
    /// A fresh PostgreSQL schema and a fresh Redis key prefix.
    Shared { pg: String, redis: String },
}

impl Backend {
    pub fn available() -> Vec<Backend> {
        let mut v = vec![Backend::Embedded];
        if let (Some(pg), Some(redis)) = (
            env_url("PORTCULLIS_TEST_DATABASE_URL"),
            env_url("PORTCULLIS_TEST_REDIS_URL"),
        ) {
            v.push(Backend::Shared { pg, redis });
        }
        v
    }

    pub fn skipped_reason() -> Option<String> {
        (Self::available().len() < 2).then(|| {
            "PostgreSQL + Redis: skipped (PORTCULLIS_TEST_DATABASE_URL and \
             PORTCULLIS_TEST_REDIS_URL are not both set)"
                .to_string()
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Embedded => "sqlite-memory",
            Backend::Shared { .. } => "postgres-redis",
        }
    }
}

/// A configured installation: its directory, config file and port. Drops
/// its PostgreSQL schema when done.
pub struct Install {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub base: String,
    schema: Option<(String, String)>,
}

impl Install {
    pub fn new(backend: &Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let mut schema = None;
        let (db, eph, extra) = match backend {
            Backend::Embedded => (
                format!("sqlite://{}", dir.path().join("portcullis.db").display()),
                "memory".to_string(),
                String::new(),
            ),
            Backend::Shared { pg, redis } => {
                let name = format!("bench_{unique}");
                let mut c = PgConnection::establish(pg).expect("connect to PostgreSQL");
                c.batch_execute(&format!("CREATE SCHEMA {name}"))
                    .expect("create schema");
                let sep = if pg.contains('?') { '&' } else { '?' };
                let url = format!("{pg}{sep}options=-csearch_path%3D{name}");
                schema = Some((pg.clone(), name));
                let key = portcullis::crypto::seal::Sealer::generate_key_base64();
                (
                    url,
                    redis.clone(),
                    format!(
                        "key_prefix = \"portcullis-bench-{unique}:\"\n\n[keys]\nencryption_key = \"{key}\"\n"
                    ),
                )
            }
        };
        // Every request of the bench comes from 127.0.0.1: lift the
        // per-address cap on started sign-ins, which it would otherwise hit.
        let text = format!(
            "issuer = \"http://localhost:{port}\"\nbind = \"127.0.0.1:{port}\"\n\n\
             [database]\nurl = \"{db}\"\n\n[login]\nmax_starts_per_ip = 4000000000\n\n\
             [log]\nlevel = \"warn\"\n\n[ephemeral]\nurl = \"{eph}\"\n{extra}"
        );
        let config = dir.path().join("portcullis.toml");
        std::fs::write(&config, text).expect("write config");
        Self {
            dir,
            config,
            base: format!("http://localhost:{port}"),
            schema,
        }
    }

    /// Runs a CLI command on this installation.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("PORTCULLIS_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the portcullis binary runs");
        if let Some(input) = stdin {
            let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("CLI finishes")
    }

    /// Like [`Install::cli`], failing the bench when the command fails.
    pub fn cli_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.cli(args, stdin);
        assert!(
            out.status.success(),
            "portcullis {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `serve` on core 0 (when pinning) and waits for `/readyz`.
    pub async fn start(&self, pinned: bool, timeout: Duration) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("server log");
        let mut cmd = if pinned {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(BIN);
            c
        } else {
            Command::new(BIN)
        };
        let started = Instant::now();
        let child = cmd
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env_remove("PORTCULLIS_CONFIG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("the server starts");
        let http = reqwest::Client::new();
        let ready = format!("{}/readyz", self.base);
        loop {
            if let Ok(r) = http.get(&ready).send().await
                && r.status().as_u16() == 200
            {
                break;
            }
            if started.elapsed() > timeout {
                panic!(
                    "the server was not ready in {timeout:?}; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Server {
            pid: child.id(),
            child,
            start_secs: started.elapsed().as_secs_f64(),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Install {
    fn drop(&mut self) {
        if let Some((base, name)) = &self.schema
            && let Ok(mut c) = PgConnection::establish(base)
        {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
        }
    }
}

/// A running server process.
pub struct Server {
    child: Child,
    pub pid: u32,
    /// Spawn to the first `/readyz` 200, in seconds.
    pub start_secs: f64,
}

impl Server {
    /// SIGTERM, then wait for the graceful stop.
    pub fn stop(mut self) {
        // SAFETY: signals our own child by its pid.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A no-op after `stop`; otherwise (a panic) the server must not outlive us.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

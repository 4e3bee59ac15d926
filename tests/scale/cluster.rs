//! The environment each scale test starts for itself: a database of its
//! own on the PostgreSQL server, a Redis of its own, three `portcullis serve`
//! processes and nginx in front of them, all stopped on drop.

use crate::nginx::Nginx;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub const NODES: usize = 3;
/// How long a process may take to answer its readiness check.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// Why the scale tests cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    if std::env::var("PORTCULLIS_TEST_DATABASE_URL").map_or(true, |v| v.is_empty()) {
        return Some("PORTCULLIS_TEST_DATABASE_URL is not set".into());
    }
    for tool in ["nginx", "redis-server"] {
        let found = Command::new(tool)
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Some(format!("the {tool} command is not installed"));
        }
    }
    None
}

/// Returns early from a test, saying why, when the environment is missing;
/// fails instead under `make scale-test` (`PORTCULLIS_SCALE_REQUIRED`),
/// whose whole point is to run them.
#[macro_export]
macro_rules! require_environment {
    () => {
        if let Some(why) = $crate::cluster::unavailable() {
            if std::env::var_os("PORTCULLIS_SCALE_REQUIRED").is_some() {
                panic!("scale test cannot run: {why}");
            }
            eprintln!("SKIPPED: scale test: {why}");
            return;
        }
    };
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child that dies with the test thread that started it even if the test
/// process is killed before `Drop` runs (Linux `PR_SET_PDEATHSIG`).
pub(crate) fn spawn_tied(cmd: &mut Command) -> std::io::Result<Child> {
    // SAFETY: prctl is async-signal-safe and touches only the new process.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
}

pub(crate) fn stop(child: &mut Child, signal: i32, grace: Duration) {
    // SAFETY: signals our own child by its id.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A database of its own on the test PostgreSQL server, dropped afterwards.
pub struct Database {
    admin_url: String,
    pub name: String,
}

impl Database {
    pub fn create() -> Self {
        let admin_url = std::env::var("PORTCULLIS_TEST_DATABASE_URL").unwrap();
        let name = format!("portcullis_scale_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::establish(&admin_url).expect("connect to PostgreSQL");
        conn.batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        Self { admin_url, name }
    }

    /// The URL of this database on the same server.
    pub fn url(&self) -> String {
        let mut u = url::Url::parse(&self.admin_url).unwrap();
        u.set_path(&self.name);
        u.to_string()
    }

    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url()).expect("connect to the scale database")
    }

    /// Connections open to this database, not counting the one asking.
    pub fn connections(&self) -> i64 {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let sql = "SELECT count(*) AS n FROM pg_stat_activity \
                   WHERE datname = current_database() AND pid <> pg_backend_pid()";
        diesel::sql_query(sql)
            .get_result::<Count>(&mut self.connect())
            .map(|c| c.n)
            .unwrap()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut c) = PgConnection::establish(&self.admin_url) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A Redis server of the test's own, never evicting.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
}

impl Redis {
    pub fn start() -> Self {
        let mut r = Self {
            child: None,
            port: free_port(),
        };
        r.resume();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port, empty.
    pub fn resume(&mut self) {
        let child = spawn_tied(
            Command::new("redis-server")
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--maxmemory-policy", "noeviction"])
                .stdout(Stdio::null()),
        )
        .expect("redis-server starts");
        self.child = Some(child);
        wait_until("redis-server accepts connections", || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
    }

    /// Stops it as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop(&mut c, libc::SIGKILL, Duration::from_secs(5));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + START_DEADLINE;
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not ready within {START_DEADLINE:?}");
}

/// One `portcullis serve` process.
pub struct Node {
    pub port: u16,
    pub config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn start(&mut self) {
        let log = std::fs::File::create(&self.log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        cmd.arg("--config").arg(&self.config).arg("serve");
        clear_portcullis_env(&mut cmd);
        cmd.stdout(Stdio::null()).stderr(log);
        self.child = Some(spawn_tied(&mut cmd).expect("portcullis serve starts"));
    }

    /// The process ID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its resident anonymous memory in MiB (the heap, stacks; not the
    /// mapped binary, which a debug build makes large) and its open file
    /// descriptors, from `/proc`.
    pub fn resources(&self) -> Resources {
        let pid = self.pid().expect("the node runs");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kib = |field: &str| -> f64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0.0)
        };
        Resources {
            anon_mib: kib("RssAnon:") / 1024.0,
            fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap()
                .count(),
        }
    }

    /// What its descriptors are, counted by kind, for a failure message.
    pub fn descriptor_kinds(&self) -> String {
        let pid = self.pid().expect("the node runs");
        let mut kinds = std::collections::BTreeMap::<String, usize>::new();
        for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
        {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            let t = target.to_string_lossy();
            let kind = t.split([':', '[']).next().unwrap_or("").to_string();
            *kinds.entry(kind).or_default() += 1;
        }
        format!("{kinds:?}")
    }

    /// Whether the process still runs (a failed start exits).
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: the node dies as in a crash, whatever it was doing.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop(&mut c, libc::SIGKILL, Duration::from_secs(5));
        }
    }

    /// SIGTERM: the documented way to stop a node (it drains for up to 10 s).
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        stop(&mut c, libc::SIGTERM, Duration::from_secs(15));
        c.try_wait().ok().flatten()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop(&mut c, libc::SIGKILL, Duration::from_secs(5));
        }
    }
}

/// The settings' environment overlay would read the test's own variables.
fn clear_portcullis_env(cmd: &mut Command) {
    for (k, _) in std::env::vars() {
        if k.starts_with("PORTCULLIS_") {
            cmd.env_remove(k);
        }
    }
}

/// What a node holds of the machine at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Resources {
    pub anon_mib: f64,
    pub fds: usize,
}

/// How the nodes of a cluster come up.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The first node alone (it migrates and creates keys), then the others:
    /// the journeys then do not depend on the start-up race, which
    /// `AllAtOnce` tests on its own.
    FirstThenRest,
    /// All at once on the empty database.
    AllAtOnce,
}

pub struct Cluster {
    // Field order is drop order: the balancer, then the nodes, then what
    // they use.
    pub nginx: Nginx,
    pub nodes: Vec<Node>,
    pub redis: Redis,
    pub db: Database,
    pub issuer: String,
    /// Configurations and logs; removed last.
    _dir: TempDir,
}

impl Cluster {
    pub fn start() -> Self {
        Self::start_with(Start::FirstThenRest)
    }

    pub fn start_with(how: Start) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create();
        let redis = Redis::start();
        let nginx_port = free_port();
        let issuer = format!("http://localhost:{nginx_port}");
        let key = portcullis::crypto::seal::Sealer::generate_key_base64();
        let mut nodes: Vec<Node> = (0..NODES)
            .map(|i| {
                let port = free_port();
                let config = dir.path().join(format!("node{i}.toml"));
                std::fs::write(
                    &config,
                    node_config(&issuer, port, &db.url(), &redis.url(), &key),
                )
                .unwrap();
                Node {
                    port,
                    config,
                    log: dir.path().join(format!("node{i}.log")),
                    child: None,
                }
            })
            .collect();
        if how == Start::FirstThenRest {
            nodes[0].start();
            wait_ready(&mut nodes[0]);
        }
        for n in nodes.iter_mut().filter(|n| n.child.is_none()) {
            n.start();
        }
        for n in &mut nodes {
            wait_ready(n);
        }
        let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
        let nginx = Nginx::start(dir.path(), nginx_port, &ports);
        let through = format!("http://127.0.0.1:{nginx_port}/readyz");
        wait_until("nginx", || http_status(&through) == Some(200));
        Self {
            nginx,
            nodes,
            redis,
            db,
            issuer,
            _dir: dir,
        }
    }

    /// An absolute URL through the balancer.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The `portcullis` command line against the shared database; panics
    /// with its output when it fails, returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        self.cli_with_input(args, None)
    }

    pub fn cli_with_input(&self, args: &[&str], stdin: Option<&str>) -> String {
        use std::io::Write;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        cmd.arg("--config").arg(&self.nodes[0].config).args(args);
        clear_portcullis_env(&mut cmd);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "portcullis {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.cli(args)).unwrap()
    }

    /// Restarts node `i` (same configuration) and waits until it is ready.
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].terminate();
        self.start_again(i);
    }

    /// Starts node `i` again after it stopped (or was killed).
    pub fn start_again(&mut self, i: usize) {
        self.nodes[i].start();
        wait_ready(&mut self.nodes[i]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (i, n) in self.nodes.iter().enumerate() {
                let log = n.log_text();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                eprintln!("--- node{i} log (last lines, newest first) ---");
                for l in tail {
                    eprintln!("{l}");
                }
            }
        }
    }
}

fn node_config(issuer: &str, port: u16, db: &str, redis: &str, key: &str) -> String {
    format!(
        r#"issuer = "{issuer}"
bind = "127.0.0.1:{port}"
trusted_proxies = ["127.0.0.1/32"]

[database]
url = "{db}"

[ephemeral]
url = "{redis}"

[keys]
encryption_key = "{key}"

# Bursts of sign-ins from one address and for one account are the point
# of some tests here (each counts until its password proves right).
[login]
max_failures_per_account = 1000
max_failures_per_ip = 10000

[log]
level = "warn"
"#
    )
}

/// The status of a GET, or `None` when nothing answers.
pub fn http_status(url: &str) -> Option<u16> {
    let u = url::Url::parse(url).ok()?;
    let addr = (u.host_str()?, u.port()?);
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    use std::io::{Read, Write};
    write!(
        s,
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        u.path(),
        u.host_str()?
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn wait_ready(node: &mut Node) {
    let url = node.url("/readyz");
    let deadline = Instant::now() + START_DEADLINE;
    while Instant::now() < deadline {
        if http_status(&url) == Some(200) {
            return;
        }
        if !node.running() {
            panic!("a node exited during start:\n{}", node.log_text());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("a node was not ready in time:\n{}", node.log_text());
}

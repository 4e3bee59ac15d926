//! Test harness: servers on port 0 with a fixed clock, isolated databases and
//! Redis prefixes, and a browser-like HTTP client.

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use portcullis::clock::FixedClock;
use portcullis::config::{Secret, Settings};
use portcullis::service::directory::NewUser;
use portcullis::service::{Actor, Services};
use reqwest::cookie::{CookieStore, Jar};
use std::sync::Arc;
use tempfile::TempDir;

pub const PASSWORD: &str = "correct horse battery";

/// 2026-03-02 10:00 UTC, a Monday.
pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_772_445_600, 0).unwrap()
}

/// The real time, to the second.
pub fn now_secs() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap()
}

pub fn pg_url() -> Option<String> {
    std::env::var("PORTCULLIS_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

pub fn redis_url() -> Option<String> {
    std::env::var("PORTCULLIS_TEST_REDIS_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

pub fn skip(what: &str, var: &str) {
    eprintln!("SKIPPED: {what}: {var} is not set");
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// A PostgreSQL schema of its own for one test, dropped afterwards.
pub struct PgSchema {
    base: String,
    pub name: String,
}

impl PgSchema {
    pub fn create(base: &str) -> Self {
        let name = unique("t_");
        let mut conn = PgConnection::establish(base).expect("connect to the test database");
        conn.batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap();
        Self {
            base: base.to_string(),
            name,
        }
    }

    /// A URL whose connections use only this schema.
    pub fn url(&self) -> String {
        self.url_via(&self.base)
    }

    /// The same, through another base URL (e.g. a proxy's address).
    pub fn url_via(&self, base: &str) -> String {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-csearch_path%3D{}", self.name)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Ok(mut c) = PgConnection::establish(&self.base) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file and in-memory ephemeral state: the embedded default.
    Embedded,
    /// PostgreSQL schema and a Redis key prefix: the several-node setup.
    Shared,
}

/// The backends available here; the shared one only when both URLs are set.
pub fn backends() -> Vec<Backend> {
    if pg_url().is_some() && redis_url().is_some() {
        vec![Backend::Embedded, Backend::Shared]
    } else {
        skip(
            "PostgreSQL + Redis variant",
            "PORTCULLIS_TEST_DATABASE_URL/PORTCULLIS_TEST_REDIS_URL",
        );
        vec![Backend::Embedded]
    }
}

/// Settings for a test server on port 0 over `backend`. Holds what must
/// outlive the server (temp dir, schema).
pub struct TestEnv {
    pub settings: Settings,
    _dir: TempDir,
    _schema: Option<PgSchema>,
}

impl TestEnv {
    pub fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::from_toml("bind = \"127.0.0.1:0\"").unwrap();
        let mut schema = None;
        match backend {
            Backend::Embedded => {
                let path = dir.path().join("portcullis.db");
                settings.database.url = Secret::new(format!("sqlite://{}", path.display()));
            }
            Backend::Shared => {
                let s = PgSchema::create(&pg_url().unwrap());
                settings.database.url = Secret::new(s.url());
                settings.ephemeral.url = Secret::new(redis_url().unwrap());
                settings.ephemeral.key_prefix = unique("portcullis-test:") + ":";
                settings.keys.encryption_key = Some(Secret::new(
                    portcullis::crypto::seal::Sealer::generate_key_base64(),
                ));
                schema = Some(s);
            }
        }
        Self {
            settings,
            _dir: dir,
            _schema: schema,
        }
    }
}

pub struct TestServer {
    pub base: String,
    pub port: u16,
    pub clock: Arc<FixedClock>,
    pub services: Services,
    handle: actix_web::dev::ServerHandle,
    /// `None` for a node of several: the test holds their environment.
    _env: Option<TestEnv>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(TestEnv::new(backend)).await
    }

    pub async fn start_with(env: TestEnv) -> Self {
        Self::start_at(env, t0()).await
    }

    /// A server whose fixed clock starts at the real time, for tests whose
    /// other side (a relying-party library) checks expiry by the real clock.
    pub async fn start_now(backend: Backend) -> Self {
        Self::start_at(TestEnv::new(backend), now_secs()).await
    }

    pub async fn start_at(env: TestEnv, at: DateTime<Utc>) -> Self {
        let mut srv = Self::node(env.settings.clone(), FixedClock::new(at)).await;
        srv._env = Some(env);
        srv
    }

    /// One of several servers on one database and Redis (the test keeps
    /// their [`TestEnv`]), all on `clock`.
    pub async fn node(settings: Settings, clock: Arc<FixedClock>) -> Self {
        let app = portcullis::build_app_with_clock(settings, clock.clone())
            .await
            .expect("server starts");
        let port = app.port;
        // Where this server listens; the issuer may name a load balancer.
        let base = format!("http://localhost:{port}");
        let services = app.services.clone();
        let handle = app.handle();
        tokio::spawn(app.run());
        Self {
            base,
            port,
            clock,
            services,
            handle,
            _env: None,
        }
    }

    /// The server's clock, in Unix seconds.
    pub fn clock_now(&self) -> i64 {
        use portcullis::clock::Clock;
        self.clock.now().timestamp()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates an active user with [`PASSWORD`].
    pub async fn user(&self, name: &str) {
        self.services
            .create_user(
                &Actor::cli(),
                NewUser {
                    username: name.into(),
                    display_name: Some(format!("{name} Example")),
                    email: Some(format!("{name}@example.test")),
                    password: Some(PASSWORD.into()),
                    must_change_password: false,
                    manager: None,
                },
            )
            .await
            .unwrap();
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let h = self.handle.clone();
        tokio::spawn(async move { h.stop(false).await });
    }
}

/// A cookie-keeping client that does not follow redirects, so tests can see
/// each step a browser takes.
pub struct Browser {
    pub http: reqwest::Client,
    pub jar: Arc<Jar>,
    base: String,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    /// The CSRF token of the first form on the page.
    pub fn csrf(&self) -> String {
        field_value(&self.body, "csrf").expect("page has a CSRF field")
    }
}

pub fn field_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

impl Browser {
    pub fn new(base: &str) -> Self {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            http,
            jar,
            base: base.to_string(),
        }
    }

    /// The server this browser talks to.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn page(resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Page {
            status,
            location,
            body: resp.text().await.unwrap(),
            headers,
        }
    }

    /// GET an absolute URL (e.g. one a relying-party library built).
    pub async fn get_url(&self, url: &str) -> Page {
        Self::page(self.http.get(url).send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Page {
        Self::page(
            self.http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        Self::page(
            self.http
                .post(format!("{}{path}", self.base))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// POSTs JSON, as `static/webauthn.js` does; returns the status and the
    /// JSON answer.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or_default())
    }

    /// Fetches the sign-in page and submits it.
    pub async fn login(&self, username: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, 200);
        let csrf = form.csrf();
        self.post(
            "/login",
            &[
                ("username", username),
                ("password", password),
                ("csrf", &csrf),
            ],
        )
        .await
    }

    /// The value of a cookie the browser holds, if any.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let url = self.base.parse().unwrap();
        let header = self.jar.cookies(&url)?;
        header.to_str().ok()?.split("; ").find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }
}

/// A Redis server of one test's own, on a free port; stopped on drop.
pub struct PrivateRedis {
    child: std::process::Child,
    port: u16,
}

impl PrivateRedis {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn config_set(&self, key: &str, value: &str) {
        let ok = std::process::Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "CONFIG", "SET", key, value])
            .output()
            .expect("redis-cli runs");
        assert!(ok.status.success());
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `redis-server` with `args`, or says the test was skipped when
/// the command is not installed.
pub fn private_redis(args: &[&str]) -> Option<PrivateRedis> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = match std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => {
            skip("a private Redis server", "the redis-server command");
            return None;
        }
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(PrivateRedis { child, port });
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("redis-server did not start");
}

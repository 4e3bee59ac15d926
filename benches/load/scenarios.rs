//! What is measured on one backend, in order: set-up through the CLI, the
//! start on an existing database, idle memory, each scenario under load,
//! the peak memory, then memory with many live sessions.

use crate::Knobs;
use crate::client::{Browser, Creds, REDIRECT, Res, expect, str_field};
use crate::driver::{Op, Stats, run};
use crate::passkey::Key;
use crate::proc::rss_mib;
use crate::server::{Backend, Install};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

const USER: &str = "bench";
const PASSKEY_USER: &str = "bench-passkey";
const PASSWORD: &str = "bench password 123";

#[derive(Debug, Serialize)]
pub struct BackendRun {
    pub backend: String,
    /// Spawn to `/readyz` 200 on an existing database, each try, in seconds.
    pub start_secs: Vec<f64>,
    pub idle_rss_mib: f64,
    /// VmHWM after every scenario ran: the most memory the loads took.
    pub load_peak_rss_mib: f64,
    pub live_sessions: usize,
    pub sessions_rss_mib: Option<f64>,
    /// RSS just before the passkey sign-ins that topped the sessions up:
    /// what the earlier scenarios left behind.
    pub rss_before_top_up_mib: f64,
    /// The passkey sign-ins that brought the live sessions to the target.
    pub sessions_top_up: Stats,
    /// Why there is no ES256 client-credentials figure, when there is none.
    pub es256_note: Option<String>,
    pub scenarios: Vec<Stats>,
}

impl BackendRun {
    pub fn get(&self, scenario: &str) -> Option<&Stats> {
        self.scenarios.iter().find(|s| s.scenario == scenario)
    }
}

fn creds(json: &str) -> Creds {
    let v: Value = serde_json::from_str(json).expect("client add --json answers JSON");
    Creds {
        id: str_field(&v, "client_id").expect("client_id"),
        secret: str_field(&v, "client_secret").expect("client_secret"),
    }
}

struct Get(Browser, &'static str);
impl Op for Get {
    async fn op(&mut self) -> Res<()> {
        let r = self.0.get(self.1).await?;
        expect(&r, 200, self.1)
    }
}

struct ClientCredentials(Browser, Creds);
impl Op for ClientCredentials {
    async fn op(&mut self) -> Res<()> {
        let v = self
            .0
            .backchannel("/token", &self.1, &[("grant_type", "client_credentials")])
            .await?;
        str_field(&v, "access_token").map(drop)
    }
}

/// Chains its own refresh tokens; after a failure it starts a new grant.
struct Refresh {
    b: Browser,
    web: Creds,
    token: String,
}
impl Refresh {
    async fn new(mut b: Browser, web: Creds) -> Res<Self> {
        let v = b.code_flow(&web, "openid offline_access").await?;
        let token = str_field(&v, "refresh_token")?;
        Ok(Self { b, web, token })
    }
}
impl Op for Refresh {
    async fn op(&mut self) -> Res<()> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", &self.token),
        ];
        match self.b.backchannel("/token", &self.web, &form).await {
            Ok(v) => {
                self.token = str_field(&v, "refresh_token")?;
                Ok(())
            }
            Err(e) => {
                let v = self.b.code_flow(&self.web, "openid offline_access").await?;
                self.token = str_field(&v, "refresh_token")?;
                Err(e)
            }
        }
    }
}

struct Introspect {
    b: Browser,
    web: Creds,
    token: String,
}
impl Op for Introspect {
    async fn op(&mut self) -> Res<()> {
        let v = self
            .b
            .backchannel("/introspect", &self.web, &[("token", &self.token)])
            .await?;
        if v["active"] == true {
            Ok(())
        } else {
            Err(format!("introspection: {v}"))
        }
    }
}

/// `/authorize` with a session (no sign-in, no consent) and the code's redemption.
struct AuthorizationCode(Browser, Creds);
impl Op for AuthorizationCode {
    async fn op(&mut self) -> Res<()> {
        let v = self.0.code_flow(&self.1, "openid email").await?;
        str_field(&v, "id_token").map(drop)
    }
}

struct Password(Browser);
impl Op for Password {
    async fn op(&mut self) -> Res<()> {
        self.0.forget();
        self.0.password_sign_in(USER, PASSWORD).await
    }
}

struct Passkey(Browser, Key);
impl Op for Passkey {
    async fn op(&mut self) -> Res<()> {
        self.1.sign_in(&mut self.0).await
    }
}

fn must<T>(r: Res<T>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("bench set-up: {what}: {e}"))
}

pub async fn run_backend(backend: &Backend, k: &Knobs, pinned: bool) -> BackendRun {
    let name = backend.name();
    eprintln!("bench: {name}: first start (creates the database and signing keys)");
    let inst = Install::new(backend);
    let first = inst.start(pinned, Duration::from_secs(300)).await;

    // Set-up through the release binary's CLI, as an operator would.
    for user in [USER, PASSKEY_USER] {
        inst.cli_ok(
            &["user", "add", user, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        );
    }
    let cc_args = [
        "client",
        "add",
        "--name",
        "bench-cc",
        "--grant-types",
        "client_credentials",
        "--json",
    ];
    let cc = creds(&inst.cli_ok(&cc_args, None));
    let es = inst.cli(
        &[&cc_args[..6], &["--access-token-alg", "ES256", "--json"]].concat(),
        None,
    );
    let (cc_es, es256_note) = if es.status.success() {
        (Some(creds(&String::from_utf8_lossy(&es.stdout))), None)
    } else {
        let why = String::from_utf8_lossy(&es.stderr);
        let why = why.lines().next().unwrap_or("").to_string();
        eprintln!("bench: ES256 access tokens: not supported by this build ({why})");
        (None, Some(format!("not supported by this build ({why})")))
    };
    let web = creds(&inst.cli_ok(
        &[
            "client",
            "add",
            "--name",
            "bench-web",
            "--redirect-uri",
            REDIRECT,
            "--grant-types",
            "authorization_code,refresh_token",
            "--first-party",
            "--json",
        ],
        None,
    ));
    first.stop();

    // Start on the existing database, three times; the last one stays up.
    let mut start_secs = Vec::new();
    let mut srv = None;
    for i in 0..3 {
        let s = inst.start(pinned, Duration::from_secs(60)).await;
        start_secs.push(s.start_secs);
        if i < 2 {
            s.stop();
        } else {
            srv = Some(s);
        }
    }
    let srv = srv.expect("server");
    let pid = srv.pid;
    eprintln!("bench: {name}: start on an existing database: {start_secs:.3?} s");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_mib = rss_mib(pid).0;
    eprintln!("bench: {name}: idle RSS {idle_rss_mib:.1} MiB");

    // One signed-in browser per worker (a password-only user), and one
    // passkey per worker for a second user: once it has a passkey, a
    // password alone no longer signs that user in, so all are enrolled in
    // the one session its password opened.
    let n = k.concurrency.max(1);
    let base = inst.base.clone();
    let mut sessions = Vec::new();
    for _ in 0..n {
        let mut b = Browser::new(&base);
        must(b.password_sign_in(USER, PASSWORD).await, "password sign-in");
        sessions.push(b);
    }
    let mut enroller = Browser::new(&base);
    must(
        enroller.password_sign_in(PASSKEY_USER, PASSWORD).await,
        "password sign-in",
    );
    let mut keys = Vec::new();
    for _ in 0..n {
        keys.push(must(Key::enroll(&mut enroller).await, "passkey enrollment"));
    }
    let fresh = || (0..n).map(|_| Browser::new(&base)).collect::<Vec<_>>();
    let dur = k.duration();
    let mut stats = Vec::new();

    let use_wrk = crate::wrk::available();
    for (scenario, path) in [
        ("discovery", "/.well-known/openid-configuration"),
        ("jwks", "/jwks"),
    ] {
        if !k.wants(scenario) {
            continue;
        }
        let url = format!("{base}{path}");
        let by_wrk = use_wrk
            .then(|| crate::wrk::run(scenario, &url, n, k.seconds, pid, pinned))
            .flatten();
        match by_wrk {
            Some(s) => stats.push(s),
            None => {
                let mut w: Vec<_> = fresh().into_iter().map(|b| Get(b, path)).collect();
                stats.push(run(scenario, 1, &mut w, dur, None, pid).await);
            }
        }
    }
    if k.wants("client_credentials") {
        let clients = [
            ("client_credentials_rs256", Some(&cc)),
            ("client_credentials_es256", cc_es.as_ref()),
        ];
        for (scenario, c) in clients {
            let Some(c) = c else { continue };
            let mut w: Vec<_> = fresh()
                .into_iter()
                .map(|b| ClientCredentials(b, c.clone()))
                .collect();
            stats.push(run(scenario, 1, &mut w, dur, None, pid).await);
        }
    }
    if k.wants("refresh") {
        let mut w = Vec::new();
        for b in &sessions {
            w.push(must(
                Refresh::new(b.clone(), web.clone()).await,
                "first refresh token",
            ));
        }
        stats.push(run("refresh_rotation", 1, &mut w, dur, None, pid).await);
    }
    if k.wants("introspection") {
        let mut w = Vec::new();
        for b in &sessions {
            let mut b = b.clone();
            let v = must(b.code_flow(&web, "openid email").await, "access token");
            let token = must(str_field(&v, "access_token"), "access token");
            w.push(Introspect {
                b,
                web: web.clone(),
                token,
            });
        }
        stats.push(run("introspection", 1, &mut w, dur, None, pid).await);
    }
    if k.wants("authorization_code") {
        let w = sessions
            .iter()
            .map(|b| AuthorizationCode(b.clone(), web.clone()));
        stats.push(
            run(
                "authorization_code",
                2,
                &mut w.collect::<Vec<_>>(),
                dur,
                None,
                pid,
            )
            .await,
        );
    }
    if k.wants("password") {
        let w = fresh().into_iter().map(Password);
        stats.push(
            run(
                "password_sign_in",
                2,
                &mut w.collect::<Vec<_>>(),
                dur,
                None,
                pid,
            )
            .await,
        );
    }
    let mut pk: Vec<Passkey> = fresh()
        .into_iter()
        .zip(keys)
        .map(|(b, k)| Passkey(b, k))
        .collect();
    if k.wants("passkey") {
        stats.push(run("passkey_sign_in", 3, &mut pk, dur, None, pid).await);
    }
    let load_peak_rss_mib = rss_mib(pid).1;
    eprintln!("bench: {name}: peak RSS under load {load_peak_rss_mib:.1} MiB");

    // Live sessions: every sign-in above opened one; top up with passkey
    // sign-ins (cheap for the server) to the target, then read RSS.
    let signed_in: u64 = stats
        .iter()
        .filter(|s| s.scenario.ends_with("sign_in"))
        .map(|s| s.ok)
        .sum::<u64>()
        + n as u64;
    let missing = (k.sessions as u64).saturating_sub(signed_in);
    let rss_before_top_up_mib = rss_mib(pid).0;
    let top_up = run("sessions_top_up", 3, &mut pk, dur, Some(missing), pid).await;
    let live_sessions = (signed_in + top_up.ok) as usize;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sessions_rss_mib = rss_mib(pid).0;
    eprintln!("bench: {name}: RSS with {live_sessions} live sessions {sessions_rss_mib:.1} MiB");
    srv.stop();

    BackendRun {
        backend: name.to_string(),
        start_secs,
        idle_rss_mib,
        load_peak_rss_mib,
        live_sessions,
        sessions_rss_mib: Some(sessions_rss_mib),
        rss_before_top_up_mib,
        sessions_top_up: top_up,
        es256_note,
        scenarios: stats,
    }
}

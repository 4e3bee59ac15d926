//! The `serve` process itself: bootstrap output and graceful shutdown.

use crate::common::pg_url;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Served {
    child: Child,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
}

/// A configuration file for a SQLite server logging JSON, with `extra`
/// lines appended to its `[log]` section.
fn json_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let config = dir.join("p.toml");
    std::fs::write(
        &config,
        format!(
            "bind = \"127.0.0.1:0\"\n[database]\nurl = \"sqlite://{}\"\n[log]\nformat = \"json\"\n{extra}",
            dir.join("p.db").display()
        ),
    )
    .unwrap();
    config
}

fn cli(config: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["--config", config.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn serve(config: &std::path::Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let v = serde_json::from_str(&line).unwrap_or(serde_json::Value::String(line));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    Served { child, lines }
}

impl Served {
    /// Log lines up to and including the "listening" one.
    fn until_listening(&self) -> Vec<serde_json::Value> {
        let mut seen = Vec::new();
        loop {
            let v = self
                .lines
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("server did not start: {seen:?}"));
            let done = v["message"]
                .as_str()
                .is_some_and(|m| m.contains("listening"));
            seen.push(v);
            if done {
                return seen;
            }
        }
    }

    /// Sends SIGTERM without waiting for the exit.
    fn signal_term(&self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        self.signal_term();
        self.child.wait().unwrap()
    }
}

/// The issuer and the first administrator's one-time password, from the
/// first start's log.
fn issuer_and_password(lines: &[serde_json::Value]) -> (String, String) {
    let msg = message_with(lines, "first administrator").expect("bootstrap message");
    let password = msg
        .split("one-time password `")
        .nth(1)
        .unwrap()
        .split('`')
        .next()
        .unwrap()
        .to_string();
    let issuer = lines
        .iter()
        .find_map(|v| v["issuer"].as_str())
        .unwrap()
        .to_string();
    (issuer, password)
}

fn message_with<'a>(lines: &'a [serde_json::Value], needle: &str) -> Option<&'a str> {
    lines
        .iter()
        .filter_map(|v| v["message"].as_str())
        .find(|m| m.contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_a_working_one_time_password_once_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = json_config(dir.path(), "");

    let first = serve(&config);
    let lines = first.until_listening();
    let (issuer, password) = issuer_and_password(&lines);
    assert!(issuer.starts_with("http://localhost:"), "{issuer}");
    assert!(
        lines.iter().all(|v| v.is_object()),
        "every log line is JSON: {lines:?}"
    );

    let b = crate::common::Browser::new(&issuer);
    let res = b.login("admin", &password).await;
    assert_eq!(res.location.as_deref(), Some("/account/password"));
    // The request ID a response carries is in the log line of that request.
    let rid = res.headers["x-request-id"].to_str().unwrap().to_string();
    let logged = (0..50).find_map(|_| {
        let v = first
            .lines
            .recv_timeout(std::time::Duration::from_secs(5))
            .ok()?;
        (v["span"]["request_id"] == rid.as_str()).then_some(v)
    });
    let logged = logged.expect("a log line with the request ID");
    assert_eq!(logged["span"]["route"], "/login");
    let status = first.terminate();
    assert!(status.success(), "graceful exit: {status:?}");

    let second = serve(&config);
    let lines = second.until_listening();
    assert!(
        message_with(&lines, "first administrator").is_none(),
        "printed only once: {lines:?}"
    );
    assert!(second.terminate().success());
}

/// SIGTERM stops new work but lets what is in flight finish: a burst of
/// sign-ins queued behind one password check at a time all complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_requests_in_flight_finish() {
    use futures_util::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    // Sign-ins in flight count against the account until their password
    // proves right: room for the burst.
    let config = json_config(
        dir.path(),
        "[login]\npassword_hashing_memory_mib = 19\nmax_failures_per_account = 20\n",
    );
    let mut served = serve(&config);
    let (issuer, password) = issuer_and_password(&served.until_listening());
    let mut forms = Vec::new();
    for _ in 0..6 {
        let b = crate::common::Browser::new(&issuer);
        let csrf = b.get("/login").await.csrf();
        forms.push((b, csrf));
    }
    let mut burst: futures_util::stream::FuturesUnordered<_> = forms
        .iter()
        .map(|(b, csrf)| async {
            let form = [
                ("username", "admin"),
                ("password", &password),
                ("csrf", csrf),
            ];
            b.post("/login", &form).await.status
        })
        .collect();
    // The first answer proves the burst is being served; the rest queue.
    assert_eq!(burst.next().await, Some(303));
    served.signal_term();
    let rest: Vec<u16> = burst.collect().await;
    assert_eq!(rest, vec![303; 5], "every sign-in in flight finished");
    let status = tokio::task::spawn_blocking(move || served.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "graceful exit: {status:?}");
    assert!(
        reqwest::get(format!("{issuer}/healthz")).await.is_err(),
        "nothing listens any more"
    );
}

#[test]
fn nodes_starting_together_migrate_one_postgres_database_once() {
    let Some(base) = pg_url() else {
        return crate::common::skip(
            "nodes_starting_together_migrate_one_postgres_database_once",
            "PORTCULLIS_TEST_DATABASE_URL",
        );
    };
    let schema = crate::common::PgSchema::create(&base);
    let url = schema.url();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                portcullis::store::diesel::DieselStore::open(
                    &portcullis::config::DatabaseSettings {
                        url: portcullis::config::Secret::new(url),
                        ..Default::default()
                    },
                )
                .map(|_| ())
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().expect("every node starts");
    }
}

/// Secret-bearing requests leave no secret in the log: the log names route
/// patterns, never raw paths or queries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_carry_secrets_from_paths_or_queries() {
    let dir = tempfile::tempdir().unwrap();
    let config = json_config(dir.path(), "level = \"debug\"\n");
    let served = serve(&config);
    let mut lines = served.until_listening();
    let issuer = lines
        .iter()
        .find_map(|v| v["issuer"].as_str())
        .unwrap()
        .to_string();
    let invite = cli(&config, &["user", "invite", "erin"]);
    let link = invite
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .expect("an invitation link")
        .to_string();
    let token = link.rsplit('/').next().unwrap().to_string();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The CLI does not know the port a server bound to port 0 chose.
    let r = http
        .get(format!("{issuer}/invite/{token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the invitation opens");
    let secrets = [
        "TXSECRETb6f1c0de",
        "SAMLSECRETa9e2",
        "RELAYSECRET77",
        "HINTSECRET31",
        "CODESECRET5d",
        "REFRESHSECRET8",
    ];
    for path in [
        format!("/authorize/resume?tx={}", secrets[0]),
        format!(
            "/saml/sso?SAMLRequest={}&RelayState={}",
            secrets[1], secrets[2]
        ),
        format!("/end-session?id_token_hint={}", secrets[3]),
        format!("/invite/{}", secrets[4]),
    ] {
        http.get(format!("{issuer}{path}")).send().await.unwrap();
    }
    for body in [
        format!(
            "grant_type=authorization_code&code={}&client_id=x",
            secrets[4]
        ),
        format!(
            "grant_type=refresh_token&refresh_token={}&client_id=x",
            secrets[5]
        ),
    ] {
        http.post(format!("{issuer}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
    }
    // The last request's line marks the end of what to read.
    let r = http
        .get(format!("{issuer}/healthz"))
        .header("x-request-id", "end-of-journey")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    loop {
        let v = served
            .lines
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the marker request is logged");
        let done = v["span"]["request_id"] == "end-of-journey";
        lines.push(v);
        if done {
            break;
        }
    }
    let text: Vec<String> = lines.iter().map(|v| v.to_string()).collect();
    assert!(
        text.iter().any(|l| l.contains("/invite/{token}")),
        "route patterns are logged"
    );
    for s in secrets.iter().copied().chain([token.as_str()]) {
        if let Some(l) = text.iter().find(|l| l.contains(s)) {
            panic!("a secret reached the log: {l}");
        }
    }
    assert!(served.terminate().success());
}

/// An IP-literal issuer starts: passkeys are off with one warning naming
/// `webauthn.rp_id`, and password sign-in works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ip_address_issuer_starts_with_passkeys_off() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("p.toml");
    std::fs::write(
        &config,
        format!(
            "issuer = \"http://127.0.0.1:{port}\"\nbind = \"127.0.0.1:{port}\"\n[database]\nurl = \"sqlite://{}\"\n[log]\nformat = \"json\"\n",
            dir.path().join("p.db").display()
        ),
    )
    .unwrap();
    let served = serve(&config);
    let lines = served.until_listening();
    let warnings: Vec<&str> = lines
        .iter()
        .filter_map(|v| v["message"].as_str())
        .filter(|m| m.contains("webauthn.rp_id"))
        .collect();
    assert_eq!(warnings.len(), 1, "{lines:?}");
    assert!(warnings[0].contains("passkeys are off"), "{}", warnings[0]);
    let password = message_with(&lines, "first administrator")
        .unwrap()
        .split("one-time password `")
        .nth(1)
        .unwrap()
        .split('`')
        .next()
        .unwrap()
        .to_string();
    let base = format!("http://127.0.0.1:{port}");
    let b = crate::common::Browser::new(&base);
    let res = b.login("admin", &password).await;
    assert_eq!(res.location.as_deref(), Some("/account/password"));
    let anon = crate::common::Browser::new(&base);
    let csrf_token = anon.get("/login").await.csrf();
    let (status, body) = anon
        .post_json(
            "/webauthn/login/start",
            &serde_json::json!({"csrf": csrf_token}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.to_string().contains("webauthn.rp_id"), "{body}");
    let meta: serde_json::Value = reqwest::get(format!("{base}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], base.as_str());
    assert!(served.terminate().success());
}

//! The command line as scripts use it, and configuration errors.

use crate::common::{Backend, PASSWORD, TestEnv, TestServer};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub(crate) fn portcullis(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.arg("--config").arg(config).args(args);
    cmd.env_remove("PORTCULLIS_CONFIG");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

pub(crate) fn failure(out: &Output) -> (i32, String) {
    assert!(
        !out.status.success(),
        "expected failure: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stderr.clone()).unwrap(),
    )
}

/// What the CLI did: whether it succeeded, its output, its errors.
pub(crate) fn run_cli(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = portcullis(config, args, None);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A config file in `dir` that points the CLI at the database of `env`.
pub(crate) fn config_for(dir: &Path, env: &TestEnv) -> std::path::PathBuf {
    let db = env.settings.database.url.expose();
    write_config(dir, &format!("[database]\nurl = \"{db}\"\n"))
}

pub(crate) fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("portcullis.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_round_trips_while_a_server_runs_on_the_same_database() {
    let env = TestEnv::new(Backend::Embedded);
    let db_url = env.settings.database.url.expose().to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &format!("[database]\nurl = \"{db_url}\"\n"));
    let srv = TestServer::start_with(env).await;

    let out = portcullis(
        &config,
        &[
            "user",
            "add",
            "nora",
            "--email",
            "nora@example.test",
            "--display-name",
            "Nora N",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(ok(&out).contains("created user nora"));
    // An invitation from the command line opens on the running server.
    let inv: serde_json::Value = serde_json::from_str(&ok(&portcullis(
        &config,
        &["user", "invite", "quinn", "--json"],
        None,
    )))
    .unwrap();
    assert_eq!(inv["created"], true);
    let token = inv["url"]
        .as_str()
        .unwrap()
        .split("/invite/")
        .nth(1)
        .unwrap();
    let page = srv.browser().get(&format!("/invite/{token}")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<strong>quinn</strong>"),
        "{}",
        page.body
    );
    let (code, err) = failure(&portcullis(&config, &["user", "add", "NORA"], None));
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("user nora already exists"), "{err}");

    // The running server sees the new user at once.
    let b = srv.browser();
    assert_eq!(b.login("nora", PASSWORD).await.status, 303);

    let list: serde_json::Value =
        serde_json::from_str(&ok(&portcullis(&config, &["user", "list", "--json"], None))).unwrap();
    let names: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "nora", "quinn"]);
    assert_eq!(list[1]["email"], "nora@example.test");
    assert_eq!(list[1]["display_name"], "Nora N");
    assert_eq!(list[1]["status"], "active");

    ok(&portcullis(
        &config,
        &["group", "add", "ops", "--description", "Operations"],
        None,
    ));
    ok(&portcullis(
        &config,
        &["group", "add-member", "ops", "nora"],
        None,
    ));
    let (_, err) = failure(&portcullis(
        &config,
        &["group", "add-member", "ops", "nora"],
        None,
    ));
    assert!(err.contains("nora is already a member of ops"), "{err}");
    ok(&portcullis(
        &config,
        &["role", "add", "billing:auditor"],
        None,
    ));
    ok(&portcullis(
        &config,
        &["role", "assign", "billing:auditor", "nora"],
        None,
    ));

    let show: serde_json::Value = serde_json::from_str(&ok(&portcullis(
        &config,
        &["user", "show", "nora", "--json"],
        None,
    )))
    .unwrap();
    assert_eq!(show["groups"], serde_json::json!(["ops"]));
    assert_eq!(show["roles"], serde_json::json!(["billing:auditor"]));
    assert_eq!(show["has_password"], true);
    assert_eq!(show["sessions"], 1);
    assert_eq!(show["manager"], serde_json::Value::Null);

    // A manager is named by username and must exist.
    ok(&portcullis(
        &config,
        &["user", "add", "oscar", "--manager", "nora"],
        None,
    ));
    let oscar: serde_json::Value = serde_json::from_str(&ok(&portcullis(
        &config,
        &["user", "show", "oscar", "--json"],
        None,
    )))
    .unwrap();
    assert_eq!(oscar["manager"], "nora");
    assert_eq!(oscar["manager_id"], show["id"]);
    let (_, err) = failure(&portcullis(
        &config,
        &["user", "add", "pia", "--manager", "ghost"],
        None,
    ));
    assert!(err.contains("no user named ghost"), "{err}");
    let text = ok(&portcullis(&config, &["user", "show", "nora"], None));
    assert!(text.contains("groups:       ops"), "{text}");

    let groups: serde_json::Value = serde_json::from_str(&ok(&portcullis(
        &config,
        &["group", "list", "--json"],
        None,
    )))
    .unwrap();
    let ops = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "ops")
        .unwrap();
    assert_eq!(ops["members"], serde_json::json!(["nora"]));
    let roles: serde_json::Value =
        serde_json::from_str(&ok(&portcullis(&config, &["role", "list", "--json"], None))).unwrap();
    assert_eq!(roles[0]["holders"], serde_json::json!(["nora"]));

    // The account page shows what the CLI granted.
    let account = b.get("/account").await;
    assert!(account.body.contains("billing:auditor"), "{}", account.body);

    // Disabling ends the running session at once; enabling lets her back in.
    ok(&portcullis(&config, &["user", "disable", "nora"], None));
    assert_eq!(b.get("/account").await.status, 303);
    assert_eq!(srv.browser().login("nora", PASSWORD).await.status, 403);
    ok(&portcullis(&config, &["user", "enable", "nora"], None));
    assert_eq!(srv.browser().login("nora", PASSWORD).await.status, 303);

    // set-password from stdin, and a generated one-time password.
    ok(&portcullis(
        &config,
        &["user", "set-password", "nora", "--password-stdin"],
        Some("another passphrase\n"),
    ));
    assert_eq!(
        srv.browser()
            .login("nora", "another passphrase")
            .await
            .status,
        303
    );
    let out = ok(&portcullis(
        &config,
        &["user", "set-password", "nora"],
        None,
    ));
    let one_time = out
        .split("one-time password for nora: ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    let res = srv.browser().login("nora", one_time).await;
    assert_eq!(res.location.as_deref(), Some("/account/password"));
    let (_, err) = failure(&portcullis(
        &config,
        &["user", "set-password", "nora", "--password-stdin"],
        Some("short\n"),
    ));
    assert!(err.contains("at least 10 characters"), "{err}");

    ok(&portcullis(
        &config,
        &["role", "unassign", "billing:auditor", "nora"],
        None,
    ));
    ok(&portcullis(
        &config,
        &["group", "remove-member", "ops", "nora"],
        None,
    ));
    let show: serde_json::Value = serde_json::from_str(&ok(&portcullis(
        &config,
        &["user", "show", "nora", "--json"],
        None,
    )))
    .unwrap();
    assert_eq!(show["groups"], serde_json::json!([]));
    assert_eq!(show["roles"], serde_json::json!([]));

    // Errors are one clear line and a non-zero exit.
    for (args, expect) in [
        (vec!["user", "show", "ghost"], "no user named ghost"),
        (
            vec!["group", "add-member", "nope", "nora"],
            "no group named nope",
        ),
        (vec!["role", "assign", "nope", "nora"], "no role named nope"),
        (vec!["user", "add", "bad name"], "username may contain only"),
        (
            vec!["role", "unassign", "billing:auditor", "nora"],
            "does not hold",
        ),
    ] {
        let (code, err) = failure(&portcullis(&config, &args, None));
        assert_eq!(code, 1, "{args:?}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
    }

    // Everything above is on the audit trail, and the chain holds.
    let audit: serde_json::Value = serde_json::from_str(&ok(&portcullis(
        &config,
        &["audit", "list", "--limit", "500", "--json"],
        None,
    )))
    .unwrap();
    let actions: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "bootstrap",
        "user.create",
        "group.add_member",
        "role.assign",
        "user.disable",
        "login.success",
        "login.disabled",
        "user.set_password",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    assert!(ok(&portcullis(&config, &["audit", "verify"], None)).contains("audit chain intact"));
}

#[test]
fn help_describes_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let out = portcullis(&config, &["--help"], None);
    let text = ok(&out);
    for c in ["serve", "migrate", "user", "group", "role", "audit"] {
        assert!(text.contains(c), "{text}");
    }
    let text = ok(&portcullis(&config, &["user", "--help"], None));
    for c in ["add", "list", "show", "disable", "enable", "set-password"] {
        assert!(text.contains(c), "{text}");
    }
    let (code, _) = failure(&portcullis(&config, &["user", "frobnicate"], None));
    assert_eq!(code, 2);
}

#[test]
fn bad_configuration_is_one_line_naming_the_key_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[database]\nurll = \"sqlite://x.db\"\n", "`database.urll`"),
        ("bind = \"not an address\"\n", "`bind`"),
        ("[log]\nformat = \"xml\"\n", "`log.format`"),
        ("[ephemeral]\nurl = \"memcached://x\"\n", "`ephemeral.url`"),
        ("issuer = \"localhost\"\n", "`issuer`"),
        ("this is not toml", "configuration"),
    ];
    for (text, key) in cases {
        let config = write_config(dir.path(), text);
        let (code, err) = failure(&portcullis(&config, &["migrate"], None));
        assert_eq!(code, 2, "{text}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{text}: {err}");
        assert!(err.contains(key), "{text}: {err}");
    }
    // From the environment too, and secrets are not echoed.
    let config = write_config(dir.path(), "");
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["--config", config.to_str().unwrap(), "migrate"])
        .env("PORTCULLIS_DATABASE_URL", "mysql://root:hunter2@db/x")
        .output()
        .unwrap();
    let (code, err) = failure(&out);
    assert_eq!(code, 2);
    assert!(err.contains("`database.url`"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    // A missing file named explicitly is an error, not silently ignored.
    let (code, err) = failure(&portcullis(
        &dir.path().join("nope.toml"),
        &["migrate"],
        None,
    ));
    assert_eq!(code, 2);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn migrate_creates_and_reports_an_up_to_date_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sub/m.db");
    let config = write_config(
        dir.path(),
        &format!("[database]\nurl = \"sqlite://{}\"\n", db.display()),
    );
    assert!(ok(&portcullis(&config, &["migrate"], None)).contains("up to date"));
    assert!(db.exists());
    assert!(ok(&portcullis(&config, &["migrate"], None)).contains("up to date"));
}

/// Piped into a reader that stops early (`| head`), a command ends quietly:
/// no panic and no backtrace when the pipe closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_a_command_quietly() {
    use std::io::Read;
    let env = TestEnv::new(Backend::Embedded);
    let db = env.settings.database.url.expose().to_string();
    let srv = TestServer::start_with(env).await;
    // More output than a pipe holds (64 KiB: 6,000 lines of ~16 bytes), so the command is still
    // writing when the reader hangs up.
    for i in 0..6_000 {
        srv.services
            .create_group(
                &portcullis::service::Actor::cli(),
                &format!("team-{i:04}"),
                "a group with a description long enough to fill the pipe quickly",
            )
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &format!("[database]\nurl = \"{db}\"\n"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("--config")
        .arg(&config)
        .args(["group", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read a little, then hang up, as `head` would.
    let mut out = child.stdout.take().unwrap();
    let mut some = [0u8; 64];
    let _ = out.read(&mut some);
    drop(out);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
}

//! The report: JSON per backend and a markdown summary under `target/bench/`,
//! with the targets as measured ratios and pass or miss.

use crate::Knobs;
use crate::raw::RawRates;
use crate::scenarios::BackendRun;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

#[derive(Debug, Serialize)]
pub struct Target {
    pub what: String,
    pub measured: String,
    /// The measured value over the target's threshold (≥ 1 passes), or for
    /// a "≤" target the threshold over the value.
    pub ratio: Option<f64>,
    pub goal: String,
    pub result: String,
}

fn judge(
    what: String,
    measured: String,
    value: Option<f64>,
    goal: String,
    pass: impl Fn(f64) -> bool,
) -> Target {
    let result = match value {
        None => "n/a".to_string(),
        Some(v) if pass(v) => "pass".to_string(),
        Some(_) => "miss".to_string(),
    };
    Target {
        what,
        measured,
        ratio: value,
        goal,
        result,
    }
}

fn rate(run: &BackendRun, s: &str) -> Option<f64> {
    run.get(s).map(|x| x.ops_per_sec)
}

pub fn targets(raw: &RawRates, run: &BackendRun) -> Vec<Target> {
    let mut t = Vec::new();
    let over = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    let show = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{a:.0}/s vs {b:.0}/s"),
        _ => "not measured".to_string(),
    };
    let cc_rs = rate(run, "client_credentials_rs256");
    t.push(judge(
        "client credentials RS256 / raw RSA-2048 sign".into(),
        show(cc_rs, raw.rsa2048_sign),
        over(cc_rs, raw.rsa2048_sign),
        "≥ 0.8".into(),
        |r| r >= 0.8,
    ));
    let cc_es = rate(run, "client_credentials_es256");
    let mut es = judge(
        "client credentials ES256 / raw P-256 sign".into(),
        show(cc_es, raw.ecdsap256_sign),
        over(cc_es, raw.ecdsap256_sign),
        "≥ 0.8".into(),
        |r| r >= 0.8,
    );
    if let Some(note) = &run.es256_note {
        es.measured = format!("ES256: {note}");
    }
    t.push(es);
    let refresh = rate(run, "refresh_rotation");
    let mut rt = judge(
        "refresh with rotation / raw RSA-2048 sign".into(),
        show(refresh, raw.rsa2048_sign),
        over(refresh, raw.rsa2048_sign),
        "≥ 0.4 on PostgreSQL".into(),
        |r| r >= 0.4,
    );
    if run.backend != "postgres-redis" && rt.ratio.is_some() {
        rt.result = "(target is for PostgreSQL)".into();
    }
    t.push(rt);
    let intro = rate(run, "introspection");
    t.push(judge(
        "JWT introspection / client credentials RS256".into(),
        show(intro, cc_rs),
        over(intro, cc_rs),
        "≥ 10".into(),
        |r| r >= 10.0,
    ));
    let pw = rate(run, "password_sign_in");
    t.push(judge(
        format!("password sign-in / raw Argon2id ({})", raw.argon2id_params),
        show(pw, Some(raw.argon2id_verify)),
        over(pw, Some(raw.argon2id_verify)),
        "≥ 0.9".into(),
        |r| r >= 0.9,
    ));
    let mib = |what: &str, v: Option<f64>, max: f64| {
        judge(
            what.into(),
            v.map_or("not measured".into(), |v| format!("{v:.1} MiB")),
            v.map(|v| max / v),
            format!("≤ {max:.0} MiB"),
            |r| r >= 1.0,
        )
    };
    t.push(mib("idle RSS", Some(run.idle_rss_mib), 30.0));
    t.push(mib(
        "peak RSS under the loads (VmHWM)",
        Some(run.load_peak_rss_mib),
        60.0,
    ));
    let mut sessions = mib(
        &format!("RSS with {} live sessions", run.live_sessions),
        run.sessions_rss_mib,
        100.0,
    );
    sessions.measured += &format!(" ({:.1} before the top-up)", run.rss_before_top_up_mib);
    t.push(sessions);
    let worst = run.start_secs.iter().copied().fold(0.0, f64::max);
    t.push(judge(
        "start on an existing database (worst of 3)".into(),
        run.start_secs
            .iter()
            .map(|s| format!("{s:.3} s"))
            .collect::<Vec<_>>()
            .join(", "),
        (worst > 0.0).then(|| 0.5 / worst),
        "≤ 0.5 s".into(),
        |r| r >= 1.0,
    ));
    t
}

fn git(args: &[&str]) -> String {
    Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn out_dir() -> PathBuf {
    // target/release/portcullis → target/bench
    let bin = PathBuf::from(crate::server::BIN);
    let target = bin.parent().and_then(|p| p.parent()).expect("target dir");
    target.join("bench")
}

pub fn write(
    raw: &RawRates,
    runs: &[BackendRun],
    skipped: Option<&str>,
    k: &Knobs,
    load_before: &str,
) {
    let load_after = crate::proc::loadavg();
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let stamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut commit = git(&["rev-parse", "--short", "HEAD"]);
    if !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty() {
        commit.push_str("-dirty");
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_default();
    let dir = out_dir();
    std::fs::create_dir_all(&dir).expect("create target/bench");

    let mut md = String::new();
    let _ = writeln!(md, "## Benchmark {date} (commit {commit})\n");
    let _ = writeln!(
        md,
        "Server pinned to core 0, load generator on core 1 ({} cores, {cpu}); {} s per \
         scenario, {} concurrent connections; {}. Raw rates on core 0: RSA-2048 {} sign/s, \
         P-256 {} sign/s, Ed25519 {} sign/s (`openssl speed`), Argon2id {:.1} verifications/s \
         ({}, in-process). Load average before {load_before}, after {load_after}.\n",
        crate::proc::cores(),
        k.seconds,
        k.concurrency,
        raw.openssl_version,
        fmt_opt(raw.rsa2048_sign),
        fmt_opt(raw.ecdsap256_sign),
        fmt_opt(raw.ed25519_sign),
        raw.argon2id_verify,
        raw.argon2id_params,
    );
    for run in runs {
        let targets = targets(raw, run);
        let _ = writeln!(md, "### {}\n", run.backend);
        let _ = writeln!(
            md,
            "| scenario | ops/s | req/op | req/s | p50 ms | p99 ms | errors | server CPU | RSS MiB |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for s in &run.scenarios {
            let _ = writeln!(
                md,
                "| {} | {:.1} | {} | {:.0} | {:.2} | {:.2} | {} | {:.0}% | {:.1} |",
                s.scenario.replace('_', " ") + if s.client == "wrk" { " (wrk)" } else { "" },
                s.ops_per_sec,
                s.requests_per_op,
                s.ops_per_sec * f64::from(s.requests_per_op),
                s.p50_ms,
                s.p99_ms,
                s.errors,
                s.server_cpu * 100.0,
                s.server_rss_mib
            );
        }
        let _ = writeln!(
            md,
            "\n| target | measured | ratio | goal | result |\n|---|---|---:|---|---|"
        );
        for t in &targets {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                t.what,
                t.measured,
                t.ratio.map_or("–".into(), |r| format!("{r:.2}")),
                t.goal,
                t.result
            );
        }
        let errors: Vec<String> = run
            .scenarios
            .iter()
            .filter_map(|s| Some(format!("{}: {}", s.scenario, s.first_error.as_ref()?)))
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(md, "\nFirst error of each scenario that had any:\n");
            for e in errors {
                let _ = writeln!(md, "- {e}");
            }
        }
        let _ = writeln!(md);
        let json = serde_json::json!({
            "date": stamp,
            "commit": commit,
            "cpu": cpu,
            "cores": crate::proc::cores(),
            "seconds_per_scenario": k.seconds,
            "concurrency": k.concurrency,
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "raw": raw,
            "run": run,
            "targets": targets,
        });
        let path = dir.join(format!("{date}-{}.json", run.backend));
        std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).expect("write JSON");
        eprintln!("bench: wrote {}", path.display());
    }
    if let Some(s) = skipped {
        let _ = writeln!(md, "{s}\n");
    }
    std::fs::write(dir.join("summary.md"), &md).expect("write summary");
    println!("{md}");
    eprintln!("bench: wrote {}", dir.join("summary.md").display());
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("unknown".into(), |v| format!("{v:.0}"))
}

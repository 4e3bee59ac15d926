//! Stateless GETs (discovery, JWKS) through wrk when it is installed: one
//! core of the Rust client cannot keep the server's core busy on requests
//! this cheap, wrk nearly can.

use crate::driver::Stats;
use crate::proc::{CpuWatch, rss_mib};
use std::process::Command;

pub fn available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("wrk"))
}

/// `wrk -t1` with `connections` for `seconds` (rounded up) on `url`, on
/// core 1 when pinning.
pub fn run(
    scenario: &str,
    url: &str,
    connections: usize,
    seconds: f64,
    pid: u32,
    pinned: bool,
) -> Option<Stats> {
    let secs = format!("{}s", seconds.ceil().max(1.0) as u64);
    let conns = connections.to_string();
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "1", "wrk"]);
        c
    } else {
        Command::new("wrk")
    };
    let cpu = CpuWatch::start(pid);
    let out = cmd
        .args(["-t1", "-c", &conns, "-d", &secs, "--latency", url])
        .output()
        .ok()?;
    let server_cpu = cpu.share();
    let text = String::from_utf8_lossy(&out.stdout);
    let s = parse(scenario, &text, server_cpu, rss_mib(pid).0)?;
    crate::driver::print(&s);
    Some(s)
}

fn parse(scenario: &str, text: &str, server_cpu: f64, rss: f64) -> Option<Stats> {
    let mut total = None;
    let mut seconds = None;
    let mut bad = 0u64;
    let mut socket = 0u64;
    let (mut p50, mut p99) = (None, None);
    for line in text.lines().map(str::trim) {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["50%", v] => p50 = ms(v),
            ["99%", v] => p99 = ms(v),
            [n, "requests", "in", t, ..] => {
                total = n.parse::<u64>().ok();
                seconds = t
                    .trim_end_matches(',')
                    .strip_suffix('s')?
                    .parse::<f64>()
                    .ok();
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => bad = n.parse().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                socket = rest
                    .iter()
                    .filter_map(|x| x.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    let (total, seconds) = (total?, seconds?);
    let errors = bad + socket;
    let ok = total.saturating_sub(bad);
    Some(Stats {
        scenario: scenario.to_string(),
        client: "wrk",
        requests_per_op: 1,
        ok,
        errors,
        seconds,
        ops_per_sec: ok as f64 / seconds,
        p50_ms: p50?,
        p99_ms: p99?,
        server_cpu,
        server_rss_mib: rss,
        first_error: (errors > 0).then(|| format!("{bad} non-2xx/3xx, {socket} socket errors")),
    })
}

/// wrk's latency figures: `812.00us`, `1.20ms`, `2.00s`.
fn ms(v: &str) -> Option<f64> {
    let (num, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|x| x * scale)
}

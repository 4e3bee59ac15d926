//! Closed-loop load: each worker runs its operation back to back until the
//! time is up; every operation's latency is kept.

use crate::proc::{CpuWatch, rss_mib};
use serde::Serialize;
use std::time::{Duration, Instant};

/// One benchmarked operation, repeated by a worker. A worker keeps its own
/// state (cookies, the refresh token it chains).
pub trait Op {
    async fn op(&mut self) -> Result<(), String>;
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub scenario: String,
    /// The load generator: this program (`rust`) or `wrk`.
    pub client: &'static str,
    /// HTTP requests one operation makes.
    pub requests_per_op: u32,
    pub ok: u64,
    pub errors: u64,
    pub seconds: f64,
    /// Successful operations per second.
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Server CPU over the run, in cores (1.0 = its core fully busy).
    pub server_cpu: f64,
    pub server_rss_mib: f64,
    pub first_error: Option<String>,
}

struct Tally {
    lat_us: Vec<u32>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

async fn drive<W: Op>(w: &mut W, until: Option<Instant>, budget: &std::cell::Cell<u64>) -> Tally {
    let mut t = Tally {
        lat_us: Vec::with_capacity(4096),
        ok: 0,
        errors: 0,
        first_error: None,
    };
    loop {
        match until {
            Some(u) if Instant::now() >= u => break,
            None if budget.get() == 0 => break,
            None => budget.set(budget.get() - 1),
            _ => {}
        }
        let start = Instant::now();
        let r = w.op().await;
        t.lat_us
            .push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
        match r {
            Ok(()) => t.ok += 1,
            Err(e) => {
                t.errors += 1;
                t.first_error.get_or_insert(e);
            }
        }
    }
    t
}

/// Runs the workers for `dur` (or, with `count`, until that many operations
/// were started) while watching the server process `pid`.
pub async fn run<W: Op>(
    scenario: &str,
    requests_per_op: u32,
    workers: &mut [W],
    dur: Duration,
    count: Option<u64>,
    pid: u32,
) -> Stats {
    let cpu = CpuWatch::start(pid);
    let start = Instant::now();
    let until = count.is_none().then(|| start + dur);
    let budget = std::cell::Cell::new(count.unwrap_or(0));
    let tallies =
        futures_util::future::join_all(workers.iter_mut().map(|w| drive(w, until, &budget))).await;
    let seconds = start.elapsed().as_secs_f64();
    let server_cpu = cpu.share();
    let mut lat: Vec<u32> = Vec::new();
    let (mut ok, mut errors, mut first_error) = (0, 0, None);
    for t in tallies {
        lat.extend(t.lat_us);
        ok += t.ok;
        errors += t.errors;
        if first_error.is_none() {
            first_error = t.first_error;
        }
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
            f64::from(lat[i]) / 1000.0
        }
    };
    let s = Stats {
        scenario: scenario.to_string(),
        client: "rust",
        requests_per_op,
        ok,
        errors,
        seconds,
        ops_per_sec: ok as f64 / seconds,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        server_cpu,
        server_rss_mib: rss_mib(pid).0,
        first_error,
    };
    print(&s);
    s
}

/// One line per scenario on stderr while the bench runs.
pub fn print(s: &Stats) {
    eprintln!(
        "bench: {:<22} {:>9.1}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {:<5} cpu {:>4.2}  rss {:>5.1} MiB{}",
        s.scenario,
        s.ops_per_sec,
        s.p50_ms,
        s.p99_ms,
        s.errors,
        s.server_cpu,
        s.server_rss_mib,
        s.first_error
            .as_deref()
            .map(|e| format!("  first error: {e}"))
            .unwrap_or_default()
    );
}

//! `make bench`: the release server pinned to one core, driven from the other
//! by this closed-loop load generator, with the raw single-core signing and
//! Argon2id rates measured in the same run. See the README's "Performance".
//!
//! Environment: `BENCH_SECONDS` (per scenario, default 5), `BENCH_CONCURRENCY`
//! (workers, default 16), `BENCH_SESSIONS` (live sessions for the memory
//! target, default 10000), `BENCH_SCENARIOS` (comma list, default all),
//! `PORTCULLIS_TEST_DATABASE_URL` and `PORTCULLIS_TEST_REDIS_URL` (the
//! PostgreSQL + Redis run; skipped without them).

mod client;
mod driver;
mod passkey;
mod proc;
mod raw;
mod report;
mod scenarios;
mod server;
mod wrk;

use std::time::Duration;

/// The run's knobs, from the environment.
#[derive(Clone, Debug)]
pub struct Knobs {
    pub seconds: f64,
    pub concurrency: usize,
    pub sessions: usize,
    pub only: Option<Vec<String>>,
}

impl Knobs {
    fn from_env() -> Self {
        let num = |k: &str, d: f64| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| *v > 0.0)
                .unwrap_or(d)
        };
        Self {
            seconds: num("BENCH_SECONDS", 5.0),
            concurrency: num("BENCH_CONCURRENCY", 16.0) as usize,
            sessions: num("BENCH_SESSIONS", 10_000.0) as usize,
            only: std::env::var("BENCH_SCENARIOS")
                .ok()
                .filter(|s| !s.is_empty())
                .map(|s| s.split(',').map(|x| x.trim().to_string()).collect()),
        }
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }

    pub fn wants(&self, scenario: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|l| l.iter().any(|s| s == scenario))
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a harness-less target has nothing to filter.
    let knobs = Knobs::from_env();
    let pinned = proc::pin_self_to(1);
    if !pinned {
        eprintln!("bench: fewer than 2 cores usable: server and load generator share them");
    }
    let load_before = proc::loadavg();
    let raw = raw::measure(pinned);
    eprintln!("bench: raw rates on core 0: {raw:?}");

    let mut runs = Vec::new();
    for backend in server::Backend::available() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let run = rt.block_on(scenarios::run_backend(&backend, &knobs, pinned));
        runs.push(run);
    }
    let skipped = server::Backend::skipped_reason();
    report::write(&raw, &runs, skipped.as_deref(), &knobs, &load_before);
}

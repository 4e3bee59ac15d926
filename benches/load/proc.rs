//! CPU pinning and the server's CPU time and memory from `/proc`.

/// Pins the calling thread (and the threads it starts later) to `core`.
/// False when the machine has fewer than two usable cores or pinning fails.
pub fn pin_self_to(core: usize) -> bool {
    if cores() < 2 {
        return false;
    }
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the calls only read it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// The 1-, 5- and 15-minute load averages: other work on the machine
/// disturbs the figures, so the report states it.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Online cores of the machine (not of this process's affinity mask).
pub fn cores() -> usize {
    // SAFETY: sysconf only reads a constant.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// CPU seconds (user + system) the process has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ')'.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i)?.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz.max(1.0)
}

/// Resident memory now and its peak (VmRSS, VmHWM) in MiB.
pub fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Watches a process's CPU time over a stretch of wall time.
pub struct CpuWatch {
    pid: u32,
    cpu: f64,
    at: std::time::Instant,
}

impl CpuWatch {
    pub fn start(pid: u32) -> Self {
        Self {
            pid,
            cpu: cpu_seconds(pid),
            at: std::time::Instant::now(),
        }
    }

    /// The share of one core used since `start` (1.0 = one core busy).
    pub fn share(&self) -> f64 {
        let wall = self.at.elapsed().as_secs_f64();
        (cpu_seconds(self.pid) - self.cpu) / wall.max(1e-9)
    }
}

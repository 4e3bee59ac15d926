//! The raw single-core rates the server is compared with, measured on the
//! server's core while the server is not running: OpenSSL signatures
//! (`openssl speed`) and Argon2id verifications with the server's own
//! parameters (through its password module, so they cannot drift apart).

use serde::Serialize;
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct RawRates {
    /// OpenSSL RSA-2048 signatures per second (RS256's cost).
    pub rsa2048_sign: Option<f64>,
    /// OpenSSL ECDSA P-256 signatures per second (ES256).
    pub ecdsap256_sign: Option<f64>,
    /// OpenSSL Ed25519 signatures per second (EdDSA).
    pub ed25519_sign: Option<f64>,
    /// Argon2id verifications per second with the server's parameters.
    pub argon2id_verify: f64,
    /// Those parameters, as the PHC string states them.
    pub argon2id_params: String,
    pub openssl_version: String,
    pub pinned: bool,
}

pub fn measure(pinned: bool) -> RawRates {
    let (rsa, ec, ed, version) = openssl_speed(pinned);
    let (argon, params) = argon2_rate(pinned);
    RawRates {
        rsa2048_sign: rsa,
        ecdsap256_sign: ec,
        ed25519_sign: ed,
        argon2id_verify: argon,
        argon2id_params: params,
        openssl_version: version,
        pinned,
    }
}

fn openssl_speed(pinned: bool) -> (Option<f64>, Option<f64>, Option<f64>, String) {
    let args = ["speed", "-seconds", "2", "rsa2048", "ecdsap256", "ed25519"];
    let out = if pinned {
        Command::new("taskset")
            .args(["-c", "0", "openssl"])
            .args(args)
            .output()
    } else {
        Command::new("openssl").args(args).output()
    };
    let text = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => {
            eprintln!("bench: `openssl speed` did not run; raw signing rates are unknown");
            return (None, None, None, String::new());
        }
    };
    let version = Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    (
        sign_rate(&text, "rsa 2048 bits"),
        sign_rate(&text, "ecdsa (nistp256)"),
        sign_rate(&text, "EdDSA (Ed25519)"),
        version,
    )
}

/// The `sign/s` column of the result line naming `what`: the second number
/// from the end (`sign verify sign/s verify/s`).
fn sign_rate(text: &str, what: &str) -> Option<f64> {
    let line = text.lines().find(|l| {
        l.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains(what)
    })?;
    let nums: Vec<&str> = line.split_whitespace().collect();
    // A run the machine disturbed can print `inf` or 0: no figure then.
    let rate: f64 = nums.get(nums.len().checked_sub(2)?)?.parse().ok()?;
    (rate.is_finite() && rate > 0.0).then_some(rate)
}

/// Argon2id verifications per second on core 0, for two seconds.
fn argon2_rate(pinned: bool) -> (f64, String) {
    let handle = std::thread::spawn(move || {
        if pinned {
            crate::proc::pin_self_to(0);
        }
        let phc = portcullis::crypto::password::hash_password("bench password 123")
            .expect("argon2 hashes");
        // In one kept working memory, as a busy server's hashing slot runs.
        let mut memory = portcullis::crypto::password::WorkingMemory::default();
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed() < Duration::from_secs(2) {
            assert!(portcullis::crypto::password::verify_password_in(
                &mut memory,
                "bench password 123",
                &phc
            ));
            n += 1;
        }
        let params = phc.split('$').nth(3).unwrap_or("").to_string();
        (f64::from(n) / start.elapsed().as_secs_f64(), params)
    });
    handle.join().expect("argon2 thread")
}

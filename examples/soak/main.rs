//! The soak: N `Cached` replicas sharing a real Redis L2 (one node or a three-master
//! cluster) in front of `MockEntra`, many callers on a skewed (tenant, scope) mix, short
//! token lifetimes, and a fault schedule (429 bursts, 5xx bursts, a latency spike, a
//! signing key rotation, consent revoked and re-granted, a Redis restart). Every token
//! handed out is checked with `TokenValidator` and counted; the table at the end says
//! what happened, and the exit code is 1 on any violation.
//!
//! ```text
//! cargo run --release --features redis --example soak -- \
//!     --tenants 10000 --scopes 3 --replicas 4 --minutes 5 [--cluster]
//! ```
//!
//! Needs `redis-server` (and `redis-cli` for `--cluster`); it starts its own.

// A binary: `pub` here means "shared between its modules".
#![allow(unreachable_pub)]

mod caller;
mod redis;
mod report;
mod run;
mod schedule;
mod tally;

use std::time::Duration;

/// Command-line settings.
#[derive(Debug, Clone)]
#[allow(clippy::exhaustive_structs)] // a binary's own settings
pub struct Settings {
    /// Customer tenants, each consented.
    pub tenants: usize,
    /// Resources asked for per tenant (vault, storage, management).
    pub scopes: usize,
    /// `Cached` replicas sharing the L2.
    pub replicas: usize,
    /// Concurrent callers, each on a random replica.
    pub callers: usize,
    /// How long the schedule runs.
    pub duration: Duration,
    /// Lifetime of every token the mock issues.
    pub lifetime: Duration,
    /// A three-master Redis Cluster instead of one node.
    pub cluster: bool,
}

impl Settings {
    fn parse() -> Result<Self, String> {
        let mut s = Self {
            tenants: 10_000,
            scopes: 3,
            replicas: 4,
            callers: 64,
            duration: Duration::from_secs(5 * 60),
            lifetime: Duration::from_secs(90),
            cluster: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or(format!("{flag} needs a number"))
            };
            match flag.as_str() {
                "--tenants" => s.tenants = value()? as usize,
                "--scopes" => s.scopes = (value()? as usize).clamp(1, 3),
                "--replicas" => s.replicas = (value()? as usize).max(1),
                "--callers" => s.callers = (value()? as usize).max(1),
                "--minutes" => s.duration = Duration::from_secs(value()? * 60),
                "--seconds" => s.duration = Duration::from_secs(value()?),
                "--lifetime" => s.lifetime = Duration::from_secs(value()?.max(8)),
                "--cluster" => s.cluster = true,
                other => {
                    return Err(format!(
                        "unknown flag {other}; flags: --tenants N (10000) --scopes 1-3 (3) \
                         --replicas N (4) --callers N (64) --minutes N (5) | --seconds N \
                         --lifetime SECONDS (90) --cluster (default: one Redis node)"
                    ));
                }
            }
        }
        if s.tenants < 200 {
            return Err("--tenants must be at least 200 (each fault touches 1 in 200)".into());
        }
        Ok(s)
    }
}

fn main() {
    let settings = match Settings::parse() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let report = runtime.block_on(run::soak(settings));
    drop(runtime);
    print!("{}", report.table);
    if report.violations > 0 {
        eprintln!("FAILED: {} violation(s)", report.violations);
        std::process::exit(1);
    }
}

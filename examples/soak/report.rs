//! The table printed at the end of a soak.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use azure_cross_tenant::CacheStats;

use crate::Settings;
use crate::schedule::PHASES;
use crate::tally::{Kind, Tally};

/// The printed table and how many checks failed.
pub struct Report {
    pub table: String,
    pub violations: u64,
}

/// What the run produced besides the tally.
pub struct Outcome {
    pub stats: Vec<CacheStats>,
    pub elapsed: Duration,
    pub entra_requests: usize,
    pub tasks_left: usize,
    pub panics: u64,
    pub peak_entries: u64,
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn ms(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.1} us", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

/// The table for a run with `s`, what `tally` counted, and its outcome `o`.
pub fn report(s: &Settings, tally: &Tally, o: &Outcome) -> Report {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let (stats, elapsed, tasks_left) = (&o.stats, o.elapsed, o.tasks_left);
    let mut t = String::new();
    let backend = if s.cluster {
        "a 3-master Redis Cluster"
    } else {
        "one Redis node"
    };
    let _ = writeln!(
        t,
        "\nsoak: {} tenants x {} scopes, {} replicas sharing {backend}, {} callers, {:.0} s, \
         {} s token lifetime\n",
        s.tenants,
        s.scopes,
        s.replicas,
        s.callers,
        elapsed.as_secs_f64(),
        s.lifetime.as_secs()
    );
    let violations = get(&tally.wrong_tenant_or_audience)
        + get(&tally.expired)
        + get(&tally.inside_margin)
        + get(&tally.unexpected_errors)
        + o.panics
        + tasks_left as u64;
    let rows: [(&str, u64, &str); 8] = [
        ("get_token calls", get(&tally.calls), ""),
        (
            "tokens checked (signature, tid, aud, app, exp)",
            get(&tally.checked),
            "",
        ),
        (
            "wrong tenant or audience",
            get(&tally.wrong_tenant_or_audience),
            "must be 0",
        ),
        ("expired when served", get(&tally.expired), "must be 0"),
        (
            "served inside the expiry margin (or without issue time)",
            get(&tally.inside_margin),
            "must be 0",
        ),
        (
            "errors the schedule caused",
            get(&tally.scheduled_errors),
            "",
        ),
        (
            "other errors (incl. tokens that did not validate)",
            get(&tally.unexpected_errors),
            "must be 0",
        ),
        ("panics", o.panics, "must be 0"),
    ];
    for (name, n, note) in rows {
        let _ = writeln!(t, "| {name:<56} | {n:>12} | {note:<9} |");
    }
    let _ = writeln!(
        t,
        "| {:<56} | {:>12} | {:<9} |",
        "tasks left running", tasks_left, "must be 0"
    );
    if let Some(first) = &*tally
        .first_unexpected
        .lock()
        .unwrap_or_else(|p| p.into_inner())
    {
        let _ = writeln!(t, "\nfirst unexpected error: {first}");
    }
    report_requests(&mut t, s, tally, elapsed, o.entra_requests);
    let _ = writeln!(
        t,
        "\n| get_token latency | calls | p50 | p99 | max |\n|---|---:|---:|---:|---:|"
    );
    for (name, h) in [
        ("hit (L1)", &tally.hits),
        ("miss (L2, lease, Entra)", &tally.misses),
    ] {
        let _ = writeln!(
            t,
            "| {name} | {} | {} | {} | {} |",
            h.count(),
            ms(h.quantile(0.5)),
            ms(h.quantile(0.99)),
            ms(h.max())
        );
    }
    let sum = |f: fn(&CacheStats) -> u64| stats.iter().map(f).sum::<u64>();
    let _ = writeln!(
        t,
        "\npeak RSS {:.0} MiB; peak entries {} (all replicas); L2 hits {}, misses {}, errors {}, \
         open failures {}; refreshes {} ({} failed); evictions {}",
        peak_rss_mib(),
        o.peak_entries,
        sum(|s| s.l2_hits),
        sum(|s| s.l2_misses),
        sum(|s| s.l2_errors),
        sum(|s| s.l2_open_failures),
        sum(|s| s.refreshes),
        sum(|s| s.refresh_failures),
        sum(|s| s.evictions),
    );
    Report {
        table: t,
        violations,
    }
}

fn report_requests(t: &mut String, s: &Settings, tally: &Tally, elapsed: Duration, entra: usize) {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let lifetimes = elapsed.as_secs_f64() / s.lifetime.as_secs_f64();
    let _ = writeln!(
        t,
        "\ntoken requests to Entra: {entra} (including retries); the minimum is one per key \
         asked for per token lifetime ({lifetimes:.1} lifetimes elapsed)\n\n\
         | tenants | keys asked for | requests | minimum | ratio |\n|---|---:|---:|---:|---:|"
    );
    for kind in Kind::ALL {
        let (mut keys, mut requests) = (0u64, 0u64);
        for i in (0..s.tenants).filter(|i| Kind::of(*i) == kind) {
            keys += u64::from(get(&tally.touched[i]).count_ones());
            requests += get(&tally.requests[i]);
        }
        let minimum = (keys as f64 * lifetimes.max(1.0)).ceil();
        let _ = writeln!(
            t,
            "| {} | {keys} | {requests} | {minimum:.0} | {:.2} |",
            kind.name(),
            requests as f64 / minimum.max(1.0)
        );
    }
    let _ = writeln!(
        t,
        "\n| phase | from | requests | per second |\n|---|---:|---:|---:|"
    );
    let total = elapsed.as_secs_f64();
    for (i, (at, name)) in PHASES.iter().enumerate() {
        let until = PHASES.get(i + 1).map_or(1.0, |p| p.0);
        let secs = (until - at) * total;
        let n = get(&tally.by_phase[i]);
        let _ = writeln!(
            t,
            "| {name} | {:.0} s | {n} | {:.1} |",
            at * total,
            n as f64 / secs.max(1.0)
        );
    }
}

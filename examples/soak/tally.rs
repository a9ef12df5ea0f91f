//! What the soak counts: outcomes of every call, token requests per tenant and phase, and
//! latency histograms (log-linear buckets, about 6% wide, lock-free).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// A latency histogram: 64 powers of two of nanoseconds, 16 linear steps within each.
pub struct Histogram {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

const SUB: u32 = 16;

impl Histogram {
    pub fn new() -> Self {
        Self {
            buckets: (0..64 * SUB).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    fn index(ns: u64) -> usize {
        if ns < u64::from(SUB) {
            return ns as usize;
        }
        let log = 63 - ns.leading_zeros();
        let step = (ns >> (log - 4)) & u64::from(SUB - 1);
        (log * SUB) as usize + step as usize
    }

    fn lower_bound(i: usize) -> u64 {
        let (log, step) = (i as u32 / SUB, i as u64 % u64::from(SUB));
        if log < 4 {
            return i as u64;
        }
        (1u64 << log) + (step << (log - 4))
    }

    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[Self::index(ns)].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(ns, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The `q` quantile (0..=1), as the lower bound of its bucket.
    pub fn quantile(&self, q: f64) -> Duration {
        let total = self.count();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank {
                return Duration::from_nanos(Self::lower_bound(i));
            }
        }
        self.max()
    }

    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max.load(Ordering::Relaxed))
    }
}

/// Kinds of tenants, each with its own faults (the rest only share the fleet-wide ones).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Normal,
    Throttled,
    ServerErrors,
    Revoked,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Normal,
        Kind::Throttled,
        Kind::ServerErrors,
        Kind::Revoked,
    ];

    /// 1% throttled, 1% 5xx, 0.5% consent revoked and re-granted.
    pub fn of(tenant: usize) -> Self {
        match tenant % 200 {
            1 | 101 => Kind::Throttled,
            2 | 102 => Kind::ServerErrors,
            3 => Kind::Revoked,
            _ => Kind::Normal,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Normal => "no fault of their own",
            Kind::Throttled => "429 bursts (Retry-After 10 s)",
            Kind::ServerErrors => "5xx bursts",
            Kind::Revoked => "consent revoked, re-granted",
        }
    }
}

/// Everything counted during the run.
pub struct Tally {
    pub calls: AtomicU64,
    pub checked: AtomicU64,
    pub wrong_tenant_or_audience: AtomicU64,
    pub invalid: AtomicU64,
    pub expired: AtomicU64,
    pub inside_margin: AtomicU64,
    pub scheduled_errors: AtomicU64,
    pub unexpected_errors: AtomicU64,
    pub hits: Histogram,
    pub misses: Histogram,
    /// Token requests each tenant's keys caused, across replicas.
    pub requests: Vec<AtomicU64>,
    /// Which (tenant, scope) keys were ever asked for.
    pub touched: Vec<AtomicU64>,
    /// Token requests per schedule phase.
    pub by_phase: Vec<AtomicU64>,
    pub phase: AtomicUsize,
    pub first_unexpected: std::sync::Mutex<Option<String>>,
}

impl Tally {
    pub fn new(tenants: usize, phases: usize) -> Self {
        let counters = |n| (0..n).map(|_| AtomicU64::new(0)).collect();
        Self {
            calls: AtomicU64::new(0),
            checked: AtomicU64::new(0),
            wrong_tenant_or_audience: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            inside_margin: AtomicU64::new(0),
            scheduled_errors: AtomicU64::new(0),
            unexpected_errors: AtomicU64::new(0),
            hits: Histogram::new(),
            misses: Histogram::new(),
            requests: counters(tenants),
            touched: counters(tenants),
            by_phase: counters(phases),
            phase: AtomicUsize::new(0),
            first_unexpected: std::sync::Mutex::new(None),
        }
    }

    pub fn note_request(&self, tenant: usize) {
        self.requests[tenant].fetch_add(1, Ordering::Relaxed);
        let phase = self.phase.load(Ordering::Relaxed);
        self.by_phase[phase].fetch_add(1, Ordering::Relaxed);
    }

    pub fn note_touched(&self, tenant: usize, scope: usize) {
        let bit = 1u64 << scope;
        if self.touched[tenant].load(Ordering::Relaxed) & bit == 0 {
            self.touched[tenant].fetch_or(bit, Ordering::Relaxed);
        }
    }

    pub fn unexpected(&self, what: String) {
        self.unexpected_errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_unexpected
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(what);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_down_by_less_than_a_sixteenth() {
        for ns in [0u64, 15, 16, 17, 100, 1_000, 123_456, 10_000_000_000] {
            let low = Histogram::lower_bound(Histogram::index(ns));
            assert!(low <= ns && ns - low <= ns / 16 + 1, "{ns} -> {low}");
        }
    }
}

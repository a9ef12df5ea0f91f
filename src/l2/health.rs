//! The circuit breaker: after a run of failed calls the store is skipped, and a
//! background probe ([`L2Store::ping`](super::L2Store::ping), which reconnects) decides
//! when it is back.
//!
//! A probe, not live traffic, closes the breaker. Traffic cannot: the first command on a
//! connection broken by an outage fails (that failure is what makes a client reconnect),
//! so a half-open breaker that reopens on one failure always reopens once more after an
//! outage, doubling it. The probe reconnects before it pings, and runs in the background,
//! so no caller waits on it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

/// What a call should do now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Use the store.
    Call,
    /// Skip it (a miss): the breaker is open.
    Skip,
    /// Skip it, and start a probe: the breaker is open and a probe is due.
    Probe,
}

pub(crate) struct Health {
    threshold: u32,
    probe_every: Duration,
    failures: AtomicU32,
    open: AtomicBool,
    probe: Mutex<Probe>,
}

struct Probe {
    /// No probe starts before then.
    next: SystemTime,
    running: bool,
}

impl Health {
    pub(crate) fn new(threshold: u32, probe_every: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            probe_every,
            failures: AtomicU32::new(0),
            open: AtomicBool::new(false),
            probe: Mutex::new(Probe {
                next: SystemTime::UNIX_EPOCH,
                running: false,
            }),
        }
    }

    fn probe(&self) -> std::sync::MutexGuard<'_, Probe> {
        self.probe.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    pub(crate) fn gate(&self, now: SystemTime) -> Gate {
        if !self.is_open() {
            return Gate::Call;
        }
        let mut probe = self.probe();
        if probe.running || now < probe.next {
            return Gate::Skip;
        }
        probe.running = true;
        Gate::Probe
    }

    pub(crate) fn succeeded(&self) {
        // Read first: a shared write on every successful call would be a needless
        // cache-line transfer between cores.
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// Counts a failure; true if it opened the breaker. The first probe is due at once:
    /// it runs in the background, and a short blip should cost no more than it lasted.
    pub(crate) fn failed(&self, now: SystemTime) -> bool {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures < self.threshold || self.open.swap(true, Ordering::AcqRel) {
            return false;
        }
        let mut probe = self.probe();
        if !probe.running {
            probe.next = now;
        }
        true
    }

    /// Opens the breaker whatever the count (an invalidation L2 did not take must be
    /// written before this replica reads L2 again); a probe is due at once.
    pub(crate) fn force_open(&self, now: SystemTime) {
        if self.open.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut probe = self.probe();
        if !probe.running {
            probe.next = now;
        }
    }

    /// Records a probe that started at `started`: success closes the breaker; failure
    /// schedules the next probe one interval after this one started.
    pub(crate) fn probed(&self, ok: bool, started: SystemTime) {
        let mut probe = self.probe();
        probe.running = false;
        if ok {
            self.failures.store(0, Ordering::Relaxed);
            self.open.store(false, Ordering::Release);
        } else {
            probe.next = started + self.probe_every;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_only_a_probe_closes_it() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let h = Health::new(3, Duration::from_secs(2));
        assert!(!h.failed(t0) && !h.failed(t0));
        h.succeeded();
        assert!(!h.failed(t0) && !h.failed(t0));
        assert!(h.failed(t0), "the third failure in a row opens it");
        assert_eq!(h.gate(t0), Gate::Probe, "the first probe is due at once");
        assert_eq!(h.gate(t0), Gate::Skip, "one probe at a time");
        h.probed(false, t0);
        assert_eq!(h.gate(t0 + Duration::from_millis(1999)), Gate::Skip);
        assert_eq!(h.gate(t0 + Duration::from_secs(2)), Gate::Probe);
        h.probed(true, t0 + Duration::from_secs(2));
        assert_eq!(h.gate(t0 + Duration::from_secs(2)), Gate::Call);
        assert!(!h.failed(t0), "failures start from zero again");
    }
}

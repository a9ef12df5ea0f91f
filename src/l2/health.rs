//! The circuit breaker, one per part of the store ([`L2Store::partition`]: one for a
//! single Redis, one per hash slot of a Redis Cluster): after a run of failed calls that
//! part is skipped, and a background probe ([`L2Store::ping_partition`], which
//! reconnects) decides when it is back. A lost Cluster master so turns off only its own
//! slots; the others keep sharing.
//!
//! A probe, not live traffic, closes a breaker. Traffic cannot: the first command on a
//! connection broken by an outage fails (that failure is what makes a client reconnect),
//! so a half-open breaker that reopens on one failure always reopens once more after an
//! outage, doubling it. The probe reconnects before it pings, and runs in the background,
//! so no caller waits on it.
//!
//! Only parts in trouble (a failure since their last success, or open) are kept, in one
//! map behind a flag: while the store is healthy a call reads the flag and nothing else.
//!
//! [`L2Store::partition`]: super::L2Store::partition
//! [`L2Store::ping_partition`]: super::L2Store::ping_partition

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// What a call should do now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Use the store.
    Call,
    /// Skip it (a miss): the part's breaker is open.
    Skip,
    /// Skip it, and start a probe of the part: its breaker is open and a probe is due.
    Probe,
}

pub(crate) struct Health {
    threshold: u32,
    probe_every: Duration,
    /// Parts with a failure since their last success, or open. Bounded by the number of
    /// parts (16,384 hash slots at most).
    troubled: Mutex<HashMap<u32, Breaker>>,
    /// Whether `troubled` may hold anything.
    any: AtomicBool,
}

struct Breaker {
    failures: u32,
    open: bool,
    /// No probe starts before then.
    next_probe: SystemTime,
    probing: bool,
}

impl Breaker {
    fn new() -> Self {
        Self {
            failures: 0,
            open: false,
            next_probe: SystemTime::UNIX_EPOCH,
            probing: false,
        }
    }

    /// Opens it; the first probe is due at once: it runs in the background, and a short
    /// blip should cost no more than it lasted. True if it was closed.
    fn open(&mut self, now: SystemTime) -> bool {
        if self.open {
            return false;
        }
        self.open = true;
        if !self.probing {
            self.next_probe = now;
        }
        true
    }
}

impl Health {
    pub(crate) fn new(threshold: u32, probe_every: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            probe_every,
            troubled: Mutex::new(HashMap::new()),
            any: AtomicBool::new(false),
        }
    }

    fn troubled(&self) -> MutexGuard<'_, HashMap<u32, Breaker>> {
        self.troubled.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Updates `any` after a change to `map` (under its lock).
    fn settle(&self, map: &HashMap<u32, Breaker>) {
        self.any.store(!map.is_empty(), Ordering::Release);
    }

    #[cfg(test)]
    fn is_open(&self, part: u32) -> bool {
        self.any.load(Ordering::Acquire) && self.troubled().get(&part).is_some_and(|b| b.open)
    }

    pub(crate) fn gate(&self, part: u32, now: SystemTime) -> Gate {
        if !self.any.load(Ordering::Acquire) {
            return Gate::Call;
        }
        let mut map = self.troubled();
        let Some(breaker) = map.get_mut(&part).filter(|b| b.open) else {
            return Gate::Call;
        };
        if breaker.probing || now < breaker.next_probe {
            return Gate::Skip;
        }
        breaker.probing = true;
        Gate::Probe
    }

    pub(crate) fn succeeded(&self, part: u32) {
        // The healthy path touches no shared write: one flag read.
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let mut map = self.troubled();
        if map.get(&part).is_some_and(|b| !b.open) {
            map.remove(&part);
            self.settle(&map);
        }
    }

    /// Counts a failure of `part`; true if it opened its breaker.
    pub(crate) fn failed(&self, part: u32, now: SystemTime) -> bool {
        let mut map = self.troubled();
        let breaker = map.entry(part).or_insert_with(Breaker::new);
        breaker.failures = breaker.failures.saturating_add(1);
        let opened = breaker.failures >= self.threshold && breaker.open(now);
        self.settle(&map);
        opened
    }

    /// Opens `part`'s breaker whatever the count (an invalidation it did not take must be
    /// written before this replica reads that part again); a probe is due at once.
    pub(crate) fn force_open(&self, part: u32, now: SystemTime) {
        let mut map = self.troubled();
        map.entry(part).or_insert_with(Breaker::new).open(now);
        self.settle(&map);
    }

    /// Records a probe of `part` that started at `started`: success closes its breaker;
    /// failure schedules the next probe one interval after this one started.
    pub(crate) fn probed(&self, part: u32, ok: bool, started: SystemTime) {
        let mut map = self.troubled();
        if ok {
            map.remove(&part);
        } else if let Some(breaker) = map.get_mut(&part) {
            breaker.probing = false;
            breaker.next_probe = started + self.probe_every;
        }
        self.settle(&map);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_only_a_probe_closes_it() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let h = Health::new(3, Duration::from_secs(2));
        assert!(!h.failed(0, t0) && !h.failed(0, t0));
        h.succeeded(0);
        assert!(!h.failed(0, t0) && !h.failed(0, t0));
        assert!(h.failed(0, t0), "the third failure in a row opens it");
        assert_eq!(h.gate(0, t0), Gate::Probe, "the first probe is due at once");
        assert_eq!(h.gate(0, t0), Gate::Skip, "one probe at a time");
        h.probed(0, false, t0);
        assert_eq!(h.gate(0, t0 + Duration::from_millis(1999)), Gate::Skip);
        assert_eq!(h.gate(0, t0 + Duration::from_secs(2)), Gate::Probe);
        h.probed(0, true, t0 + Duration::from_secs(2));
        assert_eq!(h.gate(0, t0 + Duration::from_secs(2)), Gate::Call);
        assert!(!h.failed(0, t0), "failures start from zero again");
    }

    #[test]
    fn one_part_down_leaves_the_others_alone() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let h = Health::new(2, Duration::from_secs(2));
        assert!(!h.failed(7, t0) && h.failed(7, t0));
        assert_eq!(h.gate(7, t0), Gate::Probe);
        assert_eq!(h.gate(8, t0), Gate::Call);
        assert!(!h.failed(8, t0), "another part counts its own failures");
        h.succeeded(8);
        h.force_open(9, t0);
        assert!(h.is_open(9) && h.is_open(7) && !h.is_open(8));
        h.probed(7, true, t0);
        h.probed(9, true, t0);
        assert!(
            !h.any.load(Ordering::Acquire),
            "nothing kept once all is well"
        );
    }
}

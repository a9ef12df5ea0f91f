//! [`CacheStats`] and the counters behind them.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

/// What a [`Cached`](super::Cached) provider has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Calls answered from the cache.
    pub hits: u64,
    /// Token requests made for a missing or expired entry (one per flight, however many
    /// callers waited on it).
    pub misses: u64,
    /// Background refreshes started.
    pub refreshes: u64,
    /// Background refreshes that failed (the cached token kept being served).
    pub refresh_failures: u64,
    /// Misses that ended in an error.
    pub errors: u64,
    /// Calls answered with a tenant's remembered refusal (no request made; see
    /// [`CacheOptions::negative_ttl`](super::CacheOptions::negative_ttl)).
    pub remembered_refusals: u64,
    /// Entries evicted to stay under `max_entries`.
    pub evictions: u64,
    /// Entries held now.
    pub entries: u64,
    /// Tokens found in the shared (L2) cache.
    pub l2_hits: u64,
    /// Shared-cache lookups that found nothing usable.
    pub l2_misses: u64,
    /// Shared-cache calls that failed or timed out (each counted as a miss).
    pub l2_errors: u64,
    /// Shared-cache values that failed to open (tampered, moved, unknown key id).
    pub l2_open_failures: u64,
}

/// Counters striped over cache lines, so concurrent hits on different cores do not
/// fight over one atomic: each thread adds to its own stripe (threads share a stripe only
/// past `STRIPES` threads), and reading the total sums them.
pub(super) struct Counter([Padded; STRIPES]);

const STRIPES: usize = 16;

#[repr(align(128))]
struct Padded(AtomicU64);

/// What each thread keeps for the hit path: its counter stripe and its read sampler.
struct Local {
    stripe: Cell<usize>,
    tick: Cell<u32>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            stripe: Cell::new(usize::MAX),
            tick: Cell::new(0),
        }
    };
}

/// One read in this many (per thread) is reported to the bounded store, so its policy
/// learns which keys are popular without every hit writing to memory it shares.
const SAMPLE_EVERY: u32 = 64;

/// Whether this hit is the one in [`SAMPLE_EVERY`] this thread reports.
pub(super) fn sampled() -> bool {
    LOCAL.with(|l| {
        let t = l.tick.get().wrapping_add(1);
        l.tick.set(t);
        t % SAMPLE_EVERY == 0
    })
}

impl Counter {
    pub(super) fn new() -> Self {
        Self(std::array::from_fn(|_| Padded(AtomicU64::new(0))))
    }

    pub(super) fn add(&self) {
        let i = LOCAL.with(|l| {
            let mut i = l.stripe.get();
            if i == usize::MAX {
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                i = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
                l.stripe.set(i);
            }
            i
        });
        self.0[i].0.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn get(&self) -> u64 {
        self.0.iter().map(|p| p.0.load(Ordering::Relaxed)).sum()
    }
}

pub(super) struct Counters {
    pub(super) hits: Counter,
    pub(super) misses: AtomicU64,
    pub(super) refreshes: AtomicU64,
    pub(super) refresh_failures: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) refusals: AtomicU64,
    pub(super) evictions: AtomicU64,
    pub(super) churn: Churn,
}

impl Counters {
    pub(super) fn new(max_entries: u64) -> Self {
        Self {
            hits: Counter::new(),
            misses: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            refresh_failures: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            refusals: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            churn: Churn {
                max_entries,
                window: Mutex::new((SystemTime::UNIX_EPOCH, 0)),
            },
        }
    }
}

/// Notices a working set larger than `max_entries`: when evictions replace the whole
/// capacity within [`CHURN_WINDOW`], every token is being fetched again and again.
pub(super) struct Churn {
    max_entries: u64,
    /// Start of the current window and evictions in it.
    window: Mutex<(SystemTime, u64)>,
}

const CHURN_WINDOW: Duration = Duration::from_secs(10 * 60);

impl Churn {
    /// Counts one eviction at `now`; true (once per window) when the cache churns.
    pub(super) fn evicted(&self, now: SystemTime) -> bool {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(w.0).unwrap_or_default() > CHURN_WINDOW {
            *w = (now, 0);
        }
        w.1 += 1;
        if w.1 == self.max_entries {
            return true;
        }
        false
    }
}

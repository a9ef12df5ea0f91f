//! [`CacheStats`] and the counters behind them.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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
/// fight over one atomic.
pub(super) struct Counter([Padded; STRIPES]);

const STRIPES: usize = 8;

#[repr(align(128))]
struct Padded(AtomicU64);

impl Counter {
    pub(super) fn new() -> Self {
        Self(std::array::from_fn(|_| Padded(AtomicU64::new(0))))
    }

    pub(super) fn add(&self) {
        thread_local! {
            static STRIPE: usize = {
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES
            };
        }
        let i = STRIPE.with(|s| *s);
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
    pub(super) evictions: AtomicU64,
}

//! Per-key single flight for misses: one token request serves every caller that missed
//! the same key meanwhile. Invalidation revokes flights in progress, so a token asked for
//! before an `invalidate*` call returned is never inserted after it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::entry::Entry;
use super::key::Key;
use crate::error::Error;

/// What a flight ends with: the entry, and whether it was already in the cache when the
/// flight began (another flight filled it meanwhile) rather than fetched by this one.
#[derive(Clone)]
pub(super) struct Served {
    pub(super) entry: Arc<Entry>,
    pub(super) reused: bool,
}

/// One token request shared by every caller that missed the same key meanwhile.
pub(super) struct Flight {
    pub(super) result: tokio::sync::OnceCell<Result<Served, Error>>,
    /// Set by invalidation: the result still goes to the callers that were waiting, but
    /// it is not inserted. Read while holding the key's compute lock (see `install`), so
    /// a revocation either comes before the check or removes what was inserted.
    revoked: AtomicBool,
}

impl Flight {
    pub(super) fn revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }
}

type Shard = Mutex<HashMap<Key, Arc<Flight>>>;

/// The flights in progress, sharded so misses on different keys rarely share a lock.
/// Held only to join, leave or revoke a flight, never across an `.await`.
pub(super) struct Flights {
    shards: Vec<Shard>,
}

impl Flights {
    pub(super) fn new() -> Self {
        Self {
            shards: (0..16).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Flight>>> {
        self.shards[(hash as usize) % self.shards.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn join(&self, key: &Key, hash: u64) -> Arc<Flight> {
        self.shard(hash)
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Flight {
                    result: tokio::sync::OnceCell::new(),
                    revoked: AtomicBool::new(false),
                })
            })
            .clone()
    }

    /// Called by the flight itself once it has a result (a flight whose driver panicked
    /// or was cancelled stays, and the next caller drives it again).
    pub(super) fn leave(&self, key: &Key, hash: u64, flight: &Arc<Flight>) {
        let mut shard = self.shard(hash);
        if shard.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            shard.remove(key);
        }
    }

    /// Leaves the flight and runs `install` under the same lock a caller takes to join,
    /// so nobody can join this flight once its entry is in the cache: a caller that saw
    /// the entry (and perhaps invalidated it) then missed starts a new flight instead of
    /// taking this one's result.
    pub(super) fn finish(
        &self,
        key: &Key,
        hash: u64,
        flight: &Arc<Flight>,
        install: impl FnOnce(),
    ) {
        let mut shard = self.shard(hash);
        if shard.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            shard.remove(key);
        }
        install();
    }

    /// Revokes the flight for `key`, if any; later callers start a new one.
    pub(super) fn revoke(&self, key: &Key, hash: u64) {
        if let Some(flight) = self.shard(hash).remove(key) {
            flight.revoked.store(true, Ordering::Release);
        }
    }

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.shards
            .iter()
            .all(|s| s.lock().unwrap_or_else(|p| p.into_inner()).is_empty())
    }

    /// Revokes every flight whose key matches, returning their keys.
    pub(super) fn revoke_where(&self, matches: impl Fn(&Key) -> bool) -> Vec<Key> {
        let mut revoked = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.retain(|key, flight| {
                if matches(key) {
                    flight.revoked.store(true, Ordering::Release);
                    revoked.push(key.clone());
                    false
                } else {
                    true
                }
            });
        }
        revoked
    }
}

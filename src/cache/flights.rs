//! Per-key single flight for misses: one token request serves every caller that missed
//! the same key meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::entry::Entry;
use super::key::Key;
use crate::error::Error;

/// One token request shared by every caller that missed the same key meanwhile.
pub(super) struct Flight {
    pub(super) result: tokio::sync::OnceCell<Result<Arc<Entry>, Error>>,
}

/// The flights in progress, sharded so misses on different keys rarely share a lock.
/// Held only to join or leave a flight, never across an `.await`.
pub(super) struct Flights {
    shards: Vec<Mutex<HashMap<Key, Arc<Flight>>>>,
}

impl Flights {
    pub(super) fn new() -> Self {
        Self {
            shards: (0..16).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, hash: u64) -> &Mutex<HashMap<Key, Arc<Flight>>> {
        &self.shards[(hash as usize) % self.shards.len()]
    }

    pub(super) fn join(&self, key: &Key, hash: u64) -> Arc<Flight> {
        let mut shard = self.shard(hash).lock().unwrap_or_else(|p| p.into_inner());
        shard
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Flight {
                    result: tokio::sync::OnceCell::new(),
                })
            })
            .clone()
    }

    pub(super) fn leave(&self, key: &Key, hash: u64, flight: &Arc<Flight>) {
        let mut shard = self.shard(hash).lock().unwrap_or_else(|p| p.into_inner());
        if shard.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            shard.remove(key);
        }
    }
}

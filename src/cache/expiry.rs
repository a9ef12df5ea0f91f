//! Expiry on moka's own clock for what the cache keeps: each value says, at insertion,
//! how long it holds (measured on the cache's clock), so that what no longer holds leaves
//! the map, and its size bound, in production.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::key::Key;

/// A value the cache keeps for a time it knows at insertion.
pub(super) trait KeptFor {
    /// How long the store keeps it, from its insertion.
    fn kept_for(&self) -> Duration;
}

/// moka's expiry for any [`KeptFor`] value (tokens, refusals).
pub(super) struct KeptForExpiry;

impl<V: KeptFor> moka::Expiry<Key, Arc<V>> for KeptForExpiry {
    fn expire_after_create(&self, _: &Key, value: &Arc<V>, _: Instant) -> Option<Duration> {
        Some(value.kept_for())
    }

    fn expire_after_update(
        &self,
        _: &Key,
        value: &Arc<V>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.kept_for())
    }
}

//! The shared (L2) token cache under [`Cached`](crate::Cached): so N replicas ask Entra
//! once per (tenant, scope) instead of N times. Values are sealed ([`SealingKeys`]) and
//! key names are keyed hashes; the store is anything implementing [`L2Store`] (Redis, one
//! server or a cluster: `RedisStore`, feature `redis`).
//!
//! L2 trouble never breaks token acquisition: every call has a short timeout, errors and
//! timeouts count as misses, and after repeated failures L2 is skipped until a background
//! probe reaches it again.
//!
//! Invalidation reaches every replica's L2 reads through tombstones: a tenant's (or a
//! global) invalidation time, stored beside the tenant's entries, against which each
//! value's stamp (when the request that fetched it started) is compared. What it cannot
//! reach is other replicas' memory: they keep serving a token they already hold until
//! they refresh it or it expires.

#[cfg(feature = "redis")]
mod entra;
mod health;
mod invalidate;
mod layer;
mod names;
#[cfg(feature = "redis")]
mod redis;
mod store;
mod value;
#[cfg(fuzzing)]
pub(crate) use value::fuzz_value;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{SharedSleeper, Sleeper, TokioSleeper};
use crate::seal::SealingKeys;

#[cfg(feature = "redis")]
pub use entra::{RedisAuthStats, RedisEntraAuth};
pub(crate) use layer::{Found, L2, L2Counters, Lease};
pub(crate) use names::L2Key;
#[cfg(feature = "redis")]
pub use redis::RedisStore;
pub use store::{L2Error, L2Store};

/// How [`Cached`](crate::Cached) uses a shared store.
///
/// ```no_run
/// # #[cfg(feature = "redis")]
/// # async fn run() -> Result<(), azure_cross_tenant::Error> {
/// use std::sync::Arc;
/// use azure_cross_tenant::{CacheOptions, Cached, ClientSecret, RedisStore, SealingKeys, SharedCache};
///
/// let keys = SealingKeys::new("2026-11", [0x42; 32])?; // from your secret store
/// let shared = SharedCache::new(Arc::new(RedisStore::new("redis://cache.internal:6379")?), keys);
/// let provider = Cached::with_options(
///     ClientSecret::new("11111111-2222-3333-4444-555555555555", "secret").build()?,
///     CacheOptions::default().shared(shared),
/// )?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SharedCache {
    pub(crate) store: Arc<dyn L2Store>,
    pub(crate) keys: Arc<SealingKeys>,
    pub(crate) timeout: Duration,
    pub(crate) lease_wait: Option<Duration>,
    pub(crate) breaker_threshold: u32,
    pub(crate) probe_every: Duration,
    pub(crate) namespace: String,
    pub(crate) sleeper: SharedSleeper,
}

impl fmt::Debug for SharedCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedCache")
            .field("store", &self.store)
            .field("keys", &self.keys)
            .field("timeout", &self.timeout)
            .field("lease_wait", &self.lease_wait)
            .field("breaker_threshold", &self.breaker_threshold)
            .field("probe_every", &self.probe_every)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl SharedCache {
    /// `store`, sealing values with `keys`. Defaults: 50 ms timeout per call, leases on
    /// (wait up to 1 s for another replica's fetch), circuit opens after 5 consecutive
    /// failures and is probed every 2 s, key prefix `act`.
    pub fn new(store: Arc<dyn L2Store>, keys: SealingKeys) -> Self {
        Self {
            store,
            keys: Arc::new(keys),
            timeout: Duration::from_millis(50),
            lease_wait: Some(Duration::from_secs(1)),
            breaker_threshold: 5,
            probe_every: Duration::from_secs(2),
            namespace: "act".into(),
            sleeper: Arc::new(TokioSleeper),
        }
    }

    /// Timeout of each L2 call (default 50 ms). It bounds commands, and a call's wait for
    /// a connection being built, never the connection itself: stores connect in the
    /// background under their own deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Cross-replica single flight: on a miss, one replica takes a lease and asks Entra
    /// while the others wait up to `wait` for its token to appear in L2 (then ask
    /// themselves). `None` turns leases off. Default 1 s.
    pub fn lease_wait(mut self, wait: Option<Duration>) -> Self {
        self.lease_wait = wait;
        self
    }

    /// After `failures` consecutive failed calls (default 5), skip L2 and probe it in the
    /// background (reconnect, then `PING`) every `probe_every` (default 2 s); the first
    /// probe that succeeds turns it back on. All of this is per part of the store
    /// ([`L2Store::partition`]): per hash slot of a Redis Cluster, so a lost master turns
    /// off only its own slots. Failed calls are logged at `warn` once per `probe_every`.
    pub fn circuit_breaker(mut self, failures: u32, probe_every: Duration) -> Self {
        self.breaker_threshold = failures.max(1);
        self.probe_every = probe_every;
        self
    }

    /// Prefix of every key (default `act`), to share one Redis between apps or
    /// environments. Keep `{` and `}` out of it: in a Redis Cluster they would pin every
    /// key to one slot.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// What waits between looks at L2 while another replica holds the lease (default the
    /// tokio timer). The wait ends at `lease_wait` on the cache's clock, or after
    /// `lease_wait` worth of sleeps, whichever comes first.
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }
}

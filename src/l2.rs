//! The shared (L2) token cache under [`Cached`](crate::Cached): so N replicas ask Entra
//! once per (tenant, scope) instead of N times. Values are sealed ([`SealingKeys`]); the
//! store is anything implementing [`L2Store`] (Redis: `RedisStore`, feature `redis`).
//!
//! L2 trouble never breaks token acquisition: every call has a short timeout, errors and
//! timeouts count as misses, and after repeated failures L2 is skipped for a while.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

use crate::scope::Scopes;
use crate::seal::SealingKeys;
use crate::tenant::TenantId;
use crate::token::AccessToken;

/// Why an L2 operation failed. Never reaches callers of `get_token`: it is a miss.
#[derive(Debug, Clone, thiserror::Error)]
#[error("L2 store: {0}")]
pub struct L2Error(pub String);

/// A shared key-value store with expiry (Redis, Memcached, a database...).
#[async_trait::async_trait]
pub trait L2Store: Send + Sync + fmt::Debug {
    /// The value under `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, L2Error>;
    /// Stores `value` under `key` for `ttl`.
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), L2Error>;
    /// Removes `key`.
    async fn delete(&self, key: &str) -> Result<(), L2Error>;
    /// Takes a short exclusive lease on `key` (Redis `SET NX PX`): true if this caller got
    /// it. Stores without leases return true, so every replica asks Entra itself.
    async fn try_lease(&self, key: &str, ttl: Duration) -> Result<bool, L2Error> {
        let _ = (key, ttl);
        Ok(true)
    }
}

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
    pub(crate) breaker_cooldown: Duration,
    pub(crate) namespace: String,
}

impl fmt::Debug for SharedCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedCache")
            .field("store", &self.store)
            .field("keys", &self.keys)
            .field("timeout", &self.timeout)
            .field("lease_wait", &self.lease_wait)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl SharedCache {
    /// `store`, sealing values with `keys`. Defaults: 50 ms timeout per call, leases on
    /// (wait up to 1 s for another replica's fetch), circuit opens after 5 consecutive
    /// failures for 30 s, key prefix `act`.
    pub fn new(store: Arc<dyn L2Store>, keys: SealingKeys) -> Self {
        Self {
            store,
            keys: Arc::new(keys),
            timeout: Duration::from_millis(50),
            lease_wait: Some(Duration::from_secs(1)),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            namespace: "act".into(),
        }
    }

    /// Timeout of each L2 call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Cross-replica single flight: on a miss, one replica takes a lease and asks Entra
    /// while the others wait up to `wait` for its token to appear in L2 (then ask
    /// themselves). `None` turns leases off.
    pub fn lease_wait(mut self, wait: Option<Duration>) -> Self {
        self.lease_wait = wait;
        self
    }

    /// After `failures` consecutive L2 failures, skip L2 for `cooldown`.
    pub fn circuit_breaker(mut self, failures: u32, cooldown: Duration) -> Self {
        self.breaker_threshold = failures.max(1);
        self.breaker_cooldown = cooldown;
        self
    }

    /// Prefix of every key (to share one Redis between apps or environments).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }
}

#[derive(Serialize, Deserialize)]
struct Payload {
    /// The token.
    t: String,
    /// Expiry, ms since the epoch.
    e: u64,
    /// Refresh hint, ms since the epoch.
    r: Option<u64>,
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn from_millis(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

/// One entry's names in L2: the store key (a hash, so Redis never sees tenant ids) and
/// the associated data binding the sealed value to the full key.
pub(crate) struct L2Key {
    pub(crate) store_key: String,
    pub(crate) lease_key: String,
    aad: String,
}

impl L2Key {
    pub(crate) fn new(
        namespace: &str,
        authority: &str,
        client_id: &str,
        tenant: &TenantId,
        scopes: &Scopes,
    ) -> Self {
        let aad = format!("{authority}\n{client_id}\n{tenant}\n{scopes}");
        let hash = digest::digest(&digest::SHA256, aad.as_bytes());
        let hex: String = hash.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        Self {
            store_key: format!("{namespace}:tok:{hex}"),
            lease_key: format!("{namespace}:lease:{hex}"),
            aad,
        }
    }
}

/// L2 counters.
#[derive(Default)]
pub(crate) struct L2Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) open_failures: AtomicU64,
}

/// A [`SharedCache`] in use: timeouts, the circuit breaker, sealing.
pub(crate) struct L2 {
    pub(crate) config: SharedCache,
    pub(crate) counters: L2Counters,
    failures: AtomicU32,
    open_until: Mutex<Option<SystemTime>>,
}

impl L2 {
    pub(crate) fn new(config: SharedCache) -> Self {
        Self {
            config,
            counters: L2Counters::default(),
            failures: AtomicU32::new(0),
            open_until: Mutex::new(None),
        }
    }

    fn available(&self, now: SystemTime) -> bool {
        let mut open = self.open_until.lock().unwrap_or_else(|p| p.into_inner());
        match *open {
            Some(until) if now < until => false,
            Some(_) => {
                // Half-open: let calls through; one more failure reopens it.
                *open = None;
                self.failures.store(
                    self.config.breaker_threshold.saturating_sub(1),
                    Ordering::Relaxed,
                );
                true
            }
            None => true,
        }
    }

    fn record<T>(&self, result: Result<T, L2Error>, now: SystemTime) -> Option<T> {
        match result {
            Ok(v) => {
                self.failures.store(0, Ordering::Relaxed);
                Some(v)
            }
            Err(e) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(error = %e, failures, "shared token cache unavailable; treating as a miss");
                if failures >= self.config.breaker_threshold {
                    *self.open_until.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(now + self.config.breaker_cooldown);
                    tracing::warn!(
                        cooldown_s = self.config.breaker_cooldown.as_secs(),
                        "skipping the shared token cache for a while"
                    );
                }
                None
            }
        }
    }

    async fn call<T>(
        &self,
        now: SystemTime,
        op: impl std::future::Future<Output = Result<T, L2Error>>,
    ) -> Option<T> {
        if !self.available(now) {
            return None;
        }
        let result = match tokio::time::timeout(self.config.timeout, op).await {
            Ok(r) => r,
            Err(_) => Err(L2Error(format!(
                "timed out after {:?}",
                self.config.timeout
            ))),
        };
        self.record(result, now)
    }

    /// A usable token from L2 (expiring after `usable_after`), or `None`.
    pub(crate) async fn get(
        &self,
        key: &L2Key,
        tenant: &TenantId,
        scopes: &Scopes,
        now: SystemTime,
        usable_after: SystemTime,
    ) -> Option<AccessToken> {
        let Some(value) = self
            .call(now, self.config.store.get(&key.store_key))
            .await
            .flatten()
        else {
            self.counters.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let opened = self
            .config
            .keys
            .open(&value, key.aad.as_bytes())
            .and_then(|plain| serde_json::from_slice::<Payload>(&plain).ok());
        let Some(payload) = opened else {
            // Tampered, moved, malformed or sealed with a key no longer configured: a miss,
            // and the value goes so nobody trips on it again.
            self.counters.open_failures.fetch_add(1, Ordering::Relaxed);
            self.counters.misses.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("a shared cache value failed to open; deleting it");
            let _ = self
                .call(now, self.config.store.delete(&key.store_key))
                .await;
            return None;
        };
        let expires = from_millis(payload.e);
        if expires <= usable_after {
            self.counters.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.counters.hits.fetch_add(1, Ordering::Relaxed);
        let mut token = AccessToken::new(payload.t, expires, tenant.clone(), scopes.clone());
        if let Some(r) = payload.r {
            token = token.with_refresh_on(from_millis(r));
        }
        Some(token)
    }

    /// Stores `token` until it expires.
    pub(crate) async fn put(&self, key: &L2Key, token: &AccessToken, now: SystemTime) {
        let ttl = token.expires_on().duration_since(now).unwrap_or_default();
        if ttl.is_zero() {
            return;
        }
        let payload = Payload {
            t: token.secret().to_owned(),
            e: millis(token.expires_on()),
            r: token.refresh_on().map(millis),
        };
        let Ok(plain) = serde_json::to_vec(&payload) else {
            return;
        };
        let Ok(sealed) = self.config.keys.seal(&plain, key.aad.as_bytes()) else {
            return;
        };
        let _ = self
            .call(now, self.config.store.put(&key.store_key, &sealed, ttl))
            .await;
    }

    /// Gives up a lease taken with [`lease`](Self::lease), so waiters and the next miss
    /// do not wait for it to time out.
    pub(crate) async fn release(&self, key: &L2Key, now: SystemTime) {
        if self.config.lease_wait.is_some() {
            let _ = self
                .call(now, self.config.store.delete(&key.lease_key))
                .await;
        }
    }

    pub(crate) async fn delete(&self, key: &L2Key, now: SystemTime) {
        let _ = self
            .call(now, self.config.store.delete(&key.store_key))
            .await;
    }

    /// Whether this replica should ask Entra (it holds the lease, leases are off, or L2
    /// is down).
    pub(crate) async fn lease(&self, key: &L2Key, now: SystemTime) -> bool {
        let ttl = self.config.lease_wait.unwrap_or_default() * 2;
        self.call(now, self.config.store.try_lease(&key.lease_key, ttl))
            .await
            .unwrap_or(true)
    }
}

#[cfg(feature = "redis")]
pub use redis_store::RedisStore;

#[cfg(feature = "redis")]
mod redis_store {
    use super::*;
    use redis::AsyncCommands as _;

    /// Redis as the L2 store (one server, or a primary behind a failover endpoint), over
    /// one multiplexed connection that reconnects by itself. Feature `redis`.
    ///
    /// On failover, calls fail or time out (misses: tokens come from L1 or Entra) until
    /// the connection manager reconnects; values written to a lost primary are simply
    /// fetched again.
    pub struct RedisStore {
        client: redis::Client,
        connection: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
    }

    impl fmt::Debug for RedisStore {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            // The URL may carry a password: show only the host.
            let info = self.client.get_connection_info();
            f.debug_struct("RedisStore")
                .field("addr", &info.addr().to_string())
                .finish()
        }
    }

    impl RedisStore {
        /// A store for `url` (`redis://host:port/db`, `rediss://` for TLS). Connects on
        /// first use, so a Redis that is down at startup does not stop the service.
        pub fn new(url: &str) -> Result<Self, crate::Error> {
            let client = redis::Client::open(url).map_err(|e| {
                crate::Error::InvalidConfiguration(format!("invalid Redis URL ({:?})", e.kind()))
            })?;
            Ok(Self {
                client,
                connection: tokio::sync::OnceCell::new(),
            })
        }

        async fn connection(&self) -> Result<redis::aio::ConnectionManager, L2Error> {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_millis(500)))
                .set_response_timeout(Some(Duration::from_millis(500)))
                .set_number_of_retries(1);
            self.connection
                .get_or_try_init(|| {
                    redis::aio::ConnectionManager::new_with_config(self.client.clone(), config)
                })
                .await
                .cloned()
                .map_err(|e| L2Error(e.to_string()))
        }
    }

    fn err(e: redis::RedisError) -> L2Error {
        L2Error(e.to_string())
    }

    #[async_trait::async_trait]
    impl L2Store for RedisStore {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, L2Error> {
            self.connection().await?.get(key).await.map_err(err)
        }

        async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), L2Error> {
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(ms)
                .query_async::<()>(&mut self.connection().await?)
                .await
                .map_err(err)
        }

        async fn delete(&self, key: &str) -> Result<(), L2Error> {
            self.connection()
                .await?
                .del::<_, ()>(key)
                .await
                .map_err(err)
        }

        async fn try_lease(&self, key: &str, ttl: Duration) -> Result<bool, L2Error> {
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let set: Option<String> = redis::cmd("SET")
                .arg(key)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query_async(&mut self.connection().await?)
                .await
                .map_err(err)?;
            Ok(set.is_some())
        }
    }
}

//! [`SharedOnboardingStore`]: the onboarding's pending flows and spent states in the
//! shared cache's store (Redis), sealed like the tokens there.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::store::OnboardingStore;
use crate::error::Error;
use crate::l2::{L2Error, L2Store, SharedCache};
use crate::seal::SealingKeys;

/// Largest value read back (a pending flow is a few KB); one byte more is refused.
const MAX_VALUE: usize = 64 * 1024;
/// Bounds of how long Redis keeps a pending flow (see `put`).
const MIN_KEEP: Duration = Duration::from_secs(60);
const MAX_KEEP: Duration = Duration::from_secs(24 * 60 * 60);
/// Bytes before the value in a sealed entry: its expiry, Unix seconds, big-endian.
const EXPIRY_LEN: usize = 8;

/// An [`OnboardingStore`] in the shared cache's store: pending sign-ins and consents and
/// spent `state` values shared by every replica that uses the same Redis (or other
/// [`L2Store`]), for a fleet whose registry is not a [`SqlRegistry`](crate::SqlRegistry).
/// Built with [`SharedCache::onboarding_store`].
///
/// - **Sealed.** Each value (it holds a nonce, a PKCE verifier and the admin proof) is
///   AES-256-GCM sealed with the cache's [`SealingKeys`] and bound to its key, so Redis
///   access alone can neither read a pending flow nor forge one: a value that does not
///   open is absent. Key names are the onboarding's own hashes under the cache's
///   namespace (`{namespace}:onboarding:{key}`), never a state, cookie or code.
/// - **Once across the fleet.** A spent state is recorded with `SET NX` (the store's
///   lease); taking a value is a compare-and-delete of what was read, so of concurrent
///   takers exactly one gets it.
/// - **Expiry.** Redis drops an entry at its expiry by itself (so
///   [`purge_expired`](OnboardingStore::purge_expired) has nothing to do), and each value
///   carries its expiry on the onboarding's clock, checked on every read.
/// - **The store must lease atomically**: [`L2Store::try_lease`] as `SET NX` and
///   [`L2Store::delete_if`] as compare-and-delete, as [`RedisStore`](crate::RedisStore)
///   does. A custom store that keeps `try_lease`'s default (every lease granted) would
///   let a replayed callback through: give such a fleet a
///   [`SqlRegistry`](crate::SqlRegistry)'s store instead.
/// - **Failures** are [`Error::Database`] (retryable): the onboarding answers the browser
///   with a retryable error and writes nothing half. Unlike token lookups, these calls
///   are not skipped while the cache's circuit breaker is open: a flow must not pass
///   because its store is down.
///
/// ```no_run
/// # #[cfg(feature = "redis")]
/// # fn run() -> Result<(), azure_cross_tenant::Error> {
/// use std::sync::Arc;
/// use azure_cross_tenant::{Cached, ClientSecret, Onboarding, RedisStore, SealingKeys, SharedCache};
///
/// let keys = SealingKeys::new("2026-11", [0x42; 32])?; // from your secret store
/// let shared = SharedCache::new(Arc::new(RedisStore::new("rediss://cache.internal:6380")?), keys);
/// let provider = Cached::new(ClientSecret::new("11111111-2222-3333-4444-555555555555", "secret").build()?);
/// let onboarding = Onboarding::builder(provider, "https://vault.azure.net/.default", "https://saas.example/onboarding/signed-in")
///     .store(shared.onboarding_store())
///     .build()?;
/// # let _ = onboarding; Ok(()) }
/// ```
#[derive(Clone)]
pub struct SharedOnboardingStore {
    store: Arc<dyn L2Store>,
    keys: Arc<SealingKeys>,
    prefix: String,
}

impl fmt::Debug for SharedOnboardingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedOnboardingStore")
            .field("store", &self.store)
            .field("keys", &self.keys)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl SharedCache {
    /// The onboarding's store in this cache's store (same Redis, same sealing keys, same
    /// namespace): pending flows and spent states shared by every replica. See
    /// [`SharedOnboardingStore`].
    pub fn onboarding_store(&self) -> Arc<dyn OnboardingStore> {
        Arc::new(SharedOnboardingStore {
            store: self.store.clone(),
            keys: self.keys.clone(),
            prefix: format!("{}:onboarding:", self.namespace),
        })
    }
}

fn failed(operation: &'static str, e: L2Error) -> Error {
    Error::Database {
        operation,
        retryable: true,
        source: Arc::new(e),
    }
}

/// Redis wants a positive TTL; an entry already expired on the onboarding's clock still
/// lives a second there (and reads as absent, by its sealed expiry).
fn ttl(expires_at: u64, now: u64) -> Duration {
    Duration::from_secs(expires_at.saturating_sub(now).max(1))
}

impl SharedOnboardingStore {
    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn seal(&self, name: &str, value: &[u8], expires_at: u64) -> Result<Vec<u8>, Error> {
        let mut plain = Vec::with_capacity(EXPIRY_LEN + value.len());
        plain.extend_from_slice(&expires_at.to_be_bytes());
        plain.extend_from_slice(value);
        self.keys.seal(&plain, name.as_bytes())
    }

    /// The value and its expiry, if `raw` opens under `name`.
    fn open(&self, name: &str, raw: &[u8]) -> Option<(Vec<u8>, u64)> {
        let plain = self.keys.open(raw, name.as_bytes())?;
        let (expiry, value) = plain.split_first_chunk::<EXPIRY_LEN>()?;
        Some((value.to_vec(), u64::from_be_bytes(*expiry)))
    }

    /// What is stored under `name`, raw, unless missing or oversized.
    async fn raw(&self, name: &str, operation: &'static str) -> Result<Option<Vec<u8>>, Error> {
        let values = self
            .store
            .get_many_bounded(&[name], MAX_VALUE + 1)
            .await
            .map_err(|e| failed(operation, e))?;
        Ok(values
            .into_iter()
            .next()
            .flatten()
            .filter(|v| v.len() <= MAX_VALUE))
    }

    /// The value under `name` with its raw bytes, unless it is missing, does not open, or
    /// expired before `now`.
    async fn live(
        &self,
        name: &str,
        now: u64,
        operation: &'static str,
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, Error> {
        let Some(raw) = self.raw(name, operation).await? else {
            return Ok(None);
        };
        Ok(self
            .open(name, &raw)
            .filter(|(_, expires)| *expires >= now)
            .map(|(value, _)| (value, raw)))
    }
}

#[async_trait::async_trait]
impl OnboardingStore for SharedOnboardingStore {
    async fn put(&self, key: &str, value: &[u8], expires_at: u64) -> Result<(), Error> {
        let name = self.name(key);
        let sealed = self.seal(&name, value, expires_at)?;
        // Redis counts its TTL on the wall clock, the onboarding on its own (a test's
        // may be elsewhere): the sealed expiry decides, and the TTL, at least a minute
        // and at most a day, only bounds how long Redis keeps the bytes.
        let wall = crate::clock::Clock::now(&crate::clock::SystemClock)
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let keep = ttl(expires_at, wall).clamp(MIN_KEEP, MAX_KEEP);
        self.store
            .put(&name, &sealed, keep)
            .await
            .map_err(|e| failed("store a pending onboarding in the shared store", e))
    }

    async fn get(&self, key: &str, now: u64) -> Result<Option<Vec<u8>>, Error> {
        let name = self.name(key);
        let live = self
            .live(
                &name,
                now,
                "read a pending onboarding from the shared store",
            )
            .await?;
        Ok(live.map(|(value, _)| value))
    }

    async fn take(&self, key: &str, now: u64) -> Result<Option<Vec<u8>>, Error> {
        const OPERATION: &str = "take a pending onboarding from the shared store";
        let name = self.name(key);
        let Some((value, raw)) = self.live(&name, now, OPERATION).await? else {
            return Ok(None);
        };
        // Compare-and-delete: of concurrent takers that read the same bytes, one deletes.
        let took = self
            .store
            .delete_if(&name, &raw)
            .await
            .map_err(|e| failed(OPERATION, e))?;
        Ok(took.then_some(value))
    }

    async fn insert_new(
        &self,
        key: &str,
        value: &[u8],
        expires_at: u64,
        now: u64,
    ) -> Result<bool, Error> {
        const OPERATION: &str = "record a spent onboarding state in the shared store";
        let name = self.name(key);
        let sealed = self.seal(&name, value, expires_at)?;
        let ttl = ttl(expires_at, now);
        let store = |e| failed(OPERATION, e);
        if self
            .store
            .try_lease(&name, &sealed, ttl)
            .await
            .map_err(store)?
        {
            return Ok(true);
        }
        // Something is there. Only an entry that is live on the onboarding's clock counts;
        // one expired on that clock (or junk) is replaced, once, atomically.
        let Some(raw) = self.raw(&name, OPERATION).await? else {
            return self
                .store
                .try_lease(&name, &sealed, ttl)
                .await
                .map_err(store);
        };
        if self
            .open(&name, &raw)
            .is_some_and(|(_, expires)| expires >= now)
        {
            return Ok(false);
        }
        if !self.store.delete_if(&name, &raw).await.map_err(store)? {
            return Ok(false);
        }
        self.store
            .try_lease(&name, &sealed, ttl)
            .await
            .map_err(store)
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.store
            .delete(&self.name(key))
            .await
            .map_err(|e| failed("delete a pending onboarding from the shared store", e))
    }

    /// Nothing to do: Redis drops each entry at its expiry.
    async fn purge_expired(&self, _now: u64) -> Result<u64, Error> {
        Ok(0)
    }
}

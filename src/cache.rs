//! [`Cached`]: a per-(tenant, scope) token cache in front of any provider, with per-key
//! single flight, proactive background refresh, stale-on-error and a bounded size.
//!
//! The map is a `moka::sync::Cache`: a hit is a lock-free hash lookup and two reference
//! count bumps, with no `.await`, no allocation and no lock shared across keys. Misses go
//! through a per-key flight (a `tokio::sync::OnceCell` every concurrent caller awaits), so
//! one token request serves them all, errors included; misses on different keys proceed
//! in parallel.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use moka::Equivalent;
use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use url::Url;

use crate::clock::{Clock, SharedClock, SystemClock};
use crate::error::Error;
use crate::l2::{L2, L2Counters, L2Key, SharedCache};
use crate::provider::TenantCredentialProvider;
use crate::scope::{Scopes, normalized};
use crate::tenant::TenantId;
use crate::token::AccessToken;

/// A keyed (per-process random seed) fast hasher: SipHash was a fifth of a hit's cost.
type KeyHasher = foldhash::fast::RandomState;

/// Tokens living longer than this are refreshed at half-life (ENTRA.md: managed identity
/// and workload identity tokens can live about 24 h).
const HALF_LIFE_THRESHOLD: Duration = Duration::from_secs(2 * 3600);
/// Longest wait between refresh attempts after failures.
const MAX_REFRESH_BACKOFF: Duration = Duration::from_secs(5 * 60);

/// How a [`Cached`] provider keeps tokens.
///
/// ```
/// use std::time::Duration;
/// use azure_cross_tenant::CacheOptions;
///
/// let options = CacheOptions::default()
///     .max_entries(50_000)
///     .expiry_skew(Duration::from_secs(120))
///     .jitter(Duration::from_secs(60));
/// assert!(options.refresh);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct CacheOptions {
    /// Most (tenant, scope) entries kept (default 10,000: about 20 MB of app tokens).
    /// Beyond it the least used entries go first; expired ones go whenever found.
    pub max_entries: u64,
    /// A token stops being served this long before it expires (default 5 min), capped at
    /// a quarter of its lifetime for short-lived tokens.
    pub expiry_skew: Duration,
    /// Refresh tokens in the background before they expire (default on).
    pub refresh: bool,
    /// Refreshes start up to this much earlier than due, spread per key, so thousands of
    /// tenants do not refresh in the same second (default 5 min, capped at a tenth of the
    /// time to the refresh).
    pub jitter: Duration,
    /// First wait before retrying a failed background refresh; doubles per failure up to
    /// 5 min (default 30 s).
    pub refresh_retry: Duration,
    clock: SharedClock,
    shared: Option<SharedCache>,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            expiry_skew: Duration::from_secs(5 * 60),
            refresh: true,
            jitter: Duration::from_secs(5 * 60),
            refresh_retry: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
            shared: None,
        }
    }
}

impl fmt::Debug for CacheOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheOptions")
            .field("max_entries", &self.max_entries)
            .field("expiry_skew", &self.expiry_skew)
            .field("refresh", &self.refresh)
            .field("jitter", &self.jitter)
            .field("refresh_retry", &self.refresh_retry)
            .field("clock", &self.clock)
            .field("shared", &self.shared)
            .finish()
    }
}

impl CacheOptions {
    /// Sets [`max_entries`](Self::max_entries).
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// Sets [`expiry_skew`](Self::expiry_skew).
    pub fn expiry_skew(mut self, skew: Duration) -> Self {
        self.expiry_skew = skew;
        self
    }

    /// Sets [`refresh`](Self::refresh).
    pub fn refresh(mut self, refresh: bool) -> Self {
        self.refresh = refresh;
        self
    }

    /// Sets [`jitter`](Self::jitter).
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets [`refresh_retry`](Self::refresh_retry).
    pub fn refresh_retry(mut self, wait: Duration) -> Self {
        self.refresh_retry = wait;
        self
    }

    /// A shared (L2) cache under this one, so replicas share tokens (see [`SharedCache`]).
    pub fn shared(mut self, shared: SharedCache) -> Self {
        self.shared = Some(shared);
        self
    }

    /// The clock deciding expiry and refresh (default the system clock; share a
    /// [`ManualClock`](crate::ManualClock) with the credential in tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// What a [`Cached`] provider has done so far.
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

/// The cache key: (tenant, scope). The authority host and client id, the other half of
/// the full key, are fixed for one `Cached` (it wraps one provider), so they are checked
/// once at construction instead of hashed on every lookup.
#[derive(Clone, PartialEq, Eq)]
struct Key {
    tenant: TenantId,
    scopes: Scopes,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        KeyRef {
            tenant: self.tenant.as_str(),
            scope: self.scopes.as_str(),
        }
        .hash(state);
    }
}

/// A borrowed key, so a hit allocates nothing. Hashes exactly like [`Key`].
#[derive(Hash)]
struct KeyRef<'a> {
    tenant: &'a str,
    scope: &'a str,
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.tenant == key.tenant.as_str() && self.scope == key.scopes.as_str()
    }
}

/// A cached token and when to refresh and stop serving it.
struct Entry {
    token: AccessToken,
    /// Served until then (expiry minus skew).
    usable_until: SystemTime,
    /// A background refresh starts from then on.
    refresh_at: SystemTime,
    /// How long moka keeps the entry, measured at insertion.
    ttl: Duration,
    refreshing: AtomicBool,
    /// After a failed refresh: the next attempt and the failure count.
    retry: Mutex<(SystemTime, u32)>,
}

impl Entry {
    fn new(token: AccessToken, now: SystemTime, options: &CacheOptions, spread: f64) -> Self {
        let expires = token.expires_on();
        let lifetime = expires.duration_since(now).unwrap_or_default();
        let skew = options.expiry_skew.min(lifetime / 4);
        let usable_until = expires - skew;
        let due = match token.refresh_on() {
            Some(at) if at < usable_until => at,
            _ if lifetime > HALF_LIFE_THRESHOLD => now + lifetime / 2,
            _ => usable_until,
        };
        let window = due.duration_since(now).unwrap_or_default();
        let jitter = options.jitter.min(window / 10).mul_f64(spread);
        Self {
            token,
            usable_until,
            refresh_at: due - jitter,
            ttl: usable_until.duration_since(now).unwrap_or_default(),
            refreshing: AtomicBool::new(false),
            retry: Mutex::new((SystemTime::UNIX_EPOCH, 0)),
        }
    }

    fn usable(&self, now: SystemTime) -> bool {
        now < self.usable_until
    }

    /// Claims the right to refresh now, if it is due and nobody else is refreshing.
    fn try_begin_refresh(&self, now: SystemTime) -> bool {
        if now < self.refresh_at {
            return false;
        }
        let retry = self.retry.lock().unwrap_or_else(|p| p.into_inner());
        if now < retry.0 {
            return false;
        }
        self.refreshing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    fn refresh_failed(&self, now: SystemTime, first_wait: Duration) {
        let mut retry = self.retry.lock().unwrap_or_else(|p| p.into_inner());
        let wait = first_wait
            .saturating_mul(1 << retry.1.min(16))
            .min(MAX_REFRESH_BACKOFF);
        *retry = (now + wait, retry.1.saturating_add(1));
        self.refreshing.store(false, Ordering::Release);
    }
}

/// Expiry on moka's own clock, from the lifetime measured on ours at insertion, so
/// expired entries leave the map (and its size bound) in production.
struct EntryExpiry;

impl moka::Expiry<Key, Arc<Entry>> for EntryExpiry {
    fn expire_after_create(&self, _: &Key, value: &Arc<Entry>, _: Instant) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _: &Key,
        value: &Arc<Entry>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Counters striped over cache lines, so concurrent hits on different cores do not
/// fight over one atomic.
struct Counter([Padded; STRIPES]);

const STRIPES: usize = 8;

#[repr(align(128))]
struct Padded(AtomicU64);

impl Counter {
    fn new() -> Self {
        Self(std::array::from_fn(|_| Padded(AtomicU64::new(0))))
    }

    fn add(&self) {
        thread_local! {
            static STRIPE: usize = {
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES
            };
        }
        let i = STRIPE.with(|s| *s);
        self.0[i].0.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.iter().map(|p| p.0.load(Ordering::Relaxed)).sum()
    }
}

struct Counters {
    hits: Counter,
    misses: AtomicU64,
    refreshes: AtomicU64,
    refresh_failures: AtomicU64,
    errors: AtomicU64,
    evictions: AtomicU64,
}

/// One token request shared by every caller that missed the same key meanwhile.
struct Flight {
    result: tokio::sync::OnceCell<Result<Arc<Entry>, Error>>,
}

/// The flights in progress, sharded so misses on different keys rarely share a lock.
/// Held only to join or leave a flight, never across an `.await`.
struct Flights {
    shards: Vec<Mutex<HashMap<Key, Arc<Flight>>>>,
}

impl Flights {
    fn new() -> Self {
        Self {
            shards: (0..16).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, hash: u64) -> &Mutex<HashMap<Key, Arc<Flight>>> {
        &self.shards[(hash as usize) % self.shards.len()]
    }

    fn join(&self, key: &Key, hash: u64) -> Arc<Flight> {
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

    fn leave(&self, key: &Key, hash: u64, flight: &Arc<Flight>) {
        let mut shard = self.shard(hash).lock().unwrap_or_else(|p| p.into_inner());
        if shard.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            shard.remove(key);
        }
    }
}

struct Inner<P> {
    provider: P,
    tokens: moka::sync::Cache<Key, Arc<Entry>, KeyHasher>,
    flights: Flights,
    options: CacheOptions,
    counters: Arc<Counters>,
    hasher: KeyHasher,
    refreshes_running: AtomicUsize,
    refreshes_done: tokio::sync::Notify,
    l2: Option<L2>,
}

/// A [`TenantCredentialProvider`] that caches another one's tokens per (tenant, scope).
///
/// Share one `Cached` (it is cheap to clone) across the whole process: every tenant and
/// resource goes through it.
///
/// - **Hits** are a hash lookup: no `.await`, no allocation, nothing shared across keys.
/// - **Misses** on one key make one token request however many callers wait; its result,
///   success or error, goes to all of them. Errors are not cached.
/// - **Refresh**: from Entra's `refresh_in` (else half-life for tokens over 2 h, else
///   expiry minus skew), minus a per-key jitter, one background task refreshes the entry
///   while callers keep getting the cached token. If it fails, the still-valid token keeps
///   being served and the refresh is retried with backoff; once the token is no longer
///   usable, callers get the provider's error.
/// - **Expiry**: a token is served until `expires_on - expiry_skew`, never after.
///
/// ```
/// use azure_cross_tenant::testing::MockEntra;
/// use azure_cross_tenant::{Cached, ClientSecret, TenantCredentialProvider};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let entra = MockEntra::start().await;
/// # let home = entra.add_tenant("provider.example");
/// # let customer = entra.add_tenant("fabrikam.example");
/// # let app = entra.register_app(&home, "saas");
/// # let secret = entra.add_secret(&app);
/// # entra.consent(&customer, &app);
/// let credential = ClientSecret::new(app.client_id(), secret)
///     .authority_host(entra.uri())
///     .build()?;
/// let cached = Cached::new(credential);
///
/// let first = cached.get_token(&customer, &["https://vault.azure.net/.default"]).await?;
/// let again = cached.get_token(&customer, &["https://vault.azure.net/.default"]).await?;
/// assert!(first.ptr_eq(&again));
/// assert_eq!(entra.token_requests_for(&customer), 1);
/// assert_eq!(cached.stats().hits, 1);
/// # Ok(()) }
/// ```
pub struct Cached<P> {
    inner: Arc<Inner<P>>,
}

impl<P> Clone for Cached<P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<P: fmt::Debug> fmt::Debug for Cached<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("provider", &self.inner.provider)
            .field("entries", &self.inner.tokens.entry_count())
            .field("options", &self.inner.options)
            .finish()
    }
}

impl<P: TenantCredentialProvider + 'static> Cached<P> {
    /// Caches `provider`'s tokens with [`CacheOptions::default`].
    pub fn new(provider: P) -> Self {
        Self::with_options(provider, CacheOptions::default())
    }

    /// Caches `provider`'s tokens with `options`.
    pub fn with_options(provider: P, options: CacheOptions) -> Self {
        let counters = Arc::new(Counters {
            hits: Counter::new(),
            misses: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            refresh_failures: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        });
        let listener_counters = counters.clone();
        let tokens = moka::sync::Cache::builder()
            .max_capacity(options.max_entries)
            .expire_after(EntryExpiry)
            .eviction_listener(move |key: Arc<Key>, _, cause| {
                if cause == RemovalCause::Size {
                    listener_counters.evictions.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(tenant = %key.tenant, scope = %key.scopes, "token evicted to stay under max_entries");
                }
            })
            .build_with_hasher(KeyHasher::default());
        let l2 = options.shared.clone().map(L2::new);
        Self {
            inner: Arc::new(Inner {
                provider,
                tokens,
                flights: Flights::new(),
                options,
                counters,
                hasher: KeyHasher::default(),
                refreshes_running: AtomicUsize::new(0),
                refreshes_done: tokio::sync::Notify::new(),
                l2,
            }),
        }
    }

    /// The wrapped provider.
    pub fn provider(&self) -> &P {
        &self.inner.provider
    }

    /// Drops the cached token for (`tenant`, `scopes`), e.g. after the resource answered
    /// 401 to it. The next call asks the provider. Invalid scopes are ignored.
    pub fn invalidate(&self, tenant: &TenantId, scopes: &[&str]) {
        if let Ok(scope) = normalized(scopes) {
            self.inner.tokens.invalidate(&KeyRef {
                tenant: tenant.as_str(),
                scope,
            });
            self.forget_in_l2(vec![Key {
                tenant: tenant.clone(),
                scopes: Scopes::from_normalized(scope),
            }]);
        }
    }

    /// Deletes keys from the shared cache in the background (best effort: a runtime is
    /// needed; entries left behind expire with their tokens).
    fn forget_in_l2(&self, keys: Vec<Key>) {
        if self.inner.l2.is_none() || keys.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            if let Some(l2) = &this.inner.l2 {
                for key in keys {
                    l2.delete(&this.l2_key(&key), this.inner.options.clock.now())
                        .await;
                }
            }
        });
    }

    fn l2_key(&self, key: &Key) -> L2Key {
        let ns = self
            .inner
            .l2
            .as_ref()
            .map_or("act", |l2| l2.config.namespace.as_str());
        L2Key::new(
            ns,
            self.inner.provider.authority_host().as_str(),
            self.inner.provider.client_id(),
            &key.tenant,
            &key.scopes,
        )
    }

    /// A usable token for `key` from the shared cache, as an entry.
    async fn entry_from_l2(&self, key: &Key, l2_key: &L2Key, hash: u64) -> Option<Arc<Entry>> {
        let inner = &self.inner;
        let l2 = inner.l2.as_ref()?;
        let now = inner.options.clock.now();
        let token = l2.get(l2_key, &key.tenant, &key.scopes, now, now).await?;
        let entry = Entry::new(token, now, &inner.options, self.spread(hash));
        entry.usable(now).then(|| Arc::new(entry))
    }

    /// Drops every cached token of `tenant` (offboarding, consent revoked).
    pub fn invalidate_tenant(&self, tenant: &TenantId) {
        let keys: Vec<Arc<Key>> = self
            .inner
            .tokens
            .iter()
            .filter(|(k, _)| &k.tenant == tenant)
            .map(|(k, _)| k)
            .collect();
        for key in &keys {
            self.inner.tokens.invalidate(&**key);
        }
        self.forget_in_l2(keys.iter().map(|k| (**k).clone()).collect());
    }

    /// Drops every cached token.
    pub fn invalidate_all(&self) {
        self.inner.tokens.invalidate_all();
    }

    /// Counters since creation, and the entries held now.
    pub fn stats(&self) -> CacheStats {
        let inner = &self.inner;
        inner.tokens.run_pending_tasks();
        let c = &inner.counters;
        let l2_count = |f: fn(&L2Counters) -> &AtomicU64| {
            inner
                .l2
                .as_ref()
                .map_or(0, |l2| f(&l2.counters).load(Ordering::Relaxed))
        };
        CacheStats {
            hits: c.hits.get(),
            misses: c.misses.load(Ordering::Relaxed),
            refreshes: c.refreshes.load(Ordering::Relaxed),
            refresh_failures: c.refresh_failures.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            entries: inner.tokens.entry_count(),
            l2_hits: l2_count(|c| &c.hits),
            l2_misses: l2_count(|c| &c.misses),
            l2_errors: l2_count(|c| &c.errors),
            l2_open_failures: l2_count(|c| &c.open_failures),
        }
    }

    /// Waits until no background refresh is running (before shutdown, or in tests).
    pub async fn wait_for_refreshes(&self) {
        loop {
            let done = self.inner.refreshes_done.notified();
            if self.inner.refreshes_running.load(Ordering::Acquire) == 0 {
                return;
            }
            done.await;
        }
    }

    async fn get(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        // Only validated scopes are ever inserted, so a single scope can be looked up as
        // given: a hit proves it valid, and a miss is validated below.
        let probe = match scopes {
            [one] => *one,
            _ => normalized(scopes)?,
        };
        let inner = &self.inner;
        let now = inner.options.clock.now();
        let key_ref = KeyRef {
            tenant: tenant.as_str(),
            scope: probe,
        };
        if let Some(entry) = inner.tokens.get(&key_ref)
            && entry.usable(now)
        {
            inner.counters.hits.add();
            if inner.options.refresh && entry.try_begin_refresh(now) {
                self.spawn_refresh(tenant, probe, entry.clone());
            }
            return Ok(entry.token.clone());
        }
        let scope = normalized(scopes)?;
        self.miss(tenant, scope).await
    }

    async fn miss(&self, tenant: &TenantId, scope: &str) -> Result<AccessToken, Error> {
        let inner = &self.inner;
        let key = Key {
            tenant: tenant.clone(),
            scopes: Scopes::from_normalized(scope),
        };
        let hash = inner.hasher.hash_one(&key);
        let flight = inner.flights.join(&key, hash);
        let result = flight
            .result
            .get_or_init(|| async {
                let now = inner.options.clock.now();
                // Filled while we were joining? Then this flight has nothing to fetch.
                if let Some(entry) = inner.tokens.get(&key)
                    && entry.usable(now)
                {
                    return Ok(entry);
                }
                let l2_key = inner.l2.as_ref().map(|_| self.l2_key(&key));
                if let (Some(l2), Some(l2_key)) = (&inner.l2, &l2_key) {
                    if let Some(entry) = self.entry_from_l2(&key, l2_key, hash).await {
                        inner.tokens.insert(key.clone(), entry.clone());
                        return Ok(entry);
                    }
                    if let Some(wait) = l2.config.lease_wait {
                        if l2.lease(l2_key, now).await {
                            // The previous holder may have stored the token and released
                            // the lease between our lookup and our lease: look once more.
                            if let Some(entry) = self.entry_from_l2(&key, l2_key, hash).await {
                                l2.release(l2_key, now).await;
                                inner.tokens.insert(key.clone(), entry.clone());
                                return Ok(entry);
                            }
                        } else {
                            // Another replica holds the lease: wait for its token in L2.
                            // TODO(#12, #16): wait on the injected clock and sleeper.
                            #[allow(clippy::disallowed_methods)]
                            let deadline = tokio::time::Instant::now() + wait;
                            #[allow(clippy::disallowed_methods)]
                            while tokio::time::Instant::now() < deadline {
                                #[allow(clippy::disallowed_methods)]
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                if let Some(entry) = self.entry_from_l2(&key, l2_key, hash).await {
                                    inner.tokens.insert(key.clone(), entry.clone());
                                    return Ok(entry);
                                }
                            }
                        }
                    }
                }
                inner.counters.misses.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(tenant = %tenant, scope, "token cache miss");
                let fetched = self.fetch(&key).await;
                if let (Some(l2), Some(l2_key)) = (&inner.l2, &l2_key) {
                    let now = inner.options.clock.now();
                    if let Ok(token) = &fetched {
                        l2.put(l2_key, token, now).await;
                    }
                    l2.release(l2_key, now).await;
                }
                match fetched {
                    Ok(token) => {
                        let entry = Arc::new(Entry::new(
                            token,
                            inner.options.clock.now(),
                            &inner.options,
                            self.spread(hash),
                        ));
                        inner.tokens.insert(key.clone(), entry.clone());
                        Ok(entry)
                    }
                    Err(e) => {
                        inner.counters.errors.fetch_add(1, Ordering::Relaxed);
                        Err(e)
                    }
                }
            })
            .await
            .clone();
        inner.flights.leave(&key, hash, &flight);
        result.map(|entry| entry.token.clone())
    }

    /// Asks the provider, and refuses a token that is not for the key asked: a cache
    /// must never file one tenant's token under another's name.
    async fn fetch(&self, key: &Key) -> Result<AccessToken, Error> {
        let token = self
            .inner
            .provider
            .get_token(&key.tenant, &[key.scopes.as_str()])
            .await?;
        if token.tenant() != &key.tenant {
            return Err(Error::unexpected_claim(
                &key.tenant,
                "tenant",
                key.tenant.as_str(),
                token.tenant().as_str(),
            ));
        }
        if token.scopes() != &key.scopes {
            return Err(Error::unexpected_claim(
                &key.tenant,
                "scope",
                key.scopes.as_str(),
                token.scopes().as_str(),
            ));
        }
        Ok(token)
    }

    /// A per-key fraction in [0, 1) spreading refreshes of different keys apart.
    fn spread(&self, hash: u64) -> f64 {
        (hash >> 11) as f64 / (1u64 << 53) as f64
    }

    fn spawn_refresh(&self, tenant: &TenantId, scope: &str, old: Arc<Entry>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to run it on: the token is served until it is no longer usable,
            // then a caller refreshes it as a miss.
            old.refreshing.store(false, Ordering::Release);
            return;
        };
        let key = Key {
            tenant: tenant.clone(),
            scopes: Scopes::from_normalized(scope),
        };
        let this = self.clone();
        this.inner.refreshes_running.fetch_add(1, Ordering::AcqRel);
        this.inner
            .counters
            .refreshes
            .fetch_add(1, Ordering::Relaxed);
        runtime.spawn(async move {
            this.refresh(key, old).await;
            if this.inner.refreshes_running.fetch_sub(1, Ordering::AcqRel) == 1 {
                this.inner.refreshes_done.notify_waiters();
            }
        });
    }

    async fn refresh(&self, key: Key, old: Arc<Entry>) {
        let inner = &self.inner;
        tracing::debug!(tenant = %key.tenant, scope = %key.scopes, "refreshing token in the background");
        // Another replica may have refreshed it already.
        let l2_key = inner.l2.as_ref().map(|_| self.l2_key(&key));
        let from_l2 = match &l2_key {
            Some(k) => self
                .entry_from_l2(&key, k, inner.hasher.hash_one(&key))
                .await
                .filter(|e| e.token.expires_on() > old.token.expires_on()),
            None => None,
        };
        let fetched = match from_l2 {
            Some(entry) => Ok(entry.token.clone()),
            None => {
                let result = self.fetch(&key).await;
                if let (Ok(token), Some(l2), Some(k)) = (&result, &inner.l2, &l2_key) {
                    l2.put(k, token, inner.options.clock.now()).await;
                }
                result
            }
        };
        match fetched {
            Ok(token) => {
                let hash = inner.hasher.hash_one(&key);
                let fresh = Arc::new(Entry::new(
                    token,
                    inner.options.clock.now(),
                    &inner.options,
                    self.spread(hash),
                ));
                let now = inner.options.clock.now();
                if fresh.refresh_at <= now {
                    // The provider handed back a token already due (its own cache?): wait
                    // before asking again instead of refreshing on every hit.
                    *fresh.retry.lock().unwrap_or_else(|p| p.into_inner()) =
                        (now + inner.options.refresh_retry, 1);
                }
                // Replace only the entry this refresh was for: if it was invalidated
                // (offboarding) or replaced meanwhile, the refresh must not resurrect it.
                inner
                    .tokens
                    .entry(key)
                    .and_compute_with(|current| match current {
                        Some(c) if Arc::ptr_eq(c.value(), &old) => Op::Put(fresh),
                        _ => Op::Nop,
                    });
            }
            Err(error) => {
                inner
                    .counters
                    .refresh_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    tenant = %key.tenant,
                    scope = %key.scopes,
                    error = %error,
                    "background token refresh failed; serving the cached token until it expires"
                );
                old.refresh_failed(inner.options.clock.now(), inner.options.refresh_retry);
            }
        }
    }
}

#[async_trait::async_trait]
impl<P: TenantCredentialProvider + 'static> TenantCredentialProvider for Cached<P> {
    fn client_id(&self) -> &str {
        self.inner.provider.client_id()
    }

    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        self.get(tenant, scopes).await
    }

    fn authority_host(&self) -> &Url {
        self.inner.provider.authority_host()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(now: SystemTime, life: u64, refresh_in: Option<u64>) -> AccessToken {
        let t = AccessToken::new(
            "t",
            now + Duration::from_secs(life),
            "contoso.com".parse().unwrap(),
            Scopes::parse(&["https://vault.azure.net/.default"]).unwrap(),
        );
        match refresh_in {
            Some(r) => t.with_refresh_on(now + Duration::from_secs(r)),
            None => t,
        }
    }

    #[test]
    fn refresh_follows_the_hint_then_half_life_then_skew() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let o = CacheOptions::default().jitter(Duration::ZERO);
        let s = |secs| now + Duration::from_secs(secs);

        let e = Entry::new(token(now, 3600, Some(1800)), now, &o, 0.5);
        assert_eq!((e.refresh_at, e.usable_until), (s(1800), s(3300)));

        let e = Entry::new(token(now, 86_400, None), now, &o, 0.5);
        assert_eq!((e.refresh_at, e.usable_until), (s(43_200), s(86_100)));

        let e = Entry::new(token(now, 3600, None), now, &o, 0.5);
        assert_eq!((e.refresh_at, e.usable_until), (s(3300), s(3300)));

        // A 4 s token keeps 3 s of use: the skew is capped at a quarter of the lifetime.
        let e = Entry::new(token(now, 4, None), now, &o, 0.5);
        assert_eq!(e.usable_until, s(3));
    }

    #[test]
    fn jitter_only_moves_refresh_earlier_and_stays_within_a_tenth_of_the_window() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let o = CacheOptions::default();
        for spread in [0.0, 0.3, 0.999] {
            let e = Entry::new(token(now, 3600, Some(1800)), now, &o, spread);
            let early = (now + Duration::from_secs(1800))
                .duration_since(e.refresh_at)
                .unwrap();
            assert!(early <= Duration::from_secs(180), "{early:?}");
        }
    }

    #[test]
    fn failed_refreshes_back_off_exponentially_up_to_five_minutes() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let e = Entry::new(
            token(now, 3600, Some(0)),
            now,
            &CacheOptions::default(),
            0.0,
        );
        assert!(e.try_begin_refresh(now));
        assert!(!e.try_begin_refresh(now), "one refresh at a time");
        e.refresh_failed(now, Duration::from_secs(30));
        assert!(!e.try_begin_refresh(now + Duration::from_secs(29)));
        assert!(e.try_begin_refresh(now + Duration::from_secs(30)));
        for _ in 0..10 {
            e.refresh_failed(now, Duration::from_secs(30));
            e.refreshing.store(true, Ordering::Release);
        }
        e.refresh_failed(now, Duration::from_secs(30));
        assert!(e.try_begin_refresh(now + MAX_REFRESH_BACKOFF));
    }
}

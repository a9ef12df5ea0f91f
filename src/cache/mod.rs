//! [`Cached`]: a per-(tenant, scope) token cache in front of any provider, with per-key
//! single flight, proactive background refresh, stale-on-error and a bounded size.
//!
//! Two maps hold the same live entries, each for one job:
//!
//! - the **index** (`papaya::HashMap`) answers every hit. Its reads are lock-free and
//!   write only the reading thread's own epoch slot, so hits on different cores share no
//!   written cache line, and a hit neither allocates nor awaits;
//! - the **store** (`moka::sync::Cache`) bounds the entry count and decides what to evict
//!   and when entries expire. It hears about one hit in 64 per thread (a sampled read,
//!   queued and handed over on the slow paths), enough to learn which keys are popular. Whatever it evicts or expires leaves the
//!   index through its eviction listener, only while the index still holds that very
//!   entry (a newer token for the key stays).
//!
//! Every write to both (insert, refresh, invalidation) runs inside the store's per-key
//! compute, so writes to one key are serialized and the two maps never disagree for long.
//! moka alone cost about 1 us per hit at 30,000 entries with random keys and did not
//! scale to a second core: each of its hits records the read in shared buffers and in
//! the entry. Measured figures are in the README's benchmark table.
//!
//! Misses go through a per-key flight (a `tokio::sync::OnceCell` every concurrent caller
//! awaits), so one token request serves them all, errors included; misses on different
//! keys proceed in parallel.

mod entry;
mod flights;
mod invalidate;
mod key;
mod options;
mod refresh;
mod shared;
mod stats;
#[cfg(test)]
mod tests;

use std::fmt;
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use url::Url;

use crate::error::Error;
use crate::l2::L2;
use crate::provider::TenantCredentialProvider;
use crate::scope::normalized;
use crate::tenant::TenantId;
use crate::token::AccessToken;

use entry::{Entry, EntryExpiry};
use flights::{Flight, Flights, Served};
use key::{Key, KeyHasher, KeyRef, ScopeInterner};
pub use options::CacheOptions;
pub use stats::CacheStats;
use stats::Counters;

/// Sampled hits waiting for the store: enough to rank the keys in use between two
/// insertions; more are dropped, as the store itself drops reads when busy.
const SAMPLED_READS: usize = 1024;

/// The read index: live entries by key.
type Index = papaya::HashMap<Key, Arc<Entry>, KeyHasher>;

struct Inner<P> {
    index: Arc<Index>,
    options: CacheOptions,
    counters: Arc<Counters>,
    provider: P,
    tokens: moka::sync::Cache<Key, Arc<Entry>, KeyHasher>,
    flights: Flights,
    /// Sampled hits on their way to the store's policy (see `feed_store`).
    reads: SyncSender<Key>,
    sampled_reads: Mutex<Receiver<Key>>,
    scopes: ScopeInterner,
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
/// - **Hits** are a lock-free hash lookup: no `.await`, no allocation, no write to memory
///   another core writes except the token's reference count. [`Cached::get_token`] is an
///   inherent `async fn` (the trait method boxes its future; this one does not, only a
///   miss is boxed), and [`Cached::get_if_fresh`] answers synchronously.
/// - **Misses** on one key make one token request however many callers wait; its result,
///   success or error, goes to all of them. Errors are not cached.
/// - **Refresh**: from Entra's `refresh_in` (else half-life for tokens over 2 h, else
///   expiry minus skew), minus a per-key jitter, one background task refreshes the entry
///   while callers keep getting the cached token. If it fails, the still-valid token keeps
///   being served and the refresh is retried with backoff; once the token is no longer
///   usable, callers get the provider's error.
/// - **Expiry**: a token is served until `expires_on - margin`, never after, where the
///   margin is `expiry_skew` capped at a quarter of the token's whole lifetime.
/// - **Invalidation** is complete when it returns: the entry is gone, and a token request
///   already in flight for it will not insert its token afterwards.
///
/// ```
/// use mock_entra::MockEntra;
/// use azure_cross_tenant::{Cached, ClientSecret};
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
///
/// // The resource answered 401 to `first`: drop it (once, however many callers saw it).
/// cached.invalidate_if_current(&customer, &["https://vault.azure.net/.default"], &first).await;
/// let fresh = cached.get_token(&customer, &["https://vault.azure.net/.default"]).await?;
/// assert!(!fresh.ptr_eq(&first));
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
            .field("entries", &self.inner.index.len())
            .field("options", &self.inner.options)
            .finish()
    }
}

impl<P: TenantCredentialProvider + 'static> Cached<P> {
    /// Caches `provider`'s tokens with [`CacheOptions::default`].
    pub fn new(provider: P) -> Self {
        Self::build(provider, CacheOptions::default())
    }

    /// Caches `provider`'s tokens with `options`.
    ///
    /// # Errors
    /// [`Error::InvalidConfiguration`] if `options` cannot work (`max_entries` of 0).
    pub fn with_options(provider: P, options: CacheOptions) -> Result<Self, Error> {
        options.check()?;
        Ok(Self::build(provider, options))
    }

    fn build(provider: P, options: CacheOptions) -> Self {
        let counters = Arc::new(Counters::new(options.max_entries));
        let index: Arc<Index> = Arc::new(
            papaya::HashMap::builder()
                .hasher(KeyHasher::default())
                .build(),
        );
        let tokens = moka::sync::Cache::builder()
            .max_capacity(options.max_entries)
            .expire_after(EntryExpiry)
            .eviction_listener(Self::listener(
                index.clone(),
                counters.clone(),
                options.clone(),
            ))
            .build_with_hasher(KeyHasher::default());
        let l2 = options.shared.clone().map(L2::new);
        let (reads, sampled_reads) = std::sync::mpsc::sync_channel(SAMPLED_READS);
        Self {
            inner: Arc::new(Inner {
                index,
                options,
                counters,
                provider,
                tokens,
                flights: Flights::new(),
                reads,
                sampled_reads: Mutex::new(sampled_reads),
                scopes: ScopeInterner::new(),
                hasher: KeyHasher::default(),
                refreshes_running: AtomicUsize::new(0),
                refreshes_done: tokio::sync::Notify::new(),
                l2,
            }),
        }
    }

    /// What the store's evictions do to the index: an entry it evicted or expired leaves
    /// the index too, unless the index already holds a newer entry for the key. A
    /// replacement is skipped outright: the writer already put the new entry in the index.
    fn listener(
        index: Arc<Index>,
        counters: Arc<Counters>,
        options: CacheOptions,
    ) -> impl Fn(Arc<Key>, Arc<Entry>, RemovalCause) + Send + Sync + 'static {
        move |key, entry, cause| {
            if cause == RemovalCause::Replaced {
                return;
            }
            let _ = index
                .pin()
                .remove_if(&*key, |_, held| Arc::ptr_eq(held, &entry));
            if cause == RemovalCause::Size {
                counters.evictions.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(tenant = %key.tenant, scope = %key.scopes, "token evicted to stay under max_entries");
                if counters.churn.evicted(options.clock.now()) {
                    tracing::warn!(
                        max_entries = options.max_entries,
                        "the token cache evicted as many entries as it holds within 10 minutes: \
                         more (tenant, scope) pairs are in use than max_entries, so tokens are \
                         fetched again and again; raise CacheOptions::max_entries (an entry \
                         costs about 2.2 KB)"
                    );
                }
            }
        }
    }

    /// The wrapped provider.
    pub fn provider(&self) -> &P {
        &self.inner.provider
    }

    /// A token for `scopes` (one resource) issued by `tenant`: from the cache while it is
    /// fresh, else from the provider (one request per key however many callers ask).
    ///
    /// This inherent method is what a `Cached<P>` answers to; the
    /// [`TenantCredentialProvider`] impl delegates to it.
    pub async fn get_token(
        &self,
        tenant: &TenantId,
        scopes: &[&str],
    ) -> Result<AccessToken, Error> {
        if let Some(token) = self.get_if_fresh(tenant, scopes) {
            return Ok(token);
        }
        // Boxed: the miss path's future holds the flight, the provider's future and the
        // shared-cache round trips, over a kilobyte; kept out of line, a hit's future is a
        // few words and a hit allocates nothing.
        Box::pin(self.miss(tenant, scopes)).await
    }

    /// The cached token for (`tenant`, `scopes`) if it is fresh, without waiting for
    /// anything; `None` if it would take a token request (or the scopes are invalid).
    /// Starts a background refresh when one is due, as [`get_token`](Self::get_token) does.
    pub fn get_if_fresh(&self, tenant: &TenantId, scopes: &[&str]) -> Option<AccessToken> {
        // Only validated scopes are ever inserted, so a single scope can be looked up as
        // given: a hit proves it valid, and a miss is validated on the slow path.
        let scope = match scopes {
            [one] => *one,
            _ => normalized(scopes).ok()?,
        };
        let inner = &*self.inner;
        let now = inner.options.clock.now();
        let probe = KeyRef { tenant, scope };
        let guard = inner.index.guard();
        let (key, entry) = inner.index.get_key_value(&probe, &guard)?;
        if !entry.usable(now) {
            return None;
        }
        inner.counters.hits.add();
        if stats::sampled() {
            // Tell the bounded store this key is in use (its policy never sees index
            // hits), through a bounded queue the slow paths drain: reading the store here
            // would run its maintenance, which allocates, on a hit. A full queue drops it.
            let _ = inner.reads.try_send(key.clone());
        }
        if inner.options.refresh && entry.try_begin_refresh(now) {
            self.spawn_refresh(tenant, scope, entry.clone());
        }
        Some(entry.token.clone())
    }

    /// The entry the index holds for `key`, usable or not.
    fn current_entry(&self, key: &Key) -> Option<Arc<Entry>> {
        self.inner.index.pin().get(key).cloned()
    }

    async fn miss(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        let inner = &self.inner;
        let scope = normalized(scopes)?;
        let key = Key {
            tenant: tenant.clone(),
            scopes: inner.scopes.get(scope),
        };
        let hash = inner.hasher.hash_one(&key);
        // A flight that found the entry already filled hands that entry to whoever
        // joined it. A caller that joined after invalidating that very entry (a 401
        // report racing a flight that had just looked) must not get it back: such a
        // result counts only while the cache still holds it, else the caller asks again.
        // Each round makes progress, so the bound is only reached under a storm of
        // invalidations of this one key.
        let mut rounds = 0;
        loop {
            rounds += 1;
            let flight = inner.flights.join(&key, hash);
            let result = flight
                .result
                .get_or_init(|| async {
                    let result = self.fly(&key, hash, &flight).await;
                    // Leave as soon as there is a result: a caller arriving later must
                    // look at the cache again, not take this result, which may already
                    // be older than what the cache holds (or an error since retried).
                    inner.flights.leave(&key, hash, &flight);
                    result
                })
                .await
                .clone();
            match result {
                Ok(served) if served.reused && !self.holds(&key, &served.entry) && rounds < 8 => {}
                result => return result.map(|served| served.entry.token.clone()),
            }
        }
    }

    /// Reports the sampled hits queued since the last call to the store, so its policy
    /// knows which keys are popular before it next chooses what to evict. Runs on the
    /// slow paths only (before an insertion, in refreshes, in `stats`).
    fn feed_store(&self) {
        let Ok(reads) = self.inner.sampled_reads.try_lock() else {
            return; // another thread is feeding it
        };
        while let Ok(key) = reads.try_recv() {
            let _ = self.inner.tokens.get(&key);
        }
    }

    /// Whether the index still holds `entry` for `key`.
    fn holds(&self, key: &Key, entry: &Arc<Entry>) -> bool {
        let guard = self.inner.index.guard();
        self.inner
            .index
            .get(key, &guard)
            .is_some_and(|held| Arc::ptr_eq(held, entry))
    }

    /// The work of one flight: the cache again, the shared cache, then the provider.
    async fn fly(&self, key: &Key, hash: u64, flight: &Arc<Flight>) -> Result<Served, Error> {
        let inner = &self.inner;
        let now = inner.options.clock.now();
        let observed = self.current_entry(key);
        // Filled while we were joining? Then this flight has nothing to fetch.
        if let Some(entry) = observed.as_ref().filter(|e| e.usable(now)) {
            return Ok(Served {
                entry: entry.clone(),
                reused: true,
            });
        }
        let l2_key = self.shared_key(key);
        if let Some(entry) = self
            .shared_before_fetch(key, l2_key.as_ref(), hash, now)
            .await
        {
            inner.flights.finish(key, hash, flight, || {
                self.install(key, &entry, flight, observed.as_ref())
            });
            return Ok(Served {
                entry,
                reused: false,
            });
        }
        inner.counters.misses.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(tenant = %key.tenant, scope = %key.scopes, "token cache miss");
        let fetched = self.fetch(key).await;
        self.shared_after_fetch(l2_key.as_ref(), &fetched).await;
        match fetched {
            Ok(token) => {
                let entry = Arc::new(Entry::new(
                    token,
                    inner.options.clock.now(),
                    &inner.options,
                    self.spread(hash),
                ));
                inner.flights.finish(key, hash, flight, || {
                    self.install(key, &entry, flight, observed.as_ref())
                });
                Ok(Served {
                    entry,
                    reused: false,
                })
            }
            Err(e) => {
                inner.counters.errors.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Inserts a flight's entry in the store and the index, unless the flight was revoked
    /// (an invalidation of its key started after it did) or the key's entry changed since
    /// the flight began (a background refresh of the old entry finished first: its token
    /// may be newer, and the cache must never go back to an older one).
    fn install(
        &self,
        key: &Key,
        entry: &Arc<Entry>,
        flight: &Flight,
        observed: Option<&Arc<Entry>>,
    ) {
        self.feed_store();
        let index = &self.inner.index;
        self.inner.tokens.entry(key.clone()).and_compute_with(|_| {
            if flight.revoked() {
                return Op::Nop;
            }
            let guard = index.guard();
            match (index.get(key, &guard), observed) {
                (None, _) => {}
                (Some(now), Some(then)) if Arc::ptr_eq(now, then) => {}
                _ => return Op::Nop,
            }
            index.pin().insert(key.clone(), entry.clone());
            Op::Put(entry.clone())
        });
    }

    /// Asks the provider, and refuses a token that is not for the key asked: a cache
    /// must never file one tenant's token under another's name.
    async fn fetch(&self, key: &Key) -> Result<AccessToken, Error> {
        let token = self
            .inner
            .provider
            .get_token(&key.tenant, &[key.scopes.as_str()])
            .await?;
        // Stamped on receipt when the provider did not say, so the expiry margin is
        // measured from the same start wherever the token is inserted later.
        let token = match token.issued_on() {
            Some(_) => token,
            None => token.with_issued_on(self.inner.options.clock.now()),
        };
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

    /// Counters since creation, and the entries held now.
    pub fn stats(&self) -> CacheStats {
        let inner = &self.inner;
        // Applies pending evictions and expiries, so `entries` is within the bound.
        self.feed_store();
        inner.tokens.run_pending_tasks();
        let c = &inner.counters;
        let mut stats = CacheStats {
            hits: c.hits.get(),
            misses: c.misses.load(Ordering::Relaxed),
            refreshes: c.refreshes.load(Ordering::Relaxed),
            refresh_failures: c.refresh_failures.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            entries: inner.index.len() as u64,
            ..CacheStats::default()
        };
        self.shared_stats(&mut stats);
        stats
    }
}

#[async_trait::async_trait]
impl<P: TenantCredentialProvider + 'static> TenantCredentialProvider for Cached<P> {
    fn client_id(&self) -> &str {
        self.inner.provider.client_id()
    }

    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        Cached::get_token(self, tenant, scopes).await
    }

    fn authority_host(&self) -> &Url {
        self.inner.provider.authority_host()
    }

    fn credential_stats(&self) -> Option<crate::CredentialStats> {
        self.inner.provider.credential_stats()
    }
}

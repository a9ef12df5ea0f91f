//! [`Cached`]: a per-(tenant, scope) token cache in front of any provider, with per-key
//! single flight, proactive background refresh, stale-on-error, remembered refusals and
//! a bounded size.
//!
//! Two maps hold the same live entries, each for one job:
//!
//! - the **index** (`papaya::HashMap`, [`index`]) answers every hit. Its reads are
//!   lock-free and write only the reading thread's own epoch slot, so hits on different
//!   cores share no written cache line, and a hit neither allocates nor awaits. Each of
//!   its nodes is one cache line holding the key and a [`Slot`]: the token and until when
//!   it may be served without a look at the entry, so a hit reads the index's table, that
//!   line and the token, nothing else;
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
//! A tenant has one identity: keys hold its GUID whichever form a caller names
//! ([`aliases`]). Misses go through a per-key flight (a `tokio::sync::OnceCell` every
//! concurrent caller awaits), so one token request serves them all, errors included;
//! misses on different keys proceed in parallel. A tenant's permanent refusal is
//! remembered for a short window ([`refusal`]).

mod aliases;
mod entry;
mod expiry;
mod flights;
mod index;
mod invalidate;
mod key;
mod options;
mod refresh;
mod refusal;
mod shared;
mod stats;
#[cfg(test)]
mod tests;

use std::fmt;
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use url::Url;

use crate::error::Error;
use crate::l2::L2;
use crate::provider::TenantCredentialProvider;
use crate::scope::normalized;
use crate::tenant::TenantId;
use crate::token::AccessToken;

use aliases::Aliases;
use entry::{Entry, Slot};
use expiry::KeptForExpiry;
use flights::{Flight, Flights, Served};
use index::Index;
use key::{Key, KeyHasher, KeyRef, ScopeInterner};
pub use options::CacheOptions;
use refusal::Refusal;
use shared::Shared;
pub use stats::CacheStats;
use stats::Counters;

/// Sampled hits waiting for the store: enough to rank the keys in use between two
/// insertions; more are dropped, as the store itself drops reads when busy.
const SAMPLED_READS: usize = 1024;

/// How long a domain the provider could not resolve is keyed by itself before the
/// provider is asked again (it does not know the tenant, or could not answer).
const UNRESOLVED_FOR: Duration = Duration::from_secs(60);
const UNREACHABLE_FOR: Duration = Duration::from_secs(10);

struct Inner<P> {
    index: Arc<Index>,
    options: CacheOptions,
    counters: Arc<Counters>,
    provider: P,
    tokens: moka::sync::Cache<Key, Arc<Entry>, KeyHasher>,
    /// Tenants' refusals remembered in memory (see [`refusal`]).
    refusals: moka::sync::Cache<Key, Arc<Refusal>, KeyHasher>,
    aliases: Aliases,
    /// Counts invalidations: a flight that learns its tenant's GUID only from the token
    /// files it under the GUID only if none began meanwhile (none could revoke it).
    invalidations: AtomicU64,
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
///   success or error, goes to all of them.
/// - **One tenant, one entry**: a tenant asked for by a domain and by its GUID shares one
///   entry (and one shared-cache entry and tombstone): the domain's GUID comes from the
///   provider (the tenant's OpenID metadata) before the first token, from the token's
///   `tid` after. Invalidating either form drops both.
/// - **Refusals**: a tenant's permanent "no" (not consented, not found, app disabled) is
///   remembered for [`CacheOptions::negative_ttl`] (60 s) and served as the same error,
///   marked [`Error::remembered_at`]; transport errors, 5xx and throttling are not
///   remembered. Every invalidation drops it.
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
        let index: Arc<Index> = Arc::new(Index::new());
        let tokens = moka::sync::Cache::builder()
            .max_capacity(options.max_entries)
            .expire_after(KeptForExpiry)
            .eviction_listener(Self::listener(
                index.clone(),
                counters.clone(),
                options.clone(),
            ))
            .build_with_hasher(KeyHasher::default());
        let refusals = moka::sync::Cache::builder()
            .max_capacity(options.max_entries)
            .expire_after(KeptForExpiry)
            .build_with_hasher(KeyHasher::default());
        let l2 = options.shared.clone().map(L2::new);
        let (reads, sampled_reads) = std::sync::mpsc::sync_channel(SAMPLED_READS);
        Self {
            inner: Arc::new(Inner {
                index,
                aliases: Aliases::new(options.max_entries),
                options,
                counters,
                provider,
                tokens,
                refusals,
                invalidations: AtomicU64::new(0),
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
            index.remove_if(&key, |held| held.holds(&entry));
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
        if !looks_like_guid(tenant) {
            // A domain: its tenant's entry is under the GUID, once known.
            let guard = inner.aliases.guard();
            if let Some(guid) = inner.aliases.guid(tenant, &guard) {
                return self.lookup(guid, scope, now);
            }
        }
        self.lookup(tenant, scope, now)
    }

    /// A hit on (`tenant`, `scope`) at `now`, as the index holds it.
    fn lookup(&self, tenant: &TenantId, scope: &str, now: SystemTime) -> Option<AccessToken> {
        let inner = &*self.inner;
        let probe = KeyRef { tenant, scope };
        let guard = inner.index.guard();
        let indexed = inner.index.get(&probe, &guard)?;
        let (key, slot) = (&indexed.key, &indexed.slot);
        if now >= slot.fresh_until {
            // Past the refresh point, or no longer usable: the entry decides.
            let entry = &slot.entry;
            if !entry.usable(now) {
                return None;
            }
            if inner.options.refresh && entry.try_begin_refresh(now) {
                self.spawn_refresh(key.clone(), entry.clone());
            }
        }
        inner.counters.hits.add();
        if stats::sampled() {
            // Tell the bounded store this key is in use (its policy never sees index
            // hits), through a bounded queue the slow paths drain: reading the store here
            // would run its maintenance, which allocates, on a hit. A full queue drops it.
            let _ = inner.reads.try_send(key.clone());
        }
        Some(slot.token.clone())
    }

    /// The entry the index holds for `key`, usable or not.
    fn current_entry(&self, key: &Key) -> Option<Arc<Entry>> {
        let guard = self.inner.index.guard();
        self.inner
            .index
            .get(key, &guard)
            .map(|i| i.slot.entry.clone())
    }

    /// The form of `tenant` its entries are kept under: a GUID as given; a domain's
    /// GUID, known or asked of the provider (once per domain however many callers
    /// miss); the domain itself while the provider cannot tell (a token's `tid` may
    /// tell later). `retry` asks again even about a domain the provider could not
    /// resolve lately.
    async fn canonical(&self, tenant: &TenantId, retry: bool) -> TenantId {
        if tenant.is_guid() {
            return tenant.clone();
        }
        let aliases = &self.inner.aliases;
        if let Some(guid) = aliases.known(tenant) {
            return guid;
        }
        let clock = &self.inner.options.clock;
        if !retry
            && aliases
                .unresolved_until(tenant)
                .is_some_and(|until| clock.now() < until)
        {
            return tenant.clone();
        }
        let resolution = aliases.join(tenant);
        resolution
            .get_or_init(|| async {
                match self.inner.provider.resolve_tenant(tenant).await {
                    Ok(Some(guid)) if guid.is_guid() => aliases.learn(tenant, &guid),
                    Ok(_) => aliases.unresolved(tenant, clock.now() + UNRESOLVED_FOR),
                    Err(error) => {
                        tracing::debug!(tenant = %tenant, error = %error, "could not resolve the tenant's GUID; keying it by its domain for now");
                        aliases.unresolved(tenant, clock.now() + UNREACHABLE_FOR);
                    }
                }
            })
            .await;
        aliases.leave(tenant, &resolution);
        aliases.known(tenant).unwrap_or_else(|| tenant.clone())
    }

    async fn miss(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        let inner = &self.inner;
        let scope = normalized(scopes)?;
        let key = Key {
            tenant: self.canonical(tenant, false).await,
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
            .is_some_and(|held| held.slot.holds(entry))
    }

    /// The work of one flight: the cache again, the shared cache (or the remembered
    /// refusals when it cannot answer), then the provider.
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
        match self
            .shared_before_fetch(key, l2_key.as_ref(), hash, now)
            .await
        {
            Shared::Token(entry) => {
                inner.flights.finish(key, hash, flight, || {
                    self.install(key, &entry, flight, observed.as_ref())
                });
                return Ok(Served {
                    entry,
                    reused: false,
                });
            }
            Shared::Refusal(refusal) => {
                // Kept in memory too, for when the shared cache cannot answer.
                self.remember_refusal(key, &refusal, flight, None);
                inner.counters.refusals.fetch_add(1, Ordering::Relaxed);
                return Err(refusal.served());
            }
            // Nobody speaks for the fleet: this replica's own memory does.
            Shared::Nothing { answered: false } => {
                if let Some(refusal) = self.remembered_refusal(key, now) {
                    inner.counters.refusals.fetch_add(1, Ordering::Relaxed);
                    return Err(refusal.served());
                }
            }
            Shared::Nothing { answered: true } => {}
        }
        inner.counters.misses.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(tenant = %key.tenant, scope = %key.scopes, "token cache miss");
        let invalidations = inner.invalidations.load(Ordering::Acquire);
        let fetched = self.fetch(key).await;
        let now = inner.options.clock.now();
        // A token asked for by a domain nobody could resolve names its tenant's GUID:
        // it is filed there (for every form of the tenant), not under the domain.
        let learned = match &fetched {
            Ok((token, true)) => Some(Key {
                tenant: token.tenant().clone(),
                scopes: key.scopes.clone(),
            }),
            _ => None,
        };
        let refusal = match &fetched {
            Err(e) => Refusal::learned(e, now, &inner.options, self.spread(hash)).map(Arc::new),
            Ok(_) => None,
        };
        let learned_l2 = learned.as_ref().and_then(|k| self.shared_key(k));
        let result = fetched.as_ref().map(|(token, _)| token);
        self.shared_after_fetch(
            l2_key.as_ref(),
            learned_l2.as_ref(),
            result,
            refusal.as_deref(),
        )
        .await;
        match fetched {
            Ok((token, _)) => {
                let target = learned.as_ref().unwrap_or(key);
                let entry = Arc::new(Entry::new(
                    token,
                    now,
                    &inner.options,
                    self.spread(inner.hasher.hash_one(target)),
                ));
                inner.flights.finish(key, hash, flight, || match &learned {
                    None => self.install(key, &entry, flight, observed.as_ref()),
                    Some(target) => self.install_learned(target, &entry, flight, invalidations),
                });
                Ok(Served {
                    entry,
                    reused: false,
                })
            }
            Err(e) => {
                inner.counters.errors.fetch_add(1, Ordering::Relaxed);
                if let Some(refusal) = &refusal {
                    self.remember_refusal(key, refusal, flight, Some(invalidations));
                }
                Err(e)
            }
        }
    }

    /// The refusal remembered in memory for `key`, if it still holds at `now`.
    fn remembered_refusal(&self, key: &Key, now: SystemTime) -> Option<Arc<Refusal>> {
        self.inner.refusals.get(key).filter(|r| r.holds(now))
    }

    /// Remembers `refusal` for `key`, unless the flight was revoked (or, for a flight that
    /// cannot be revoked by its key's invalidation, any invalidation began since
    /// `invalidations` was read). Under the key's compute, as invalidation removes it.
    fn remember_refusal(
        &self,
        key: &Key,
        refusal: &Arc<Refusal>,
        flight: &Flight,
        invalidations: Option<u64>,
    ) {
        let counter = &self.inner.invalidations;
        self.inner
            .refusals
            .entry(key.clone())
            .and_compute_with(|_| {
                let stale = invalidations.is_some_and(|n| counter.load(Ordering::Acquire) != n);
                if flight.revoked() || stale {
                    Op::Nop
                } else {
                    Op::Put(refusal.clone())
                }
            });
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
        let refresh = self.inner.options.refresh;
        self.inner.tokens.entry(key.clone()).and_compute_with(|_| {
            if flight.revoked() {
                return Op::Nop;
            }
            let guard = index.guard();
            match (index.get(key, &guard), observed) {
                (None, _) => {}
                (Some(now), Some(then)) if now.slot.holds(then) => {}
                _ => return Op::Nop,
            }
            index.insert(key.clone(), Slot::new(entry, refresh), &guard);
            Op::Put(entry.clone())
        });
        // A token supersedes a refusal remembered for the key.
        self.inner.refusals.invalidate(key);
    }

    /// Inserts an entry whose key its flight learned only from the token (a domain's
    /// GUID): unless the flight was revoked or any invalidation began since it started
    /// (one of that GUID could not revoke it), and only where the index holds nothing
    /// usable.
    fn install_learned(&self, key: &Key, entry: &Arc<Entry>, flight: &Flight, invalidations: u64) {
        self.feed_store();
        let inner = &self.inner;
        let (index, refresh) = (&inner.index, inner.options.refresh);
        let now = inner.options.clock.now();
        inner.tokens.entry(key.clone()).and_compute_with(|_| {
            if flight.revoked() || inner.invalidations.load(Ordering::Acquire) != invalidations {
                return Op::Nop;
            }
            let guard = index.guard();
            if index
                .get(key, &guard)
                .is_some_and(|i| i.slot.entry.usable(now))
            {
                return Op::Nop;
            }
            index.insert(key.clone(), Slot::new(entry, refresh), &guard);
            Op::Put(entry.clone())
        });
    }

    /// Asks the provider, and refuses a token that is not for the key asked: a cache
    /// must never file one tenant's token under another's name. A token asked for by a
    /// domain that names its tenant's GUID (`tid`) comes back filed under the GUID, with
    /// `true`; the domain's GUID is learned.
    async fn fetch(&self, key: &Key) -> Result<(AccessToken, bool), Error> {
        let asked_at = self.inner.options.clock.now();
        let token = self
            .inner
            .provider
            .get_token(&key.tenant, &[key.scopes.as_str()])
            .await?;
        // Stamped with when it was asked for when the provider did not say (its life
        // cannot have started later), so the expiry margin is measured from the same
        // start wherever the token is inserted later.
        let token = match token.issued_on() {
            Some(_) => token,
            None => token.with_issued_on(asked_at),
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
        // A JWT says which tenant issued it (a custom provider's opaque token cannot).
        let tid = crate::jwt::claims_if_jwt(token.secret())
            .ok()
            .flatten()
            .and_then(|c| c.tid)
            .and_then(|tid| tid.parse::<TenantId>().ok())
            .filter(TenantId::is_guid);
        match tid {
            Some(tid) if key.tenant.is_guid() && tid != key.tenant => Err(Error::unexpected_claim(
                &key.tenant,
                "tid",
                key.tenant.as_str(),
                tid.as_str(),
            )),
            Some(tid) if !key.tenant.is_guid() => {
                self.inner.aliases.learn(&key.tenant, &tid);
                Ok((token.with_tenant(tid), true))
            }
            _ => Ok((token, false)),
        }
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
            remembered_refusals: c.refusals.load(Ordering::Relaxed),
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

    async fn resolve_tenant(&self, tenant: &TenantId) -> Result<Option<TenantId>, Error> {
        let canonical = self.canonical(tenant, false).await;
        Ok(canonical.is_guid().then_some(canonical))
    }
}

/// Whether `tenant` has a GUID's shape at a glance (its length and first dash): a hit by
/// GUID skips the domain lookup. A domain that happens to pass looks itself up, misses,
/// and is served by the slow path, which knows its GUID.
fn looks_like_guid(tenant: &TenantId) -> bool {
    let s = tenant.as_str().as_bytes();
    s.len() == 36 && s[8] == b'-'
}

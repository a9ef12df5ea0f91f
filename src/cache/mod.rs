//! [`Cached`]: a per-(tenant, scope) token cache in front of any provider, with per-key
//! single flight, proactive background refresh, stale-on-error and a bounded size.
//!
//! The map is a `moka::sync::Cache`: a hit is a lock-free hash lookup and two reference
//! count bumps, with no `.await`, no allocation and no lock shared across keys. Misses go
//! through a per-key flight (a `tokio::sync::OnceCell` every concurrent caller awaits), so
//! one token request serves them all, errors included; misses on different keys proceed
//! in parallel.

mod entry;
mod flights;
mod key;
mod options;
mod refresh;
mod shared;
mod stats;

use std::fmt;
use std::hash::BuildHasher as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use moka::notification::RemovalCause;
use url::Url;

use crate::error::Error;
use crate::l2::L2;
use crate::provider::TenantCredentialProvider;
use crate::scope::{Scopes, normalized};
use crate::tenant::TenantId;
use crate::token::AccessToken;

use entry::{Entry, EntryExpiry};
use flights::Flights;
use key::{Key, KeyHasher, KeyRef};
pub use options::CacheOptions;
pub use stats::CacheStats;
use stats::{Counter, Counters};

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
        let mut stats = CacheStats {
            hits: c.hits.get(),
            misses: c.misses.load(Ordering::Relaxed),
            refreshes: c.refreshes.load(Ordering::Relaxed),
            refresh_failures: c.refresh_failures.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            entries: inner.tokens.entry_count(),
            ..CacheStats::default()
        };
        self.shared_stats(&mut stats);
        stats
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
                let l2_key = self.shared_key(&key);
                if let Some(entry) = self
                    .shared_before_fetch(&key, l2_key.as_ref(), hash, now)
                    .await
                {
                    inner.tokens.insert(key.clone(), entry.clone());
                    return Ok(entry);
                }
                inner.counters.misses.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(tenant = %tenant, scope, "token cache miss");
                let fetched = self.fetch(&key).await;
                self.shared_after_fetch(l2_key.as_ref(), &fetched).await;
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
        // Stamped on receipt when the provider did not say, so the expiry margin is
        // measured from the same start wherever the token is inserted later.
        let token = match token.issued_on() {
            Some(_) => token,
            None => token.with_issued_on(self.inner.options.clock.now()),
        };
        if token.tenant() != &key.tenant {
            return Err(Error::UnexpectedToken {
                tenant: key.tenant.clone(),
                claim: "tenant",
                expected: key.tenant.to_string(),
                found: token.tenant().to_string(),
            });
        }
        if token.scopes() != &key.scopes {
            return Err(Error::UnexpectedToken {
                tenant: key.tenant.clone(),
                claim: "scope",
                expected: key.scopes.to_string(),
                found: token.scopes().to_string(),
            });
        }
        Ok(token)
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

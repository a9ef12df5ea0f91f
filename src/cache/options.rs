//! [`CacheOptions`]: how a [`Cached`](super::Cached) provider keeps tokens.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SharedClock, SystemClock};
use crate::error::Error;
use crate::l2::SharedCache;

/// How a [`Cached`](super::Cached) provider keeps tokens: set with the methods below,
/// each of which says its default.
///
/// ```
/// use std::time::Duration;
/// use azure_cross_tenant::{CacheOptions, Cached, ClientSecret};
///
/// let options = CacheOptions::default()
///     .max_entries(50_000)
///     .expiry_skew(Duration::from_secs(120))
///     .jitter(Duration::from_secs(60));
/// let credential = ClientSecret::new("11111111-2222-3333-4444-555555555555", "secret").build()?;
/// let cached = Cached::with_options(credential, options)?;
///
/// // A cache that can hold nothing is refused when it is built.
/// let credential = ClientSecret::new("11111111-2222-3333-4444-555555555555", "secret").build()?;
/// assert!(Cached::with_options(credential, CacheOptions::default().max_entries(0)).is_err());
/// # Ok::<(), azure_cross_tenant::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct CacheOptions {
    pub(super) max_entries: u64,
    pub(super) expiry_skew: Duration,
    pub(super) refresh: bool,
    pub(super) jitter: Duration,
    pub(super) refresh_retry: Duration,
    pub(super) negative_ttl: Duration,
    pub(super) clock: SharedClock,
    pub(super) shared: Option<SharedCache>,
}

/// About 2.2 KB per entry (a 1.5 KB app token plus keys and bookkeeping, measured by
/// `benches/memory.rs`): 50,000 entries cap the cache near 110 MB, and cover 10,000
/// tenants with up to five resources each.
const DEFAULT_MAX_ENTRIES: u64 = 50_000;

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            max_entries: DEFAULT_MAX_ENTRIES,
            expiry_skew: Duration::from_secs(5 * 60),
            refresh: true,
            jitter: Duration::from_secs(5 * 60),
            refresh_retry: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(60),
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
            .field("negative_ttl", &self.negative_ttl)
            .field("clock", &self.clock)
            .field("shared", &self.shared)
            .finish()
    }
}

impl CacheOptions {
    /// Most (tenant, scope) entries kept. Beyond it the least used entries go first;
    /// expired ones go whenever found. Size it above the number of (tenant, resource)
    /// pairs in use, at about 2.2 KB each; when evictions replace the whole cache within
    /// 10 minutes, a warning says it is too small. 0 is refused by
    /// [`Cached::with_options`](super::Cached::with_options).
    /// Default: 50,000 (about 110 MB when full).
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// A token stops being served this long before it expires, capped at a quarter of its
    /// whole lifetime for short-lived tokens. Default: 5 min.
    pub fn expiry_skew(mut self, skew: Duration) -> Self {
        self.expiry_skew = skew;
        self
    }

    /// Whether tokens are refreshed in the background before they expire. Default: on.
    pub fn refresh(mut self, refresh: bool) -> Self {
        self.refresh = refresh;
        self
    }

    /// Refreshes start up to this much earlier than due, spread per key, so thousands of
    /// tenants do not refresh in the same second; capped at a tenth of the time to the
    /// refresh. Default: 5 min.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// First wait before retrying a failed background refresh; doubles per failure up to
    /// 5 min. Default: 30 s.
    pub fn refresh_retry(mut self, wait: Duration) -> Self {
        self.refresh_retry = wait;
        self
    }

    /// How long a tenant's permanent refusal is remembered per (tenant, scope): not
    /// consented, tenant not found, app disabled in the tenant, resource not there
    /// ([`Error::is_tenant_refusal`](crate::Error::is_tenant_refusal)). Within the window
    /// callers get the same error again, marked with when Entra gave it
    /// ([`Error::remembered_at`](crate::Error::remembered_at)), without a request; with a
    /// [`shared`](Self::shared) cache the whole fleet asks once per window. Each key's
    /// window is shortened by up to a fifth (jitter). Throttling, 5xx and transport
    /// errors are never remembered. [`invalidate`](super::Cached::invalidate),
    /// [`invalidate_tenant`](super::Cached::invalidate_tenant) and
    /// [`invalidate_all`](super::Cached::invalidate_all) drop it at once (call one when a
    /// tenant finishes onboarding); zero turns it off. Default: 60 s.
    pub fn negative_ttl(mut self, window: Duration) -> Self {
        self.negative_ttl = window;
        self
    }

    /// A shared (L2) cache under this one, so replicas share tokens (see [`SharedCache`]).
    /// Default: none.
    pub fn shared(mut self, shared: SharedCache) -> Self {
        self.shared = Some(shared);
        self
    }

    /// The clock deciding expiry and refresh (share a
    /// [`ManualClock`](crate::ManualClock) with the credential in tests).
    /// Default: the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Refuses options no cache can work with.
    pub(super) fn check(&self) -> Result<(), Error> {
        if self.max_entries == 0 {
            return Err(Error::InvalidConfiguration(
                "CacheOptions::max_entries is 0: the cache could hold no token and every call \
                 would ask Entra; set it above the number of (tenant, resource) pairs in use, \
                 or leave the default (50,000)"
                    .into(),
            ));
        }
        Ok(())
    }
}

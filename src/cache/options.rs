//! [`CacheOptions`]: how a [`Cached`](super::Cached) provider keeps tokens.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SharedClock, SystemClock};
use crate::l2::SharedCache;

/// How a [`Cached`](super::Cached) provider keeps tokens.
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
    pub(super) clock: SharedClock,
    pub(super) shared: Option<SharedCache>,
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

//! [`RedisEntraAuth`]: `RedisStore` signs in to Redis with a Microsoft Entra token instead
//! of a password (Azure Managed Redis, Azure Cache for Redis), and keeps every live
//! connection signed in as tokens rotate.
//!
//! The redis crate's `token-based-authentication` feature does the connection side: a
//! connection takes its first credentials from a [`StreamingCredentialsProvider`] when it
//! is built (each node's connection, in a cluster), then sends `AUTH` again for every
//! credentials the stream yields. This module is that provider, on this crate's terms:
//! tokens come from any [`TenantCredentialProvider`] (or, feature `azure-core`, a managed
//! identity or any `TokenCredential`), expiry and refresh are read from the injected
//! [`Clock`], a failed refresh is retried with backoff for as long as it takes (never
//! given up), logged without the token and counted, and a connection whose re-`AUTH`
//! failed is replaced by a new one signed in with the current token.
//!
//! The crate's own `entra-id` provider is not used: it reads the wall clock and sleeps on
//! the tokio timer (so its refresh cannot be tested without waiting), stops refreshing
//! for good after a few failed attempts, takes only `azure_identity` credentials, and
//! logs through `log`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use futures_util::Stream;
use redis::auth::{BasicAuth, StreamingCredentialsProvider};
use redis::{ErrorKind, RedisError, RedisResult};
use tokio::sync::{Notify, watch};

use crate::clock::{Clock, SharedClock, SharedSleeper, SystemClock, TokioSleeper};
use crate::cloud::Cloud;
use crate::error::Error;
use crate::provider::TenantCredentialProvider;
use crate::tenant::TenantId;

/// A token request for Redis gives up after this long (the next attempt follows the
/// backoff).
const FETCH_DEADLINE: Duration = Duration::from_secs(30);
/// Backoff after a failed refresh: doubles from the first to the last.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_LAST: Duration = Duration::from_secs(60);
/// The refresher looks at the clock at least this often while idle (a clock that jumps,
/// or a test clock, is noticed within this; calls notice at once).
const IDLE_LOOK: Duration = Duration::from_secs(30);

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A token for Redis as a source returns it.
struct Fetched {
    secret: String,
    expires_on: SystemTime,
    issued_on: Option<SystemTime>,
}

/// Where Redis tokens come from.
trait TokenSource: Send + Sync + fmt::Debug {
    fn fetch<'a>(&'a self, scope: &'a str) -> BoxFuture<'a, Result<Fetched, Error>>;
    /// The cloud whose Redis scope applies when none is set.
    fn cloud(&self) -> Cloud;
}

struct ProviderSource {
    provider: Arc<dyn TenantCredentialProvider>,
    tenant: TenantId,
}

impl fmt::Debug for ProviderSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSource")
            .field("client_id", &self.provider.client_id())
            .field("tenant", &self.tenant)
            .finish()
    }
}

impl TokenSource for ProviderSource {
    fn fetch<'a>(&'a self, scope: &'a str) -> BoxFuture<'a, Result<Fetched, Error>> {
        Box::pin(async move {
            let token = self.provider.get_token(&self.tenant, &[scope]).await?;
            Ok(Fetched {
                secret: token.secret().to_owned(),
                expires_on: token.expires_on(),
                issued_on: token.issued_on(),
            })
        })
    }

    fn cloud(&self) -> Cloud {
        Cloud::known_by_authority(self.provider.authority_host()).unwrap_or_else(|| Cloud::Custom {
            authority_host: self.provider.authority_host().clone(),
            token_exchange_audience: String::new(),
        })
    }
}

#[cfg(feature = "azure-core")]
struct CredentialSource {
    credential: Arc<dyn azure_core::credentials::TokenCredential>,
    cloud: Cloud,
}

#[cfg(feature = "azure-core")]
impl fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialSource")
            .field("cloud", &self.cloud)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "azure-core")]
impl TokenSource for CredentialSource {
    fn fetch<'a>(&'a self, scope: &'a str) -> BoxFuture<'a, Result<Fetched, Error>> {
        Box::pin(async move {
            let token = self
                .credential
                .get_token(&[scope], None)
                .await
                .map_err(|e| Error::ManagedIdentityUnavailable {
                    source: Arc::new(e),
                })?;
            let expires_on = u64::try_from(token.expires_on.unix_timestamp())
                .ok()
                .and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s)))
                .unwrap_or(SystemTime::UNIX_EPOCH);
            Ok(Fetched {
                secret: token.token.secret().to_owned(),
                expires_on,
                issued_on: None,
            })
        })
    }

    fn cloud(&self) -> Cloud {
        self.cloud.clone()
    }
}

/// Microsoft Entra authentication for [`RedisStore`](crate::RedisStore) (feature `redis`):
/// the store signs in to Azure Managed Redis or Azure Cache for Redis as an identity of
/// the provider's own (home) tenant, with `AUTH <object id> <access token>`, and keeps
/// every live connection signed in as tokens rotate.
///
/// - Every new connection (each node's, in a cluster) signs in with a current token.
/// - Live connections send `AUTH` again with a new token once three quarters of the old
///   one's lifetime have passed (a quarter, about 15 minutes for Entra's hour, is left
///   for retries); a connection whose `AUTH` failed is replaced by a new one.
/// - A failed token request is retried with backoff (1 s doubling to 60 s) until it
///   succeeds, logged without the token, and counted
///   ([`RedisStore::auth_stats`](crate::RedisStore::auth_stats)).
/// - The user name is the token's `oid` claim (the identity's object id).
/// - The scope is the cloud's Redis scope ([`Cloud::redis_scope`]), from the provider's
///   authority host unless set with [`scope`](Self::scope) or [`cloud`](Self::cloud).
///
/// ```no_run
/// # fn run() -> Result<(), azure_cross_tenant::Error> {
/// use azure_cross_tenant::{ClientSecret, RedisEntraAuth, RedisStore, TenantId};
///
/// let app = ClientSecret::new("11111111-2222-3333-4444-555555555555", "secret").build()?;
/// let home: TenantId = "22222222-3333-4444-5555-666666666666".parse()?;
/// let store = RedisStore::cluster(["rediss://my-cache.westeurope.redis.azure.net:10000"])?
///     .entra(RedisEntraAuth::new(app, home))?;
/// # let _ = store; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisEntraAuth {
    source: Arc<dyn TokenSource>,
    scope: Option<String>,
    cloud: Option<Cloud>,
    clock: SharedClock,
    sleeper: SharedSleeper,
}

impl fmt::Debug for RedisEntraAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisEntraAuth")
            .field("source", &self.source)
            .field("scope", &self.resolved_scope())
            .finish_non_exhaustive()
    }
}

impl RedisEntraAuth {
    /// Tokens from `provider` (any credential of this crate, or your own) in `home_tenant`,
    /// the tenant of the identity the cache's data access policy names. Pass the
    /// credential itself, not a `Cached` one: this refreshes on its own schedule.
    pub fn new(provider: impl TenantCredentialProvider + 'static, home_tenant: TenantId) -> Self {
        Self::with_source(Arc::new(ProviderSource {
            provider: Arc::new(provider),
            tenant: home_tenant,
        }))
    }

    /// Tokens of a user-assigned managed identity (IMDS or App Service, through
    /// `azure_identity`, never through a proxy). Public cloud unless [`cloud`](Self::cloud)
    /// says otherwise. Feature `azure-core`.
    #[cfg(feature = "azure-core")]
    pub fn managed_identity(identity: crate::ManagedIdentity) -> Result<Self, Error> {
        Ok(Self::token_credential(identity.credential()?))
    }

    /// Tokens from any `azure_core` `TokenCredential` (a system-assigned managed identity,
    /// workload identity, a developer's Azure CLI...). Public cloud unless
    /// [`cloud`](Self::cloud) says otherwise. Feature `azure-core`.
    #[cfg(feature = "azure-core")]
    pub fn token_credential(credential: Arc<dyn azure_core::credentials::TokenCredential>) -> Self {
        Self::with_source(Arc::new(CredentialSource {
            credential,
            cloud: Cloud::Public,
        }))
    }

    fn with_source(source: Arc<dyn TokenSource>) -> Self {
        Self {
            source,
            scope: None,
            cloud: None,
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(TokioSleeper),
        }
    }

    /// The cloud whose Redis scope to ask for ([`Cloud::redis_scope`]).
    pub fn cloud(mut self, cloud: Cloud) -> Self {
        self.cloud = Some(cloud);
        self
    }

    /// The scope to ask for, overriding the cloud's (a private deployment, a test).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The clock tokens' lifetimes are read on (default the system clock); tests pass a
    /// `ManualClock` and move it instead of waiting.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn resolved_scope(&self) -> String {
        self.scope.clone().unwrap_or_else(|| {
            self.cloud
                .clone()
                .unwrap_or_else(|| self.source.cloud())
                .redis_scope()
                .to_owned()
        })
    }

    pub(super) fn into_credentials(self) -> EntraCredentials {
        let scope = self.resolved_scope();
        let (published, _) = watch::channel(Published::default());
        EntraCredentials {
            shared: Arc::new(Shared {
                auth: self,
                scope,
                published,
                state: Mutex::new(Schedule::default()),
                due_ms: AtomicU64::new(0),
                wake: Arc::new(Notify::new()),
                started: AtomicBool::new(false),
                reconnect: AtomicBool::new(false),
                stats: Counters::default(),
            }),
        }
    }
}

/// Counters of a store's Entra authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisAuthStats {
    /// Tokens fetched for Redis (the first one and every refresh).
    pub tokens_fetched: u64,
    /// Token requests for Redis that failed (each retried with backoff).
    pub fetch_failures: u64,
    /// Live connections whose `AUTH` with a new token failed (each was replaced by a new
    /// connection).
    pub reauth_failures: u64,
}

#[derive(Default)]
struct Counters {
    fetched: AtomicU64,
    fetch_failures: AtomicU64,
    reauth_failures: AtomicU64,
}

/// The signed-in user and its token.
struct Creds {
    user: String,
    token: String,
    expires_on: SystemTime,
    refresh_at: SystemTime,
    generation: u64,
}

#[derive(Clone, Default)]
struct Published {
    creds: Option<Arc<Creds>>,
    /// The last failed attempt: its number and what went wrong (no token in it).
    failure: Option<(u64, Arc<str>)>,
}

#[derive(Default)]
struct Schedule {
    attempts: u64,
    /// Failed attempts in a row.
    failures: u32,
    /// The next attempt after a failure.
    retry_at: Option<SystemTime>,
}

/// The streaming credentials provider behind a `RedisStore` with Entra authentication.
#[derive(Clone)]
pub(super) struct EntraCredentials {
    shared: Arc<Shared>,
}

struct Shared {
    auth: RedisEntraAuth,
    scope: String,
    published: watch::Sender<Published>,
    state: Mutex<Schedule>,
    /// When the next fetch is due (ms since the epoch): a call that sees it passed wakes
    /// the refresher.
    due_ms: AtomicU64,
    wake: Arc<Notify>,
    started: AtomicBool,
    /// A live connection failed to sign in again: replace the store's connection.
    reconnect: AtomicBool,
    stats: Counters,
}

impl fmt::Debug for EntraCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self
            .shared
            .published
            .borrow()
            .creds
            .as_ref()
            .map(|c| c.user.clone());
        f.debug_struct("EntraCredentials")
            .field("scope", &self.shared.scope)
            .field("user", &user)
            .finish_non_exhaustive()
    }
}

fn ms(t: SystemTime) -> u64 {
    super::value::millis(t)
}

impl Shared {
    fn schedule(&self) -> MutexGuard<'_, Schedule> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the next fetch is due: at once without a token, at the retry time after a
    /// failure, at the refresh point otherwise.
    fn due(&self) -> SystemTime {
        let retry_at = self.schedule().retry_at;
        let refresh_at = self.published.borrow().creds.as_ref().map(|c| c.refresh_at);
        retry_at.or(refresh_at).unwrap_or(SystemTime::UNIX_EPOCH)
    }

    fn set_due(&self) {
        self.due_ms.store(ms(self.due()), Ordering::Release);
    }

    /// One token request for Redis, and what follows from it.
    async fn refresh(&self) {
        let clock = &self.auth.clock;
        let started = clock.now();
        let attempt = {
            let mut schedule = self.schedule();
            schedule.attempts += 1;
            schedule.attempts
        };
        let fetched =
            match tokio::time::timeout(FETCH_DEADLINE, self.auth.source.fetch(&self.scope)).await {
                Ok(Ok(fetched)) => signed_in(fetched, started),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {FETCH_DEADLINE:?}")),
            };
        let current = self.published.borrow().creds.clone();
        let fetched = fetched.and_then(|(user, fetched, refresh_at)| match &current {
            Some(c) if c.token == fetched.secret => Err(
                "the credential returned the token it returned before (pass the credential \
                     itself to RedisEntraAuth, not a cache of it)"
                    .to_owned(),
            ),
            _ => Ok((user, fetched, refresh_at)),
        });
        match fetched {
            Ok((user, fetched, refresh_at)) => {
                self.stats.fetched.fetch_add(1, Ordering::Relaxed);
                *self.schedule() = Schedule {
                    attempts: attempt,
                    ..Schedule::default()
                };
                let generation = current.as_ref().map_or(1, |c| c.generation + 1);
                tracing::debug!(user = %user, generation, "Entra token for Redis fetched");
                self.published.send_replace(Published {
                    creds: Some(Arc::new(Creds {
                        user,
                        token: fetched.secret,
                        expires_on: fetched.expires_on,
                        refresh_at,
                        generation,
                    })),
                    failure: None,
                });
            }
            Err(why) => {
                self.stats.fetch_failures.fetch_add(1, Ordering::Relaxed);
                let wait = {
                    let mut schedule = self.schedule();
                    schedule.failures = schedule.failures.saturating_add(1);
                    let wait = RETRY_FIRST
                        .saturating_mul(1 << (schedule.failures - 1).min(16))
                        .min(RETRY_LAST);
                    schedule.retry_at = Some(clock.now() + wait);
                    wait
                };
                tracing::warn!(
                    scope = %self.scope,
                    attempt,
                    retry_in_ms = wait.as_millis() as u64,
                    error = %why,
                    "could not get a Microsoft Entra token for Redis; connections keep the \
                     token they have until it expires, new ones cannot sign in until this \
                     succeeds"
                );
                self.published
                    .send_modify(|p| p.failure = Some((attempt, why.into())));
            }
        }
        self.set_due();
    }

    /// A live connection did not confirm its `AUTH` with a new token.
    fn reauth_failed(&self) {
        self.stats.reauth_failures.fetch_add(1, Ordering::Relaxed);
        self.reconnect.store(true, Ordering::Release);
        tracing::warn!(
            "a Redis connection did not sign in again with a new Entra token; it is replaced \
             by a new connection signed in with the current token"
        );
    }
}

/// The user name (`oid`) of `fetched` and when to refresh it: three quarters into its
/// lifetime, counted from when it was issued (or asked for).
fn signed_in(fetched: Fetched, asked: SystemTime) -> Result<(String, Fetched, SystemTime), String> {
    let claims = crate::jwt::decode_unverified(&fetched.secret)
        .map_err(|e| format!("the token for Redis is not a JWT this crate can read ({e})"))?;
    let user = claims.oid.filter(|o| !o.is_empty()).ok_or_else(|| {
        "the token for Redis has no oid claim (Redis signs in the identity by its object id)"
            .to_owned()
    })?;
    let issued = fetched.issued_on.unwrap_or(asked).min(asked);
    let lifetime = fetched
        .expires_on
        .duration_since(issued)
        .unwrap_or_default();
    Ok((user, fetched, issued + lifetime / 4 * 3))
}

impl EntraCredentials {
    /// Starts the refresher if it is not running (needs a tokio runtime).
    fn start(&self) -> Result<(), RedisError> {
        if self.shared.started.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            self.shared.started.store(false, Ordering::Release);
            RedisError::from((
                ErrorKind::AuthenticationFailed,
                "no tokio runtime to refresh Entra tokens on",
            ))
        })?;
        let weak = Arc::downgrade(&self.shared);
        let (wake, sleeper, clock) = (
            self.shared.wake.clone(),
            self.shared.auth.sleeper.clone(),
            self.shared.auth.clock.clone(),
        );
        runtime.spawn(refresher(weak, wake, sleeper, clock));
        Ok(())
    }

    /// Called on every store call: wakes the refresher if a fetch is due on the clock.
    pub(super) fn tick(&self) {
        let due = self.shared.due_ms.load(Ordering::Acquire);
        if ms(self.shared.auth.clock.now()) >= due {
            self.shared.wake.notify_one();
        }
    }

    /// Whether a live connection failed to sign in again since the last call (and so the
    /// store's connection should be replaced).
    pub(super) fn take_reconnect(&self) -> bool {
        self.shared.reconnect.swap(false, Ordering::AcqRel)
    }

    pub(super) fn stats(&self) -> RedisAuthStats {
        let c = &self.shared.stats;
        RedisAuthStats {
            tokens_fetched: c.fetched.load(Ordering::Relaxed),
            fetch_failures: c.fetch_failures.load(Ordering::Relaxed),
            reauth_failures: c.reauth_failures.load(Ordering::Relaxed),
        }
    }
}

/// Fetches a token whenever one is due, until the credentials are dropped.
async fn refresher(
    weak: Weak<Shared>,
    wake: Arc<Notify>,
    sleeper: SharedSleeper,
    clock: SharedClock,
) {
    loop {
        let wait = {
            let Some(shared) = weak.upgrade() else { return };
            let now = clock.now();
            let due = shared.due();
            if now >= due {
                shared.refresh().await;
                continue;
            }
            due.duration_since(now).unwrap_or_default().min(IDLE_LOOK)
        };
        let notified = std::pin::pin!(wake.notified());
        futures_util::future::select(notified, sleeper.sleep(wait)).await;
    }
}

/// What one subscriber has been given.
struct Subscriber {
    shared: Arc<Shared>,
    rx: watch::Receiver<Published>,
    /// The generation last yielded (0: none yet).
    yielded: u64,
    /// Yielded a new token after the first and not polled since: its `AUTH` is pending.
    unconfirmed: bool,
}

impl Drop for Subscriber {
    /// A connection polls its stream again once its `AUTH` succeeded; dropping it right
    /// after a new token means the `AUTH` failed (or the connection died meanwhile).
    fn drop(&mut self) {
        if self.unconfirmed {
            self.shared.reauth_failed();
        }
    }
}

impl Subscriber {
    async fn next(mut self) -> Option<(RedisResult<BasicAuth>, Self)> {
        self.unconfirmed = false;
        let first = self.yielded == 0;
        loop {
            let (item, waiting_for_token) = {
                let published = self.rx.borrow_and_update();
                let now = self.shared.auth.clock.now();
                let current = published
                    .creds
                    .clone()
                    .filter(|c| c.generation > self.yielded && (!first || c.expires_on > now));
                match (current, &published.failure) {
                    (Some(c), _) => (Some(Ok(c)), false),
                    // No usable token and the last request failed: a new connection cannot
                    // sign in, and says why (the refresher keeps retrying meanwhile).
                    (None, Some((_, why))) if first => (Some(Err(why.clone())), true),
                    (None, _) => (None, first),
                }
            };
            match item {
                Some(Ok(creds)) => {
                    self.yielded = creds.generation;
                    self.unconfirmed = !first;
                    let auth = BasicAuth::new(creds.user.clone(), creds.token.clone());
                    return Some((Ok(auth), self));
                }
                Some(Err(why)) => {
                    if waiting_for_token {
                        self.shared.wake.notify_one();
                    }
                    let error = RedisError::from((
                        ErrorKind::AuthenticationFailed,
                        "could not get a Microsoft Entra token for Redis",
                        why.to_string(),
                    ));
                    return Some((Err(error), self));
                }
                None => {
                    if waiting_for_token {
                        self.shared.wake.notify_one();
                    }
                    if self.rx.changed().await.is_err() {
                        return None;
                    }
                }
            }
        }
    }
}

impl StreamingCredentialsProvider for EntraCredentials {
    fn subscribe(&self) -> Pin<Box<dyn Stream<Item = RedisResult<BasicAuth>> + Send + 'static>> {
        if let Err(e) = self.start() {
            return Box::pin(futures_util::stream::once(async move { Err(e) }));
        }
        let subscriber = Subscriber {
            shared: self.shared.clone(),
            rx: self.shared.published.subscribe(),
            yielded: 0,
            unconfirmed: false,
        };
        Box::pin(futures_util::stream::unfold(subscriber, Subscriber::next))
    }
}

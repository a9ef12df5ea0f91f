//! [`L2`]: a [`SharedCache`] in use. Every call is bounded by the timeout and counted by
//! the circuit breaker; values are sealed and stamped; reads honour tombstones; leases
//! are released only by their holder.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use super::SharedCache;
use super::health::{Gate, Health};
use super::invalidate::Pending;
use super::names::{self, L2Key};
use super::store::{L2Error, L2Store};
use super::value::{self, MAX_TOMBSTONE, MAX_VALUE, StoredRefusal, millis};
use crate::error::Error;
use crate::scope::Scopes;
use crate::tenant::TenantId;
use crate::token::AccessToken;

/// Values live in L2 at most this long (longer-lived tokens are simply fetched again),
/// and tombstones exactly this long: by then every value stored before them is gone.
pub(super) const LONGEST_VALUE: Duration = Duration::from_secs(25 * 3600);
/// Outer bound on a breaker probe (reconnect and ping), whatever the store does.
const PROBE_DEADLINE: Duration = Duration::from_secs(10);

/// L2 counters.
#[derive(Default)]
pub(crate) struct L2Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) open_failures: AtomicU64,
}

/// The outcome of asking for a lease.
#[derive(Debug)]
pub(crate) enum Lease {
    /// This replica holds it under this holder value, and releases it when done.
    Held(String),
    /// Another replica holds it: wait for its token.
    Busy,
    /// Leases are off or L2 did not answer: ask Entra without one.
    Unavailable,
}

/// What L2 holds for one entry.
pub(crate) enum Found {
    /// A token the caller may serve.
    Token(AccessToken),
    /// The tenant's refusal, still in its window.
    Refusal(StoredRefusal),
    /// Nothing usable.
    Nothing,
}

/// A [`SharedCache`] in use.
pub(crate) struct L2 {
    pub(crate) config: SharedCache,
    pub(crate) counters: L2Counters,
    pub(super) state: Arc<State>,
    /// The latest global tombstone read, plus one (0: never read).
    pub(super) global: AtomicU64,
    /// When a failed call was last logged at `warn` (ms since the epoch): at most one
    /// such line per probe interval, however many calls fail.
    warned_at: AtomicU64,
    /// Whether an oversized value was logged at `warn` already (once per cache).
    oversized_logged: AtomicBool,
}

/// What background probes share with calls.
pub(super) struct State {
    pub(super) health: Health,
    pub(super) pending: Mutex<Pending>,
    /// No background flush of pending invalidations starts before then (ms since the
    /// epoch); `u64::MAX` while one runs.
    pub(super) next_flush: AtomicU64,
    /// Whether an invalidation may be pending (read on every successful call instead of
    /// locking `pending`).
    pub(super) maybe_pending: AtomicBool,
}

impl L2 {
    pub(crate) fn new(config: SharedCache) -> Self {
        let health = Health::new(config.breaker_threshold, config.probe_every);
        Self {
            config,
            counters: L2Counters::default(),
            state: Arc::new(State {
                health,
                pending: Mutex::new(Pending::default()),
                next_flush: AtomicU64::new(0),
                maybe_pending: AtomicBool::new(false),
            }),
            global: AtomicU64::new(0),
            warned_at: AtomicU64::new(0),
            oversized_logged: AtomicBool::new(false),
        }
    }

    pub(super) fn store(&self) -> &dyn L2Store {
        &*self.config.store
    }

    /// The names of one entry of the app (`authority`, `client_id`).
    pub(crate) fn key(&self, app: (&str, &str), tenant: &TenantId, scopes: &Scopes) -> L2Key {
        names::entry(
            &self.config.keys,
            &self.config.namespace,
            app,
            tenant,
            scopes,
        )
    }

    /// Runs `op` on the part of the store holding `key` under the timeout if that part's
    /// breaker lets it; `None` on skip or failure.
    pub(super) async fn call<T>(
        &self,
        now: SystemTime,
        key: &str,
        op: impl Future<Output = Result<T, L2Error>>,
    ) -> Option<T> {
        let part = self.store().partition(key);
        match self.state.health.gate(part, now) {
            Gate::Call => self.run(now, part, op).await,
            Gate::Skip => None,
            Gate::Probe => {
                self.spawn_probe(part, key, now);
                None
            }
        }
    }

    async fn run<T>(
        &self,
        now: SystemTime,
        part: u32,
        op: impl Future<Output = Result<T, L2Error>>,
    ) -> Option<T> {
        let timeout = self.config.timeout;
        let result = tokio::time::timeout(timeout, op)
            .await
            .unwrap_or_else(|_| Err(L2Error::new(format!("no answer within {timeout:?}"))));
        match result {
            Ok(v) => {
                self.state.health.succeeded(part);
                self.flush_if_due(now);
                Some(v)
            }
            Err(e) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                let opened = self.state.health.failed(part, now);
                // One line per probe interval, however many calls fail (a refused
                // credential fails every call until someone fixes it).
                let ms = millis(now);
                let last = self.warned_at.load(Ordering::Relaxed);
                let every = u64::try_from(self.config.probe_every.as_millis()).unwrap_or(u64::MAX);
                let due = last == 0 || ms.saturating_sub(last) >= every.max(1);
                if due
                    && self
                        .warned_at
                        .compare_exchange(last, ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::warn!(
                        error = %e,
                        errors = self.counters.errors.load(Ordering::Relaxed),
                        probe_every_ms = every,
                        "shared token cache call failed; treating it as a miss (after repeated \
                         failures the failing part of the store is skipped until a probe \
                         reaches it; further failures are logged at debug until the next \
                         interval)"
                    );
                } else {
                    tracing::debug!(error = %e, opened, "shared token cache call failed");
                }
                None
            }
        }
    }

    /// Pings (and so reconnects) the part of the store holding `key` in the background,
    /// writes pending invalidations, and closes that part's breaker if the ping worked
    /// and none of its invalidations is still pending.
    fn spawn_probe(&self, part: u32, key: &str, started: SystemTime) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.state.health.probed(part, false, started);
            return;
        };
        let store = self.config.store.clone();
        let state = self.state.clone();
        let (key, timeout) = (key.to_owned(), self.config.timeout);
        runtime.spawn(async move {
            let probe = async {
                store.ping_partition(&key).await?;
                // What fails stays pending; this part waits only for its own.
                let _ = state.flush(&*store, timeout).await;
                Ok::<_, L2Error>(())
            };
            let ok = match tokio::time::timeout(PROBE_DEADLINE, probe).await {
                // An invalidation postponed while this probe ran waits for the next one.
                Ok(Ok(())) => !state.pending_in(&*store, part),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "shared token cache still unavailable");
                    false
                }
                Err(_) => false,
            };
            if ok {
                tracing::info!("shared token cache reachable again; using it");
            }
            state.health.probed(part, ok, started);
        });
    }

    /// After a successful call: writes pending invalidations in the background, at most
    /// once per probe interval, so they reach the store even when the parts they belong
    /// to see no traffic that would probe them.
    fn flush_if_due(&self, now: SystemTime) {
        let state = &self.state;
        if !state.maybe_pending.load(Ordering::Acquire) {
            return;
        }
        let due = state.next_flush.load(Ordering::Relaxed);
        if due > millis(now) || state.nothing_pending() {
            return;
        }
        if state
            .next_flush
            .compare_exchange(due, u64::MAX, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let next = millis(now)
            .saturating_add(u64::try_from(self.config.probe_every.as_millis()).unwrap_or(u64::MAX));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            state.next_flush.store(next, Ordering::Release);
            return;
        };
        let (store, state, timeout) = (
            self.config.store.clone(),
            self.state.clone(),
            self.config.timeout,
        );
        runtime.spawn(async move {
            let _ = tokio::time::timeout(PROBE_DEADLINE, state.flush(&*store, timeout)).await;
            state.next_flush.store(next, Ordering::Release);
        });
    }

    /// Counts and logs a value longer than the cache accepts (once at `warn` per cache):
    /// it is a miss, never read whole.
    fn oversized(&self, what: &str) {
        self.counters.open_failures.fetch_add(1, Ordering::Relaxed);
        if !self.oversized_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                what,
                limit = MAX_VALUE,
                "a shared cache value is longer than any the cache writes; it is a miss \
                 (only its first bytes were read). Something other than this cache writes \
                 under its keys: check who has write access to the store"
            );
        } else {
            tracing::debug!(what, "oversized shared cache value");
        }
    }

    /// What L2 holds for the entry: a token that `usable` accepts, a refusal still in its
    /// window, or nothing usable; `None` when L2 did not answer (skipped, failed, or the
    /// global tombstone was never read). A value or refusal stamped at or before its own,
    /// its tenant's or the global tombstone was fetched before an invalidation: a miss.
    /// A token and a refusal share one name: whichever was stored last is what L2 holds.
    pub(crate) async fn get(
        &self,
        key: &L2Key,
        (tenant, scopes, client_id): (&TenantId, &Scopes, &str),
        now: SystemTime,
        usable: impl Fn(&AccessToken) -> bool,
    ) -> Option<Found> {
        let found = self
            .lookup(key, (tenant, scopes, client_id), now, usable)
            .await;
        let counter = match &found {
            Some(Found::Token(_)) => Some(&self.counters.hits),
            Some(Found::Nothing) | None => Some(&self.counters.misses),
            Some(Found::Refusal(_)) => None,
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    async fn lookup(
        &self,
        key: &L2Key,
        (tenant, scopes, client_id): (&TenantId, &Scopes, &str),
        now: SystemTime,
        usable: impl Fn(&AccessToken) -> bool,
    ) -> Option<Found> {
        // (value, tenant tombstone, entry tombstone) per naming key: one slot, one
        // command. The global tombstone lives in a slot of its own; both commands share
        // one round trip.
        let mut wanted: Vec<&str> = Vec::with_capacity(3 * key.names.len());
        for n in &key.names {
            wanted.extend([n.value.as_str(), &n.tenant_tombstone, &n.tombstone]);
        }
        let (values, global) = futures_util::future::join(
            self.call(
                now,
                wanted[0],
                self.store().get_many_bounded(&wanted, MAX_VALUE + 1),
            ),
            self.global_tombstone_now(now),
        )
        .await;
        let values = values?;
        if values.len() != wanted.len() {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "the shared cache store answered a different number of values than asked"
            );
            return None;
        }
        let tombstone = values
            .chunks(3)
            .flat_map(|c| &c[1..])
            .flatten()
            .map(|t| {
                if t.len() > MAX_TOMBSTONE {
                    self.oversized("tombstone");
                }
                value::read_tombstone(t)
            })
            .chain(Some(global?))
            .max()
            .unwrap_or(0);
        // The first value that opens (under the current naming key first), as a token or
        // as a refusal (each sealed under associated data of its own), decides. An
        // oversized value decides nothing.
        for (names, raw) in key.names.iter().zip(values.iter().step_by(3)) {
            let Some(raw) = raw else { continue };
            if raw.len() > MAX_VALUE {
                self.oversized("token");
                continue;
            }
            if let Some(stored) = value::open(&self.config.keys, &key.aad, raw, tenant, scopes) {
                let fresh = stored.stamp > tombstone && usable(&stored.token);
                return Some(if fresh {
                    Found::Token(stored.token)
                } else {
                    Found::Nothing
                });
            }
            if let Some(stored) =
                value::open_refusal(&self.config.keys, &key.aad, raw, (tenant, client_id))
            {
                let fresh = stored.stamp > tombstone && now < stored.until;
                return Some(if fresh {
                    Found::Refusal(stored)
                } else {
                    Found::Nothing
                });
            }
            self.drop_unopenable(&names.value, raw, now).await;
        }
        Some(Found::Nothing)
    }

    /// A value that does not open (tampered, moved, malformed or sealed under a key no
    /// longer configured) is a miss, and goes (unless rewritten meanwhile) so nobody
    /// trips on it.
    async fn drop_unopenable(&self, name: &str, raw: &[u8], now: SystemTime) {
        self.counters.open_failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("a shared cache value failed to open; deleting it");
        let _ = self
            .call(now, name, self.store().delete_if(name, raw))
            .await;
    }

    /// The global tombstone (0 if none), or the last one read if it cannot be read now
    /// (in a cluster its slot's master may be down while the tenant's is up; nobody can
    /// write a newer one meanwhile without this replica's write failing too). `None`
    /// until it has been read once: until then a value cannot be trusted.
    ///
    /// A value that does not parse (or is oversized) reads as an invalidation at `now`:
    /// every value fetched before this read is a miss while it stands, and once it is
    /// gone, values fetched after it are served again (it is remembered as a time, not as
    /// "forever").
    async fn global_tombstone_now(&self, now: SystemTime) -> Option<u64> {
        let name = names::global_tombstone(&self.config.namespace);
        let read = self
            .call(
                now,
                &name,
                self.store().get_many_bounded(&[&name], MAX_TOMBSTONE + 1),
            )
            .await;
        match read {
            Some(values) => {
                let at = match values.first().and_then(Option::as_ref) {
                    None => 0,
                    Some(v) => {
                        if v.len() > MAX_TOMBSTONE {
                            self.oversized("global tombstone");
                        }
                        match value::read_tombstone(v) {
                            u64::MAX => millis(now),
                            at => at,
                        }
                    }
                };
                self.global
                    .fetch_max(at.saturating_add(1), Ordering::AcqRel);
            }
            None => {
                tracing::debug!("the global tombstone could not be read; using the last one read")
            }
        }
        self.global.load(Ordering::Acquire).checked_sub(1)
    }

    /// Stores `token` for the other replicas, stamped with `stamp` (when the request that
    /// fetched it started), until it expires.
    pub(crate) async fn put(
        &self,
        key: &L2Key,
        token: &AccessToken,
        stamp: SystemTime,
        now: SystemTime,
    ) {
        let ttl = token
            .expires_on()
            .duration_since(now)
            .unwrap_or_default()
            .min(LONGEST_VALUE);
        if ttl.is_zero() {
            return;
        }
        let Some(sealed) = value::seal(&self.config.keys, &key.aad, token, stamp) else {
            return;
        };
        let name = &key.current().value;
        let _ = self
            .call(now, name, self.store().put(name, &sealed, ttl))
            .await;
    }

    /// Stores the tenant's refusal `error` for the other replicas, learned at `learned`
    /// and remembered until `until`, stamped with `stamp` (when the refused request
    /// started).
    pub(crate) async fn put_refusal(
        &self,
        key: &L2Key,
        error: &Error,
        (learned, until): (SystemTime, SystemTime),
        stamp: SystemTime,
    ) {
        let ttl = until.duration_since(learned).unwrap_or_default();
        if ttl.is_zero() {
            return;
        }
        let Some(sealed) =
            value::seal_refusal(&self.config.keys, &key.aad, error, (learned, until), stamp)
        else {
            return;
        };
        // Under the token's own name: a refusal replaces the token and a token the refusal.
        let name = &key.current().value;
        let op = self.store().put(name, &sealed, ttl.min(LONGEST_VALUE));
        let _ = self.call(learned, name, op).await;
    }

    /// Asks for the entry's lease (cross-replica single flight).
    pub(crate) async fn lease(&self, key: &L2Key, now: SystemTime) -> Lease {
        let Some(wait) = self.config.lease_wait else {
            return Lease::Unavailable;
        };
        let mut bytes = [0u8; 16];
        if SystemRandom::new().fill(&mut bytes).is_err() {
            return Lease::Unavailable;
        }
        let mut holder = String::with_capacity(32);
        names::push_hex(&mut holder, &bytes);
        let op = self
            .store()
            .try_lease(&key.current().lease, holder.as_bytes(), wait * 2);
        match self.call(now, &key.current().lease, op).await {
            Some(true) => Lease::Held(holder),
            Some(false) => Lease::Busy,
            None => Lease::Unavailable,
        }
    }

    /// Gives up a lease this replica holds (never one another replica took since).
    pub(crate) async fn release(&self, key: &L2Key, holder: &str, now: SystemTime) {
        let op = self
            .store()
            .delete_if(&key.current().lease, holder.as_bytes());
        let _ = self.call(now, &key.current().lease, op).await;
    }
}

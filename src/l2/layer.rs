//! [`L2`]: a [`SharedCache`] in use. Every call is bounded by the timeout and counted by
//! the circuit breaker; values are sealed and stamped; reads honour tombstones; leases
//! are released only by their holder.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use super::SharedCache;
use super::health::{Gate, Health};
use super::invalidate::Pending;
use super::names::{self, L2Key};
use super::store::{L2Error, L2Store};
use super::value::{self, StoredRefusal};
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
}

/// What background probes share with calls.
pub(super) struct State {
    pub(super) health: Health,
    pub(super) pending: Mutex<Pending>,
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
            }),
            global: AtomicU64::new(0),
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

    /// Runs `op` under the timeout if the breaker lets it; `None` on skip or failure.
    async fn call<T>(
        &self,
        now: SystemTime,
        op: impl Future<Output = Result<T, L2Error>>,
    ) -> Option<T> {
        match self.state.health.gate(now) {
            Gate::Call => self.run(now, op).await,
            Gate::Skip => None,
            Gate::Probe => {
                self.spawn_probe(now);
                None
            }
        }
    }

    pub(super) async fn run<T>(
        &self,
        now: SystemTime,
        op: impl Future<Output = Result<T, L2Error>>,
    ) -> Option<T> {
        let timeout = self.config.timeout;
        let result = tokio::time::timeout(timeout, op)
            .await
            .unwrap_or_else(|_| Err(L2Error::new(format!("no answer within {timeout:?}"))));
        match result {
            Ok(v) => {
                self.state.health.succeeded();
                Some(v)
            }
            Err(e) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "shared token cache call failed; treating it as a miss");
                if self.state.health.failed(now) {
                    tracing::warn!(
                        probe_every_ms = self.config.probe_every.as_millis() as u64,
                        "skipping the shared token cache until a probe reaches it"
                    );
                }
                None
            }
        }
    }

    /// Pings (and so reconnects) the store in the background, writes pending
    /// invalidations, and closes the breaker if both worked.
    fn spawn_probe(&self, started: SystemTime) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.state.health.probed(false, started);
            return;
        };
        let store = self.config.store.clone();
        let state = self.state.clone();
        runtime.spawn(async move {
            let probe = async {
                store.ping().await?;
                state.flush(&*store).await
            };
            let ok = match tokio::time::timeout(PROBE_DEADLINE, probe).await {
                // An invalidation postponed while this probe ran waits for the next one.
                Ok(Ok(())) => state.nothing_pending(),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "shared token cache still unavailable");
                    false
                }
                Err(_) => false,
            };
            if ok {
                tracing::info!("shared token cache reachable again; using it");
            }
            state.health.probed(ok, started);
        });
    }

    /// What L2 holds for the entry: a token that `usable` accepts, a refusal still in its
    /// window, or nothing usable; `None` when L2 did not answer (skipped, failed, or the
    /// global tombstone was never read). A value or refusal stamped at or before its own,
    /// its tenant's or the global tombstone was fetched before an invalidation: a miss.
    /// When both a token and a refusal are usable, the later one (by stamp) wins.
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
        // (value, refusal, tenant tombstone, entry tombstone) per naming key: one slot,
        // one command. The global tombstone lives in a slot of its own; both commands
        // share one round trip.
        let mut wanted: Vec<&str> = Vec::with_capacity(4 * key.names.len());
        for n in &key.names {
            wanted.extend([
                n.value.as_str(),
                &n.refusal,
                &n.tenant_tombstone,
                &n.tombstone,
            ]);
        }
        let (values, global) = futures_util::future::join(
            self.call(now, self.store().get_many(&wanted)),
            self.global_tombstone_now(),
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
            .chunks(4)
            .flat_map(|c| &c[2..])
            .flatten()
            .map(|t| value::read_tombstone(t))
            .chain(Some(global?))
            .max()
            .unwrap_or(0);
        // The first value that opens decides about tokens (under the current naming key
        // first), and likewise for refusals.
        let mut token: Option<Option<value::Stored>> = None;
        let mut refusal: Option<Option<StoredRefusal>> = None;
        for (names, chunk) in key.names.iter().zip(values.chunks(4)) {
            if token.is_none()
                && let Some(raw) = &chunk[0]
            {
                match value::open(&self.config.keys, &key.aad, raw, tenant, scopes) {
                    Some(stored) => {
                        let fresh = stored.stamp > tombstone && usable(&stored.token);
                        token = Some(fresh.then_some(stored));
                    }
                    None => self.drop_unopenable(&names.value, raw, now).await,
                }
            }
            if refusal.is_none()
                && let Some(raw) = &chunk[1]
            {
                let opened =
                    value::open_refusal(&self.config.keys, &key.aad, raw, (tenant, client_id));
                match opened {
                    Some(stored) => {
                        let fresh = stored.stamp > tombstone && now < stored.until;
                        refusal = Some(fresh.then_some(stored));
                    }
                    None => self.drop_unopenable(&names.refusal, raw, now).await,
                }
            }
        }
        Some(match (token.flatten(), refusal.flatten()) {
            (Some(t), Some(r)) if r.stamp > t.stamp => Found::Refusal(r),
            (Some(t), _) => Found::Token(t.token),
            (None, Some(r)) => Found::Refusal(r),
            (None, None) => Found::Nothing,
        })
    }

    /// A value that does not open (tampered, moved, malformed or sealed under a key no
    /// longer configured) is a miss, and goes (unless rewritten meanwhile) so nobody
    /// trips on it.
    async fn drop_unopenable(&self, name: &str, raw: &[u8], now: SystemTime) {
        self.counters.open_failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("a shared cache value failed to open; deleting it");
        let _ = self.call(now, self.store().delete_if(name, raw)).await;
    }

    /// The global tombstone (0 if none), or the last one read if it cannot be read now
    /// (in a cluster its slot's master may be down while the tenant's is up; nobody can
    /// write a newer one meanwhile without this replica's write failing too). `None`
    /// until it has been read once: until then a value cannot be trusted.
    async fn global_tombstone_now(&self) -> Option<u64> {
        if self.state.health.is_open() {
            return None;
        }
        let name = names::global_tombstone(&self.config.namespace);
        let read = tokio::time::timeout(self.config.timeout, self.store().get_many(&[&name])).await;
        match read {
            Ok(Ok(values)) => {
                let at = values
                    .first()
                    .and_then(Option::as_ref)
                    .map_or(0, |v| value::read_tombstone(v));
                self.global
                    .fetch_max(at.saturating_add(1), Ordering::AcqRel);
            }
            _ => tracing::debug!("the global tombstone could not be read; using the last one read"),
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
        let _ = self
            .call(now, self.store().put(&key.current().value, &sealed, ttl))
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
        let op = self
            .store()
            .put(&key.current().refusal, &sealed, ttl.min(LONGEST_VALUE));
        let _ = self.call(learned, op).await;
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
        match self.call(now, op).await {
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
        let _ = self.call(now, op).await;
    }
}

//! [`TenantHealthMonitor`]: tenants report their own health. Each token error that says
//! something about a tenant (not consented, gone, app disabled, blocked by Conditional
//! Access) is written to its registry record, and a success after one clears it; one
//! write per tenant per change, however many calls see it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::fleet::HealthChange;
use super::{TenantCondition, TenantHealth, TenantRegistry};
use crate::clock::{SharedClock, SystemClock};
use crate::error::Error;
use crate::provider::TenantCredentialProvider;
use crate::tenant::TenantId;
use crate::token::AccessToken;

/// How long one registry read or write of the monitor may take.
const REGISTRY_DEADLINE: Duration = Duration::from_secs(10);
/// After a failed registry write, how long observations of that tenant wait before one
/// tries again (a database that is down is not hammered once per token call).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);
/// Most changes the monitor remembers for [`FleetReport`](crate::FleetReport)s.
const MAX_CHANGES: usize = 10_000;

/// Keeps each tenant's [`health`](crate::TenantRecord::health) in the registry true,
/// from what its token requests answer. Share it behind an `Arc` or clone it (clones
/// share everything).
///
/// - Feed it every token result: wrap the provider with [`watch`](Self::watch) (then every
///   `get_token` reports), and/or drive the daemon with
///   [`for_each_active`](Self::for_each_active), which reports each tenant's result and
///   lists what changed.
/// - A tenant-level error ([`TenantCondition::of`]: not consented or consent revoked,
///   tenant gone, app disabled, blocked by Conditional Access) sets the record's health
///   (condition, when, the error's text, AADSTS code, trace id); a success clears it.
///   Errors about the app's credential, one resource, throttling or the network say
///   nothing about the tenant and change nothing.
/// - **Bounded writes.** At most one registry write per tenant per change of condition:
///   a hundred calls failing together write once, and a tenant that stays broken (or
///   healthy) costs no write at all; a tenant's first report reads its record once. The
///   write happens in the call that saw the change, under a 10 s deadline; no lock is held
///   across it. If it fails (database down) it is logged, and retried by a later report
///   after 30 s at the earliest.
/// - Whatever sits below it (a [`Cached`](crate::Cached) that remembers negative answers,
///   or none) does not matter: the monitor compares conditions, so an error served again
///   from a cache is no change.
///
/// ```
/// use std::sync::Arc;
/// use azure_cross_tenant::{Cached, ClientSecret, InMemoryRegistry, TenantHealthMonitor};
///
/// let registry = Arc::new(InMemoryRegistry::new());
/// let health = TenantHealthMonitor::new(registry.clone());
/// let provider = health.watch(Cached::new(
///     ClientSecret::new("11111111-2222-3333-4444-555555555555", "secret").build()?,
/// ));
/// // provider.get_token(..) as usual; tenants that lose consent are marked in `registry`.
/// # let _ = provider;
/// # Ok::<(), azure_cross_tenant::Error>(())
/// ```
#[derive(Clone)]
pub struct TenantHealthMonitor {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) registry: Arc<dyn TenantRegistry>,
    clock: SharedClock,
    /// Per tenant: what the registry holds and what was seen last. A std lock, never held
    /// across an await.
    slots: Mutex<HashMap<TenantId, Slot>>,
    changes: Mutex<ChangeLog>,
}

#[derive(Default)]
struct ChangeLog {
    /// Sequence number of `entries[0]`.
    first: u64,
    entries: std::collections::VecDeque<HealthChange>,
}

#[derive(Default)]
struct Slot {
    /// What the registry holds, once known: `Some(None)` healthy, `Some(Some(c))` marked.
    stored: Option<Option<TenantCondition>>,
    /// Whether the registry has a record for the tenant at all (unknown tenants get no
    /// writes).
    in_registry: bool,
    /// The latest observation not yet reconciled with `stored`.
    desired: Option<Option<TenantHealth>>,
    /// A call is reconciling this tenant now; the others leave their observation here.
    worker: bool,
    /// No new write attempt before this (Unix seconds), after a failed one.
    retry_at: u64,
}

impl fmt::Debug for TenantHealthMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantHealthMonitor")
            .field("registry", &self.inner.registry)
            .finish_non_exhaustive()
    }
}

impl TenantHealthMonitor {
    /// A monitor writing to `registry`, on the system clock.
    pub fn new(registry: Arc<dyn TenantRegistry>) -> Self {
        Self::with_clock(registry, Arc::new(SystemClock))
    }

    /// A monitor on `clock` (the time written as each health's `since`).
    pub fn with_clock(registry: Arc<dyn TenantRegistry>, clock: Arc<dyn crate::Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                registry,
                clock,
                slots: Mutex::new(HashMap::new()),
                changes: Mutex::new(ChangeLog::default()),
            }),
        }
    }

    /// The registry it writes to.
    pub fn registry(&self) -> &Arc<dyn TenantRegistry> {
        &self.inner.registry
    }

    /// `provider`, reporting every token result to this monitor.
    pub fn watch<P: TenantCredentialProvider>(&self, provider: P) -> Watched<P> {
        Watched {
            provider,
            monitor: self.clone(),
        }
    }

    /// Reports a token request's outcome for `tenant`: a success clears a marked record,
    /// a tenant-level error marks it (once per change), anything else is ignored.
    pub async fn report<T>(&self, tenant: &TenantId, outcome: Result<&T, &Error>) {
        let desired = match outcome {
            Ok(_) => None,
            Err(e) => match TenantHealth::from_error(e, self.inner.clock.now()) {
                Some(health) => Some(health),
                None => return,
            },
        };
        self.inner.observe(tenant, desired).await;
    }

    /// What the registry holds for tenants just listed, so a round reads nothing again.
    pub(super) fn seed(&self, records: &[super::TenantRecord]) {
        let mut slots = self.inner.lock_slots();
        for record in records {
            let slot = slots.entry(record.tenant.clone()).or_default();
            if !slot.worker {
                slot.stored = Some(record.condition());
                slot.in_registry = true;
            }
        }
    }

    /// A mark in the change log; [`changes_since`](Self::changes_since) returns what came after.
    pub(super) fn change_mark(&self) -> u64 {
        let log = self.inner.changes.lock().unwrap_or_else(|p| p.into_inner());
        log.first + log.entries.len() as u64
    }

    pub(super) fn changes_since(&self, mark: u64) -> Vec<HealthChange> {
        let log = self.inner.changes.lock().unwrap_or_else(|p| p.into_inner());
        let skip = mark.saturating_sub(log.first) as usize;
        log.entries.iter().skip(skip).cloned().collect()
    }
}

impl Inner {
    fn lock_slots(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_secs(&self) -> u64 {
        crate::clock::unix_secs(self.clock.now())
    }

    async fn observe(&self, tenant: &TenantId, desired: Option<TenantHealth>) {
        let condition = desired.as_ref().map(|h| h.condition);
        {
            let mut slots = self.lock_slots();
            let slot = slots.entry(tenant.clone()).or_default();
            let settled = slot.desired.is_none() && slot.stored.is_some();
            if settled && (!slot.in_registry || slot.stored == Some(condition)) {
                return; // nothing changed: no write, no read
            }
            slot.desired = Some(desired);
            if slot.worker || slot.retry_at > self.now_secs() {
                return; // the call reconciling it will see this, or a later one will
            }
            slot.worker = true;
        }
        let mut guard = WorkerGuard {
            inner: self,
            tenant,
            armed: true,
        };
        self.reconcile(tenant).await;
        guard.armed = false;
    }

    /// Brings the registry in line with the latest observation, until nothing is left.
    async fn reconcile(&self, tenant: &TenantId) {
        loop {
            let (stored, in_registry, desired) = {
                let mut slots = self.lock_slots();
                let slot = slots.entry(tenant.clone()).or_default();
                let Some(desired) = slot.desired.clone() else {
                    slot.worker = false;
                    return;
                };
                (slot.stored, slot.in_registry, desired)
            };
            let stored = match stored {
                Some(stored) => (stored, in_registry),
                None => match self.read(tenant).await {
                    Some(found) => {
                        let mut slots = self.lock_slots();
                        let slot = slots.entry(tenant.clone()).or_default();
                        slot.stored = Some(found.0);
                        slot.in_registry = found.1;
                        found
                    }
                    None => return self.give_up(tenant),
                },
            };
            let wanted = desired.as_ref().map(|h| h.condition);
            if !stored.1 || stored.0 == wanted {
                let mut slots = self.lock_slots();
                let slot = slots.entry(tenant.clone()).or_default();
                if slot
                    .desired
                    .as_ref()
                    .map(|d| d.as_ref().map(|h| h.condition))
                    == Some(wanted)
                {
                    slot.desired = None;
                }
                continue;
            }
            let written = tokio::time::timeout(
                REGISTRY_DEADLINE,
                self.registry.set_health(tenant, desired.clone()),
            )
            .await;
            match written {
                Ok(Ok(known)) => {
                    if known {
                        tracing::info!(
                            tenant = %tenant,
                            before = ?stored.0,
                            after = ?wanted,
                            trace_id = desired.as_ref().and_then(|h| h.trace_id.as_deref()).unwrap_or("-"),
                            "tenant health changed"
                        );
                        self.log_change(HealthChange {
                            tenant: tenant.clone(),
                            before: stored.0,
                            after: wanted,
                            health: desired.clone(),
                        });
                    }
                    let mut slots = self.lock_slots();
                    let slot = slots.entry(tenant.clone()).or_default();
                    slot.stored = Some(wanted);
                    slot.in_registry = known;
                }
                Ok(Err(e)) => {
                    tracing::warn!(tenant = %tenant, error = %e, "could not record the tenant's health in the registry; a later report retries");
                    return self.give_up(tenant);
                }
                Err(_) => {
                    tracing::warn!(tenant = %tenant, "recording the tenant's health in the registry timed out; a later report retries");
                    return self.give_up(tenant);
                }
            }
        }
    }

    /// The registry's view of `tenant`: (its condition, whether it has a record), or
    /// `None` when the registry cannot be read.
    async fn read(&self, tenant: &TenantId) -> Option<(Option<TenantCondition>, bool)> {
        match tokio::time::timeout(REGISTRY_DEADLINE, self.registry.get(tenant)).await {
            Ok(Ok(Some(record))) => Some((record.condition(), true)),
            Ok(Ok(None)) => Some((None, false)),
            Ok(Err(e)) => {
                tracing::warn!(tenant = %tenant, error = %e, "could not read the tenant's record for its health; a later report retries");
                None
            }
            Err(_) => {
                tracing::warn!(tenant = %tenant, "reading the tenant's record for its health timed out; a later report retries");
                None
            }
        }
    }

    /// Stops reconciling after a registry failure; a report after the pause tries again.
    fn give_up(&self, tenant: &TenantId) {
        let retry_at = self.now_secs() + RETRY_AFTER_FAILURE.as_secs();
        let mut slots = self.lock_slots();
        let slot = slots.entry(tenant.clone()).or_default();
        slot.worker = false;
        slot.retry_at = retry_at;
    }

    fn log_change(&self, change: HealthChange) {
        let mut log = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        if log.entries.len() >= MAX_CHANGES {
            log.entries.pop_front();
            log.first += 1;
        }
        log.entries.push_back(change);
    }
}

/// Frees the tenant for another worker if the reconciling call is dropped (its caller
/// gave up waiting) before it finished.
struct WorkerGuard<'a> {
    inner: &'a Inner,
    tenant: &'a TenantId,
    armed: bool,
}

impl Drop for WorkerGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut slots = self.inner.lock_slots();
            if let Some(slot) = slots.get_mut(self.tenant) {
                slot.worker = false;
            }
        }
    }
}

/// A provider whose every token result is reported to a [`TenantHealthMonitor`]; made
/// by [`TenantHealthMonitor::watch`]. Put it outside [`Cached`](crate::Cached) (it then
/// sees every call, at the cost of one map lookup when nothing changed) or inside it
/// (it then sees only the requests that reach Entra).
#[derive(Debug, Clone)]
pub struct Watched<P> {
    provider: P,
    monitor: TenantHealthMonitor,
}

impl<P> Watched<P> {
    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.provider
    }

    /// The monitor it reports to.
    pub fn monitor(&self) -> &TenantHealthMonitor {
        &self.monitor
    }
}

#[async_trait::async_trait]
impl<P: TenantCredentialProvider> TenantCredentialProvider for Watched<P> {
    fn client_id(&self) -> &str {
        self.provider.client_id()
    }

    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        let result = self.provider.get_token(tenant, scopes).await;
        self.monitor.report(tenant, result.as_ref()).await;
        result
    }

    fn authority_host(&self) -> &url::Url {
        self.provider.authority_host()
    }

    fn credential_stats(&self) -> Option<crate::CredentialStats> {
        self.provider.credential_stats()
    }
}

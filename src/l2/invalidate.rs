//! Invalidation in L2: deletes and tombstones written before `invalidate*` returns, and
//! what happens when L2 cannot take them: they are kept, this replica stops reading the
//! part of the store they belong to (a hash slot in a Redis Cluster, the whole store
//! otherwise), and they are written (by that part's probe, or in the background once the
//! store answers again) before this replica reads that part again. Each is forgotten
//! only once its own write succeeded.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use super::layer::{L2, LONGEST_VALUE, State};
use super::names::{self, L2Key};
use super::store::{L2Error, L2Store};
use super::value::{self, MAX_VALUE, millis};
use crate::scope::Scopes;
use crate::tenant::TenantId;
use crate::token::AccessToken;

/// Invalidations waiting for L2 to come back; beyond this they collapse into one global
/// tombstone (everything older is a miss: safe, and bounded).
const MAX_PENDING: usize = 10_000;

/// Invalidations that could not be written: L2 stays off for this replica until a probe
/// has written them.
#[derive(Default)]
pub(super) struct Pending {
    /// Tombstone name -> time (ms).
    tombstones: HashMap<String, u64>,
    /// Values to delete.
    deletions: HashSet<String>,
}

impl L2 {
    /// Writes the entry's tombstone and deletes its values (under every naming key): a
    /// token a request in flight now stores later (on any replica) was asked for before,
    /// and is a miss for every replica's reads, as for a tenant invalidation.
    pub(crate) async fn forget(&self, key: &L2Key, now: SystemTime) {
        let tombstones: Vec<String> = key.names.iter().map(|n| n.tombstone.clone()).collect();
        self.tombstone(&tombstones, now).await;
        self.delete_values(key, now).await;
    }

    /// Deletes the entry's values (under every naming key), or remembers to.
    async fn delete_values(&self, key: &L2Key, now: SystemTime) {
        for names in &key.names {
            if self
                .write(now, &names.value, self.store().delete(&names.value))
                .await
                .is_none()
            {
                self.postpone(now, &names.value, |p| {
                    p.deletions.insert(names.value.clone());
                });
            }
        }
    }

    /// Deletes the entry's value only while it holds `token` (after a resource refused
    /// that token): a newer token another replica stored stays.
    pub(crate) async fn forget_if(
        &self,
        key: &L2Key,
        (tenant, scopes): (&TenantId, &Scopes),
        token: &AccessToken,
        now: SystemTime,
    ) {
        let wanted: Vec<&str> = key.names.iter().map(|n| n.value.as_str()).collect();
        let read = self.store().get_many_bounded(&wanted, MAX_VALUE + 1);
        let Some(values) = self.write(now, wanted[0], read).await else {
            // Cannot tell what L2 holds: delete it once L2 is back (at worst, one fetch).
            return self.delete_values(key, now).await;
        };
        for (names, raw) in key.names.iter().zip(values) {
            let Some(raw) = raw else { continue };
            if raw.len() > MAX_VALUE {
                // Not a value this cache wrote (nor the refused token): leave it.
                continue;
            }
            let holds = value::open(&self.config.keys, &key.aad, &raw, tenant, scopes)
                .is_none_or(|stored| stored.token.secret() == token.secret());
            if holds {
                let _ = self
                    .write(
                        now,
                        &names.value,
                        self.store().delete_if(&names.value, &raw),
                    )
                    .await;
            }
        }
    }

    /// Writes tombstones at `now` under `names` (a tenant's, or the global one): every
    /// value fetched before is a miss for every replica from now on.
    pub(crate) async fn tombstone(&self, names: &[String], now: SystemTime) {
        if names.contains(&names::global_tombstone(&self.config.namespace)) {
            // This replica honours its own global invalidation even if its next read of
            // the global tombstone fails.
            self.global
                .fetch_max(millis(now).saturating_add(1), Ordering::AcqRel);
        }
        for name in names {
            let op = self.store().put_tombstone(name, millis(now), LONGEST_VALUE);
            if self.write(now, name, op).await.is_none() {
                self.postpone(now, name, |p| {
                    let t = p.tombstones.entry(name.clone()).or_default();
                    *t = (*t).max(millis(now));
                });
            }
        }
    }

    /// The names of `tenant`'s tombstone for the app (`authority`, `client_id`).
    pub(crate) fn tenant_tombstones(&self, app: (&str, &str), tenant: &TenantId) -> Vec<String> {
        names::tenant_tombstones(&self.config.keys, &self.config.namespace, app, tenant)
    }

    /// The global tombstone's name.
    pub(crate) fn global_tombstone(&self) -> Vec<String> {
        vec![names::global_tombstone(&self.config.namespace)]
    }

    /// An invalidation's write to the part of the store holding `key`: tried only while
    /// that part is believed up (a due probe of it is started otherwise); bounded by the
    /// timeout. `None` means it must be postponed.
    async fn write<T>(
        &self,
        now: SystemTime,
        key: &str,
        op: impl Future<Output = Result<T, L2Error>>,
    ) -> Option<T> {
        self.call(now, key, op).await
    }

    /// Remembers an invalidation of `key` that L2 did not take, and keeps this replica off
    /// the part of the store holding it until it is written there.
    fn postpone(&self, now: SystemTime, key: &str, record: impl FnOnce(&mut Pending)) {
        let mut parts = vec![self.store().partition(key)];
        {
            let mut pending = self.state.pending.lock().unwrap_or_else(|p| p.into_inner());
            record(&mut pending);
            self.state.maybe_pending.store(true, Ordering::Release);
            if pending.tombstones.len() + pending.deletions.len() > MAX_PENDING {
                // One global tombstone stands for them all; this replica honours it at once
                // (its reads elsewhere go on), the others once it is written.
                let global = names::global_tombstone(&self.config.namespace);
                parts.push(self.store().partition(&global));
                *pending = Pending::default();
                pending.tombstones.insert(global, millis(now));
                self.global
                    .fetch_max(millis(now).saturating_add(1), Ordering::AcqRel);
            }
        }
        tracing::warn!(
            "an invalidation could not reach the shared token cache; it is written when the \
             cache is reachable again, and this replica skips the part of the cache it \
             belongs to until then"
        );
        for part in parts {
            self.state.health.force_open(part, now);
        }
    }
}

impl State {
    pub(super) fn nothing_pending(&self) -> bool {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.tombstones.is_empty() && pending.deletions.is_empty()
    }

    /// Whether an invalidation of `part` of the store is still pending.
    pub(super) fn pending_in(&self, store: &dyn L2Store, part: u32) -> bool {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending
            .tombstones
            .keys()
            .chain(&pending.deletions)
            .any(|name| store.partition(name) == part)
    }

    /// Writes the pending invalidations, each bounded by `timeout`. Each is forgotten only
    /// once its own write succeeded (and only if no newer one replaced it meanwhile), so
    /// a flush cut short anywhere, by an error or by its caller's deadline, loses nothing.
    pub(super) async fn flush(
        &self,
        store: &dyn L2Store,
        timeout: Duration,
    ) -> Result<(), L2Error> {
        let (tombstones, deletions): (Vec<(String, u64)>, Vec<String>) = {
            let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            (
                pending
                    .tombstones
                    .iter()
                    .map(|(n, at)| (n.clone(), *at))
                    .collect(),
                pending.deletions.iter().cloned().collect(),
            )
        };
        let mut error = None;
        for (name, at) in tombstones {
            match bounded(timeout, store.put_tombstone(&name, at, LONGEST_VALUE)).await {
                Ok(()) => {
                    let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                    if pending.tombstones.get(&name) == Some(&at) {
                        pending.tombstones.remove(&name);
                    }
                }
                Err(e) => error = Some(e),
            }
        }
        for name in deletions {
            match bounded(timeout, store.delete(&name)).await {
                Ok(()) => {
                    let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                    pending.deletions.remove(&name);
                }
                Err(e) => error = Some(e),
            }
        }
        {
            let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if pending.tombstones.is_empty() && pending.deletions.is_empty() {
                self.maybe_pending.store(false, Ordering::Release);
            }
        }
        error.map_or(Ok(()), Err)
    }
}

/// `op`, or a timeout error after `timeout`.
async fn bounded<T>(
    timeout: Duration,
    op: impl Future<Output = Result<T, L2Error>>,
) -> Result<T, L2Error> {
    tokio::time::timeout(timeout, op)
        .await
        .unwrap_or_else(|_| Err(L2Error::new(format!("no answer within {timeout:?}"))))
}

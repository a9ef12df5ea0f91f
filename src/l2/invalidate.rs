//! Invalidation in L2: deletes and tombstones written before `invalidate*` returns, and
//! what happens when L2 cannot take them: they are kept, this replica stops reading L2,
//! and the next successful probe writes them before L2 is used again.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::layer::{L2, LONGEST_VALUE, State};
use super::names::{self, L2Key};
use super::store::{L2Error, L2Store};
use super::value::{self, millis};
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
    /// Writes the entry's tombstone and deletes its values and refusals (under every
    /// naming key): a token or refusal a request in flight now stores later (on any
    /// replica) was asked for before, and is a miss for every replica's reads, as for a
    /// tenant invalidation.
    pub(crate) async fn forget(&self, key: &L2Key, now: SystemTime) {
        let tombstones: Vec<String> = key.names.iter().map(|n| n.tombstone.clone()).collect();
        self.tombstone(&tombstones, now).await;
        self.delete_values(key, now).await;
    }

    /// Deletes the entry's values and refusals (under every naming key), or remembers to.
    async fn delete_values(&self, key: &L2Key, now: SystemTime) {
        for names in &key.names {
            for name in [&names.value, &names.refusal] {
                if self.write(now, self.store().delete(name)).await.is_none() {
                    self.postpone(now, |p| {
                        p.deletions.insert(name.clone());
                    });
                }
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
        let Some(values) = self.write(now, self.store().get_many(&wanted)).await else {
            // Cannot tell what L2 holds: delete it once L2 is back (at worst, one fetch).
            return self.delete_values(key, now).await;
        };
        for (names, raw) in key.names.iter().zip(values) {
            let Some(raw) = raw else { continue };
            let holds = value::open(&self.config.keys, &key.aad, &raw, tenant, scopes)
                .is_none_or(|stored| stored.token.secret() == token.secret());
            if holds {
                let _ = self
                    .write(now, self.store().delete_if(&names.value, &raw))
                    .await;
            }
        }
    }

    /// Writes tombstones at `now` under `names` (a tenant's, or the global one): every
    /// value fetched before is a miss for every replica from now on.
    pub(crate) async fn tombstone(&self, names: &[String], now: SystemTime) {
        let at = value::tombstone(now);
        if names.contains(&names::global_tombstone(&self.config.namespace)) {
            // This replica honours its own global invalidation even if its next read of
            // the global tombstone fails.
            self.global
                .fetch_max(millis(now).saturating_add(1), Ordering::AcqRel);
        }
        for name in names {
            let op = self.store().put(name, &at, LONGEST_VALUE);
            if self.write(now, op).await.is_none() {
                self.postpone(now, |p| {
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

    /// An invalidation's write: tried even while the breaker is closed to reads only if
    /// the store is believed up; bounded by the timeout.
    async fn write<T>(
        &self,
        now: SystemTime,
        op: impl Future<Output = Result<T, L2Error>>,
    ) -> Option<T> {
        if self.state.health.is_open() {
            return None;
        }
        self.run(now, op).await
    }

    /// Remembers an invalidation L2 did not take, and keeps this replica off L2 until a
    /// probe has written it.
    fn postpone(&self, now: SystemTime, record: impl FnOnce(&mut Pending)) {
        {
            let mut pending = self.state.pending.lock().unwrap_or_else(|p| p.into_inner());
            record(&mut pending);
            if pending.tombstones.len() + pending.deletions.len() > MAX_PENDING {
                let global = names::global_tombstone(&self.config.namespace);
                *pending = Pending::default();
                pending.tombstones.insert(global, millis(now));
            }
        }
        tracing::warn!(
            "an invalidation could not reach the shared token cache; it is written when the \
             cache is reachable again, and this replica skips the cache until then"
        );
        self.state.health.force_open(now);
    }
}

impl State {
    pub(super) fn nothing_pending(&self) -> bool {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.tombstones.is_empty() && pending.deletions.is_empty()
    }

    /// Writes the pending invalidations; what fails stays pending.
    pub(super) async fn flush(&self, store: &dyn L2Store) -> Result<(), L2Error> {
        let work = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        let mut left = Pending::default();
        let mut error = None;
        for (name, at) in work.tombstones {
            let bytes = at.to_string().into_bytes();
            if let Err(e) = store.put(&name, &bytes, LONGEST_VALUE).await {
                left.tombstones.insert(name, at);
                error = Some(e);
            }
        }
        for name in work.deletions {
            if let Err(e) = store.delete(&name).await {
                left.deletions.insert(name);
                error = Some(e);
            }
        }
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for (name, at) in left.tombstones {
            let t = pending.tombstones.entry(name).or_default();
            *t = (*t).max(at);
        }
        pending.deletions.extend(left.deletions);
        error.map_or(Ok(()), Err)
    }
}

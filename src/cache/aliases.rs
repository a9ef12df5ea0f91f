//! [`Aliases`]: the GUID of each tenant asked for by one of its domains, so a tenant has
//! one cache identity (its GUID) whichever form a caller names: one entry, one refusal,
//! one tombstone.
//!
//! A domain's GUID comes from the provider before the first token (the credentials of
//! this crate read the tenant's OpenID metadata), else from the `tid` of the first token
//! asked by the domain. Hits by domain read it lock-free, without allocating; only a miss
//! (or an invalidation) may ask the provider.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use super::key::KeyHasher;
use crate::tenant::TenantId;

type Resolution = Arc<tokio::sync::OnceCell<()>>;

pub(super) struct Aliases {
    /// Domain -> GUID.
    guids: papaya::HashMap<TenantId, TenantId, KeyHasher>,
    /// Domains the provider could not resolve, and until when not to ask it again.
    unresolved: Mutex<HashMap<TenantId, SystemTime>>,
    /// Resolutions in progress, one per domain, however many callers miss on it.
    resolving: Mutex<HashMap<TenantId, Resolution>>,
    /// Most domains remembered; past it the memory starts over (and is learned again).
    cap: usize,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Aliases {
    pub(super) fn new(cap: u64) -> Self {
        Self {
            guids: papaya::HashMap::builder()
                .hasher(KeyHasher::default())
                .build(),
            unresolved: Mutex::new(HashMap::new()),
            resolving: Mutex::new(HashMap::new()),
            cap: usize::try_from(cap).unwrap_or(usize::MAX).max(16),
        }
    }

    /// The GUID of `domain`, if known: for a hit, under `guard` (no allocation).
    pub(super) fn guid<'g>(
        &self,
        domain: &TenantId,
        guard: &'g papaya::LocalGuard<'_>,
    ) -> Option<&'g TenantId> {
        self.guids.get(domain, guard)
    }

    pub(super) fn guard(&self) -> papaya::LocalGuard<'_> {
        self.guids.guard()
    }

    /// The GUID of `domain`, if known.
    pub(super) fn known(&self, domain: &TenantId) -> Option<TenantId> {
        self.guids.pin().get(domain).cloned()
    }

    /// `domain` belongs to the tenant `guid`.
    pub(super) fn learn(&self, domain: &TenantId, guid: &TenantId) {
        let guids = self.guids.pin();
        if guids.get(domain) == Some(guid) {
            return;
        }
        if guids.len() >= self.cap {
            guids.clear();
        }
        guids.insert(domain.clone(), guid.clone());
        locked(&self.unresolved).remove(domain);
    }

    /// Until when `domain` is not to be resolved again, if the provider could not.
    pub(super) fn unresolved_until(&self, domain: &TenantId) -> Option<SystemTime> {
        locked(&self.unresolved).get(domain).copied()
    }

    pub(super) fn unresolved(&self, domain: &TenantId, until: SystemTime) {
        let mut unresolved = locked(&self.unresolved);
        if unresolved.len() >= self.cap {
            unresolved.clear();
        }
        unresolved.insert(domain.clone(), until);
    }

    /// The domains known to belong to the tenant `guid`.
    pub(super) fn domains_of(&self, guid: &TenantId) -> Vec<TenantId> {
        self.guids
            .pin()
            .iter()
            .filter(|(_, g)| *g == guid)
            .map(|(d, _)| d.clone())
            .collect()
    }

    /// The resolution of `domain` in progress, or a new one: its first caller runs it.
    pub(super) fn join(&self, domain: &TenantId) -> Resolution {
        locked(&self.resolving)
            .entry(domain.clone())
            .or_default()
            .clone()
    }

    /// Called once `resolution` has run: later misses look at what it learned.
    pub(super) fn leave(&self, domain: &TenantId, resolution: &Resolution) {
        let mut resolving = locked(&self.resolving);
        if resolving
            .get(domain)
            .is_some_and(|r| Arc::ptr_eq(r, resolution))
        {
            resolving.remove(domain);
        }
    }
}

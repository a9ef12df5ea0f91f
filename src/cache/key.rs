//! The cache key, owned and borrowed, the hasher both go through, and the scope interner
//! that lets every key of one resource share its text.

use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use moka::Equivalent;

use crate::scope::Scopes;
use crate::tenant::TenantId;

/// A keyed (per-process random seed) fast hasher: SipHash was a fifth of a hit's cost.
pub(super) type KeyHasher = foldhash::fast::RandomState;

/// The cache key: (tenant, scope). The authority host and client id, the other half of
/// the full key, are fixed for one `Cached` (it wraps one provider), so they are checked
/// once at construction instead of hashed on every lookup.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Key {
    pub(super) tenant: TenantId,
    pub(super) scopes: Scopes,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_parts(self.tenant.as_str(), self.scopes.as_str(), state);
    }
}

fn hash_parts<H: Hasher>(tenant: &str, scope: &str, state: &mut H) {
    tenant.hash(state);
    scope.hash(state);
}

/// A borrowed key, so a hit allocates nothing. Hashes exactly like [`Key`].
pub(super) struct KeyRef<'a> {
    pub(super) tenant: &'a TenantId,
    pub(super) scope: &'a str,
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_parts(self.tenant.as_str(), self.scope, state);
    }
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        // `TenantId` equality checks for the same shared text first, so a caller that
        // reuses its `TenantId` values (the common case) never reads the key's copy.
        self.tenant == &key.tenant && self.scope == key.scopes.as_str()
    }
}

/// Scopes seen so far, so the keys of one resource share one copy of its text: a hit then
/// compares the caller's scope with text that is already in the CPU cache.
pub(super) struct ScopeInterner(Mutex<Vec<Scopes>>);

/// Apps use a handful of resources; past this many, new scopes are simply not shared.
const MAX_INTERNED: usize = 64;

impl ScopeInterner {
    pub(super) fn new() -> Self {
        Self(Mutex::new(Vec::new()))
    }

    /// `scope` (already normalized) as `Scopes`, shared with earlier keys when possible.
    pub(super) fn get(&self, scope: &str) -> Scopes {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = seen.iter().find(|s| s.as_str() == scope) {
            return s.clone();
        }
        let fresh = Scopes::from_normalized(scope);
        if seen.len() < MAX_INTERNED {
            seen.push(fresh.clone());
        }
        fresh
    }
}

//! The cache key, owned and borrowed, and the hasher both go through.

use std::hash::{Hash, Hasher};

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
        KeyRef {
            tenant: self.tenant.as_str(),
            scope: self.scopes.as_str(),
        }
        .hash(state);
    }
}

/// A borrowed key, so a hit allocates nothing. Hashes exactly like [`Key`].
#[derive(Hash)]
pub(super) struct KeyRef<'a> {
    pub(super) tenant: &'a str,
    pub(super) scope: &'a str,
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.tenant == key.tenant.as_str() && self.scope == key.scopes.as_str()
    }
}

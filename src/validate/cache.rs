//! The validated-token cache: a service sees the same token on every call for up to an
//! hour, and a full validation is an RSA verify. A hit costs a SHA-256 of the token and
//! a lookup instead.
//!
//! - Keyed by the SHA-256 of the token: the token itself is not kept.
//! - Only successful validations are stored; a rejection is never cached, so nothing an
//!   attacker sends can fill it (a forged token never gets past the signature).
//! - Bounded by entry count (moka evicts the least used).
//! - An entry is served only while the token's `exp` has not passed on the injected
//!   clock and the keys it was verified with are still the current fetch of its tenant
//!   (a refetch or rotation drops every entry verified with the old set).
//! - Every hit re-checks the caller's expectations and the lifetime, so a hit answers
//!   exactly what a full validation would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::SharedClock;
use crate::jwks::Generation;
use crate::jwt::Claims;

use super::expect::{Discovery, TokenVersion};

/// The SHA-256 of a token.
pub(super) type TokenHash = [u8; 32];

/// One successful validation.
pub(super) struct Entry {
    pub(super) claims: Claims,
    /// The checked `tid`, lower-case.
    pub(super) tid: String,
    pub(super) version: TokenVersion,
    /// The key source it was verified against; a hit must ask for the same.
    pub(super) discovery: Discovery,
    pub(super) generation: Generation,
    pub(super) exp: u64,
}

pub(super) struct ValidatedCache {
    entries: moka::sync::Cache<TokenHash, Arc<Entry>>,
}

impl ValidatedCache {
    pub(super) fn new(capacity: u64, clock: SharedClock) -> Self {
        let entries = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .expire_after(UntilExp { clock })
            .build();
        Self { entries }
    }

    pub(super) fn hash(token: &str) -> TokenHash {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut hash = [0; 32];
        hash.copy_from_slice(digest.as_ref());
        hash
    }

    /// The entry for `hash`, if its keys are still current and its `exp` has not passed
    /// at `now` (unix seconds). A stale entry is dropped.
    pub(super) fn get(&self, hash: &TokenHash, now: u64) -> Option<Arc<Entry>> {
        let entry = self.entries.get(hash)?;
        if now >= entry.exp || !entry.generation.is_current() {
            self.entries.invalidate(hash);
            return None;
        }
        Some(entry)
    }

    pub(super) fn insert(&self, hash: TokenHash, entry: Entry) {
        self.entries.insert(hash, Arc::new(entry));
    }
}

impl std::fmt::Debug for ValidatedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatedCache")
            .field("entries", &self.entries.entry_count())
            .field("capacity", &self.entries.policy().max_capacity())
            .finish()
    }
}

/// Frees an entry's memory once its token expires; whether it may be served is decided
/// on every hit against the injected clock (`ValidatedCache::get`).
struct UntilExp {
    clock: SharedClock,
}

impl UntilExp {
    fn remaining(&self, entry: &Entry) -> Option<Duration> {
        let now = crate::clock::unix_secs(self.clock.now());
        Some(Duration::from_secs(entry.exp.saturating_sub(now)))
    }
}

impl moka::Expiry<TokenHash, Arc<Entry>> for UntilExp {
    fn expire_after_create(
        &self,
        _key: &TokenHash,
        value: &Arc<Entry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        self.remaining(value)
    }

    fn expire_after_update(
        &self,
        _key: &TokenHash,
        value: &Arc<Entry>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        self.remaining(value)
    }
}

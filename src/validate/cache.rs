//! The validated-token cache: a service sees the same token on every call for up to an
//! hour, and a full validation is an RSA verify. A hit costs a lookup, a comparison and a
//! SHA-256 of the token's signature instead.
//!
//! - Looked up by a 64-bit fingerprint of the token's signature part (foldhash, keyed per
//!   cache at random), answered only when the token is the one validated: its signed part
//!   (header and claims) equal byte for byte to the one kept, and the SHA-256 of its
//!   signature equal to the one kept. A hit proves the same bytes were validated, and the
//!   token itself is not kept: without its signature, nothing kept can be presented as a
//!   token (the signed part says what the claims kept say). Hashing only the signature,
//!   a quarter of the token, keeps a hit near a twentieth of a full validation.
//! - A token is stored the second time it validates. The first success only writes its
//!   fingerprint into a small table (the doorkeeper of TinyLFU), so a token seen once
//!   (most are, in some services) costs a fingerprint and no SHA-256, allocation or insert,
//!   and a full validation with the cache on costs about what it costs with it off.
//! - Only successful validations count; a rejection is never cached nor remembered, so
//!   nothing an attacker sends can fill it (a forged token never gets past the signature).
//! - Bounded by entry count: past the capacity, entries whose token expired or whose keys
//!   were refetched go first, then arbitrary ones (the map's order), down to 7/8 of it.
//! - An entry is served only while the token's `exp` has not passed on the injected
//!   clock and the keys it was verified with are still the current fetch of its tenant
//!   (a refetch or rotation drops every entry verified with the old set).
//! - Every hit re-checks the caller's expectations and the lifetime, so a hit answers
//!   exactly what a full validation would.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::jwks::Generation;
use crate::jwt::Claims;

use super::expect::{Discovery, TokenVersion};

/// The SHA-256 of a token's signature part.
type SignatureHash = [u8; 32];

/// One successful validation.
pub(super) struct Entry {
    /// The token's header and claims as validated (base64url, with the dot between
    /// them): a hit must present the same bytes.
    signed: Box<str>,
    /// The SHA-256 of the token's signature part: a hit must present the same bytes
    /// there too, and the signature itself is not kept.
    signature: SignatureHash,
    pub(super) claims: Claims,
    /// The checked `tid`, lower-case.
    pub(super) tid: String,
    pub(super) version: TokenVersion,
    /// The key source it was verified against; a hit must ask for the same.
    pub(super) discovery: Discovery,
    pub(super) generation: Generation,
    pub(super) exp: u64,
}

/// What a successful validation leaves for [`ValidatedCache::remember`].
pub(super) struct Validated {
    pub(super) claims: Claims,
    pub(super) tid: String,
    pub(super) version: TokenVersion,
    pub(super) discovery: Discovery,
    pub(super) generation: Generation,
    pub(super) exp: u64,
}

/// A token's fingerprint: where to look, never proof of anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Fingerprint(u64);

pub(super) struct ValidatedCache {
    entries: papaya::HashMap<u64, Arc<Entry>, AlreadyHashed>,
    /// Fingerprints of tokens validated once, one per slot (a later one overwrites).
    seen: Box<[AtomicU64]>,
    fingerprints: foldhash::quality::RandomState,
    capacity: usize,
    /// One sweep at a time; the others go on (the map is briefly over its capacity).
    sweeping: Mutex<()>,
}

impl ValidatedCache {
    pub(super) fn new(capacity: u64) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
        // Two slots per entry the cache can hold: a token used again after as many other
        // first sights as the cache holds is still remembered, most of the time.
        let slots = capacity
            .saturating_mul(2)
            .clamp(64, 1 << 22)
            .next_power_of_two();
        Self {
            entries: papaya::HashMap::builder().hasher(AlreadyHashed).build(),
            seen: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            fingerprints: foldhash::quality::RandomState::default(),
            capacity,
            sweeping: Mutex::new(()),
        }
    }

    /// Where to look for `token`: a keyed hash of its signature part, a quarter of its
    /// length and as unique as the signed content. Tokens sharing a signature part but not
    /// their bytes (forged ones) only share a place: the comparison in `get` tells them apart.
    pub(super) fn fingerprint(&self, token: &str) -> Fingerprint {
        let signature = token.rsplit_once('.').map_or(token, |(_, s)| s);
        Fingerprint(self.fingerprints.hash_one(signature.as_bytes()))
    }

    /// The entry for `token` (found by `fingerprint`), if it validated the very same bytes,
    /// its keys are still current and its `exp` has not passed at `now` (unix seconds).
    /// A stale entry is dropped.
    pub(super) fn get(
        &self,
        token: &str,
        fingerprint: Fingerprint,
        now: u64,
    ) -> Option<Arc<Entry>> {
        // A JWT has a dot; text without one is never kept, nor answered.
        let (signed, signature) = token.rsplit_once('.')?;
        let entries = self.entries.pin();
        let entry = entries.get(&fingerprint.0)?.clone();
        if *entry.signed != *signed || entry.signature != sha256(signature) {
            return None;
        }
        if now >= entry.exp || !entry.generation.is_current() {
            // This entry only: another may have replaced it meanwhile.
            let _ = entries.remove_if(&fingerprint.0, |_, e| Arc::ptr_eq(e, &entry));
            return None;
        }
        Some(entry)
    }

    /// Remembers a successful validation of `token`: the first time only its
    /// fingerprint, the second time the entry.
    pub(super) fn remember(
        &self,
        token: &str,
        fingerprint: Fingerprint,
        now: u64,
        validated: impl FnOnce() -> Validated,
    ) {
        let Some((signed, signature)) = token.rsplit_once('.') else {
            return;
        };
        let slot = &self.seen[fingerprint.0 as usize & (self.seen.len() - 1)];
        if slot.swap(fingerprint.0, Ordering::Relaxed) != fingerprint.0 {
            return;
        }
        let v = validated();
        let entry = Arc::new(Entry {
            signed: signed.into(),
            signature: sha256(signature),
            claims: v.claims,
            tid: v.tid,
            version: v.version,
            discovery: v.discovery,
            generation: v.generation,
            exp: v.exp,
        });
        let entries = self.entries.pin();
        entries.insert(fingerprint.0, entry);
        if entries.len() > self.capacity {
            drop(entries);
            self.sweep(now);
        }
    }

    /// Brings the map under its capacity: expired and stale entries first, then
    /// arbitrary ones, down to 7/8 of it so that sweeps stay rare.
    fn sweep(&self, now: u64) {
        let Ok(_only_me) = self.sweeping.try_lock() else {
            return;
        };
        let entries = self.entries.pin();
        entries.retain(|_, e| now < e.exp && e.generation.is_current());
        let target = self.capacity - self.capacity / 8;
        let mut excess = entries.len().saturating_sub(target);
        if excess > 0 {
            entries.retain(|_, _| {
                let keep = excess == 0;
                excess = excess.saturating_sub(1);
                keep
            });
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

fn sha256(part: &str) -> SignatureHash {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, part.as_bytes());
    let mut hash = [0; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

impl std::fmt::Debug for ValidatedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatedCache")
            .field("entries", &self.entries.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// The map's keys are fingerprints, already keyed hashes: used as they are.
#[derive(Clone, Copy, Default)]
struct AlreadyHashed;

impl BuildHasher for AlreadyHashed {
    type Hasher = Passthrough;

    fn build_hasher(&self) -> Passthrough {
        Passthrough(0)
    }
}

struct Passthrough(u64);

impl Hasher for Passthrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the key is a `u64`); fold anything else in all the same.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000;
    /// A token's shape: header, claims, signature.
    const A: &str = "h.p.token-a";

    fn validated(generation: &Generation) -> Validated {
        Validated {
            claims: Claims::default(),
            tid: "t".into(),
            version: TokenVersion::V1,
            discovery: Discovery::default(),
            generation: generation.clone(),
            exp: NOW + 3600,
        }
    }

    #[test]
    fn a_token_is_kept_the_second_time_it_validates_and_served_the_third() {
        let (generation, _) = Generation::for_test();
        let cache = ValidatedCache::new(100);
        let fp = cache.fingerprint(A);
        assert!(cache.get(A, fp, NOW).is_none());
        cache.remember(A, fp, NOW, || {
            unreachable!("a first success stores nothing")
        });
        assert_eq!(cache.len(), 0);
        assert!(cache.get(A, fp, NOW).is_none());
        cache.remember(A, fp, NOW, || validated(&generation));
        assert_eq!(cache.len(), 1);
        assert!(cache.get(A, fp, NOW).is_some());
    }

    /// The fingerprint only says where to look: other bytes found under it (a collision,
    /// or a token altered to land there) are never answered.
    #[test]
    fn other_bytes_under_a_kept_fingerprint_are_never_answered() {
        let (generation, _) = Generation::for_test();
        let cache = ValidatedCache::new(100);
        let fp = cache.fingerprint(A);
        for _ in 0..2 {
            cache.remember(A, fp, NOW, || validated(&generation));
        }
        for other in [
            "h.p.token-b",
            "h.p.token-a ",
            "h.p.token-",
            "",
            "h.p.Token-a",
            "h.ptoken-a",
            "token-a",
            ".token-a",
            "h.p..token-a",
            "x.h.p.token-a",
        ] {
            assert!(cache.get(other, fp, NOW).is_none(), "{other:?}");
        }
        assert!(cache.get(A, fp, NOW).is_some(), "and kept");
        // Same signature part, other header or payload: same place, never the answer.
        assert_eq!(cache.fingerprint("h.p2.token-a"), fp);
        for forged in ["h.p2.token-a", "h2.p.token-a", "p.token-a", "h.p.x.token-a"] {
            assert!(cache.get(forged, fp, NOW).is_none(), "{forged:?}");
        }
    }

    /// Without a dot there is no signed part to compare: never kept, never answered.
    #[test]
    fn text_without_a_dot_is_never_kept() {
        let (generation, _) = Generation::for_test();
        let cache = ValidatedCache::new(100);
        let fp = cache.fingerprint("token-a");
        for _ in 0..3 {
            cache.remember("token-a", fp, NOW, || validated(&generation));
        }
        assert_eq!(cache.len(), 0);
        assert!(cache.get("token-a", fp, NOW).is_none());
    }

    #[test]
    fn an_expired_or_refetched_entry_is_not_served() {
        let (generation, refetch) = Generation::for_test();
        let cache = ValidatedCache::new(100);
        let fp = cache.fingerprint(A);
        for _ in 0..2 {
            cache.remember(A, fp, NOW, || validated(&generation));
        }
        assert!(cache.get(A, fp, NOW + 3600).is_none());
        for _ in 0..2 {
            cache.remember(A, fp, NOW, || validated(&generation));
        }
        refetch();
        assert!(cache.get(A, fp, NOW).is_none());
        assert_eq!(cache.len(), 0, "dropped");
    }

    #[test]
    fn the_entry_count_stays_within_the_capacity() {
        let (generation, _) = Generation::for_test();
        let cache = ValidatedCache::new(64);
        for i in 0..1_000 {
            let token = format!("h.p.token-{i}");
            let fp = cache.fingerprint(&token);
            for _ in 0..2 {
                cache.remember(&token, fp, NOW, || validated(&generation));
            }
            assert!(cache.len() <= 64, "{} after {i}", cache.len());
        }
        assert!(cache.len() >= 56, "{}", cache.len());
    }
}

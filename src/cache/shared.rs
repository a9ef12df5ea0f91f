//! The glue between [`Cached`] and the shared (L2) cache: where a miss or a refresh looks
//! in L2, takes or waits on a cross-replica lease, stores what it fetched (a token, or the
//! tenant's refusal), and what invalidation writes there.

use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::Cached;
use super::entry::Entry;
use super::key::Key;
use super::refusal::Refusal;
use super::stats::CacheStats;
use crate::error::Error;
use crate::l2::{Found, L2Counters, L2Key, Lease};
use crate::provider::TenantCredentialProvider;
use crate::tenant::TenantId;
use crate::token::AccessToken;

/// When a replica waiting on another's lease first looks for its token in L2 (plus up to
/// as much again, spread by key); each later look waits half as long again, up to
/// [`LEASE_POLL_MAX`]. A cold fleet has a waiter per replica per key: a fixed 20 ms poll
/// made 1,400 waiters send 70,000 reads a second, enough to time out Redis's own answers
/// (and the lease holder's) on two cores, and the waiters then asked Entra themselves.
const LEASE_POLL: Duration = Duration::from_millis(10);
/// The longest pause between two looks: the most a waiter's token lags behind the
/// holder's store.
const LEASE_POLL_MAX: Duration = Duration::from_millis(100);

/// What a miss found in L2 before asking the provider.
pub(super) enum Shared {
    /// A token, as an entry for L1.
    Token(Arc<Entry>),
    /// The tenant's refusal, still in its window.
    Refusal(Arc<Refusal>),
    /// Nothing to serve: ask the provider. `answered` is false when there is no L2 or it
    /// did not answer (then this replica's own memory of refusals speaks instead).
    Nothing { answered: bool },
}

/// One miss's or refresh's place in L2: the entry's names, the lease this replica holds
/// (released after the fetch), and when its token request started (the stamp of what it
/// stores, compared with tombstones by every reader).
pub(super) struct SharedSlot {
    key: L2Key,
    lease: Mutex<Option<String>>,
    fetch_started: Mutex<Option<SystemTime>>,
}

impl SharedSlot {
    fn set_fetch_started(&self, at: SystemTime) {
        *self.fetch_started.lock().unwrap_or_else(|p| p.into_inner()) = Some(at);
    }

    fn fetch_started(&self) -> Option<SystemTime> {
        *self.fetch_started.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take_lease(&self) -> Option<String> {
        self.lease.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl<P: TenantCredentialProvider + 'static> Cached<P> {
    /// (authority, client id): the app every key of this cache belongs to.
    fn app(&self) -> (&str, &str) {
        let provider = &self.inner.provider;
        (provider.authority_host().as_str(), provider.client_id())
    }

    /// `key`'s place in L2, when there is an L2.
    pub(super) fn shared_key(&self, key: &Key) -> Option<SharedSlot> {
        let l2 = self.inner.l2.as_ref()?;
        Some(SharedSlot {
            key: l2.key(self.app(), &key.tenant, &key.scopes),
            lease: Mutex::new(None),
            fetch_started: Mutex::new(None),
        })
    }

    /// What L2 holds for `key`: a token (as an entry) with at least the expiry margin of
    /// its whole lifetime left (the same test as an L1 hit), a refusal still in its
    /// window, or nothing; `None` when L2 did not answer.
    async fn look_in_l2(&self, key: &Key, slot: &SharedSlot, hash: u64) -> Option<Shared> {
        let inner = &self.inner;
        let l2 = inner.l2.as_ref()?;
        let now = inner.options.clock.now();
        let (options, spread) = (&inner.options, self.spread(hash));
        let usable = |t: &AccessToken| Entry::new(t.clone(), now, options, spread).usable(now);
        let client_id = inner.provider.client_id();
        let found = l2
            .get(
                &slot.key,
                (&key.tenant, &key.scopes, client_id),
                now,
                usable,
            )
            .await?;
        Some(match found {
            Found::Token(token) => Shared::Token(Arc::new(Entry::new(token, now, options, spread))),
            Found::Refusal(r) => {
                Shared::Refusal(Arc::new(Refusal::until(r.error, r.learned, r.until, now)))
            }
            Found::Nothing => Shared::Nothing { answered: true },
        })
    }

    /// On a miss, before asking the provider: a token or refusal from L2, or one another
    /// replica fetched while this one waited on its lease. The caller inserts it in L1.
    pub(super) async fn shared_before_fetch(
        &self,
        key: &Key,
        slot: Option<&SharedSlot>,
        hash: u64,
        now: SystemTime,
    ) -> Shared {
        let unanswered = Shared::Nothing { answered: false };
        let (Some(l2), Some(slot)) = (self.inner.l2.as_ref(), slot) else {
            return unanswered;
        };
        match self.look_in_l2(key, slot, hash).await {
            Some(Shared::Nothing { .. }) => {}
            Some(found) => return found,
            // L2 did not answer: a refusal this replica remembers speaks instead. Without
            // one, still try the lease, as a part of the store that just came back (or a
            // connection still being built) may take it.
            None if self.remembered_refusal(key, now).is_some() => return unanswered,
            None => {}
        }
        match l2.lease(&slot.key, now).await {
            Lease::Held(holder) => {
                *slot.lease.lock().unwrap_or_else(|p| p.into_inner()) = Some(holder);
                // The previous holder may have stored its answer and released the lease
                // between our lookup and our lease: look once more.
                match self.look_in_l2(key, slot, hash).await {
                    Some(Shared::Nothing { .. }) | None => {}
                    Some(found) => {
                        if let Some(holder) = slot.take_lease() {
                            l2.release(&slot.key, &holder, now).await;
                        }
                        return found;
                    }
                }
            }
            Lease::Busy => {
                if let Some(found) = self.wait_for_peer(key, slot, hash).await {
                    return found;
                }
            }
            Lease::Unavailable => {}
        }
        slot.set_fetch_started(self.inner.options.clock.now());
        Shared::Nothing { answered: true }
    }

    /// Another replica holds the lease: look for its token (or the refusal it got) in L2,
    /// at growing intervals ([`LEASE_POLL`] to [`LEASE_POLL_MAX`]), until `lease_wait`
    /// has passed on the cache's clock or been slept through, so the wait is bounded
    /// whatever the clock and sleeper do. The lease is the other replica's: this one
    /// never releases it.
    async fn wait_for_peer(&self, key: &Key, slot: &SharedSlot, hash: u64) -> Option<Shared> {
        let l2 = self.inner.l2.as_ref()?;
        let wait = l2.config.lease_wait?;
        let clock = &self.inner.options.clock;
        let deadline = clock.now() + wait;
        // Waiters of one key, started together, do not look together.
        let spread = u32::try_from(hash % 1000).unwrap_or(0);
        let mut pause = LEASE_POLL + LEASE_POLL.mul_f64(f64::from(spread) / 1000.0);
        let mut slept = Duration::ZERO;
        loop {
            l2.config.sleeper.sleep(pause).await;
            slept += pause;
            match self.look_in_l2(key, slot, hash).await {
                Some(Shared::Nothing { .. }) | None => {}
                Some(found) => return Some(found),
            }
            if clock.now() >= deadline || slept >= wait {
                return None;
            }
            pause = pause.mul_f64(1.5).min(LEASE_POLL_MAX).min(wait - slept);
        }
    }

    /// On a miss, after asking the provider: store the token (under `learned`'s names
    /// when the token named a GUID the key did not) or the tenant's refusal for the
    /// other replicas, and give up the lease if this replica holds it.
    pub(super) async fn shared_after_fetch(
        &self,
        slot: Option<&SharedSlot>,
        learned: Option<&SharedSlot>,
        fetched: Result<&AccessToken, &Error>,
        refusal: Option<&Refusal>,
    ) {
        let (Some(l2), Some(slot)) = (&self.inner.l2, slot) else {
            return;
        };
        let now = self.inner.options.clock.now();
        let stamp = slot.fetch_started().unwrap_or(now);
        match (fetched, refusal) {
            (Ok(token), _) => {
                let target = learned.unwrap_or(slot);
                l2.put(&target.key, token, stamp, now).await;
            }
            (Err(error), Some(refusal)) => {
                l2.put_refusal(&slot.key, error, (refusal.learned, refusal.until), stamp)
                    .await;
            }
            (Err(_), None) => {}
        }
        if let Some(holder) = slot.take_lease() {
            l2.release(&slot.key, &holder, now).await;
        }
    }

    /// On a refresh: a token in L2 newer than `old` (another replica refreshed already).
    pub(super) async fn shared_newer(
        &self,
        key: &Key,
        slot: Option<&SharedSlot>,
        old: &Entry,
    ) -> Option<Arc<Entry>> {
        let slot = slot?;
        let newer = match self
            .look_in_l2(key, slot, self.inner.hasher.hash_one(key))
            .await
        {
            Some(Shared::Token(entry)) => {
                Some(entry).filter(|e| e.token.expires_on() > old.token.expires_on())
            }
            _ => None,
        };
        if newer.is_none() {
            slot.set_fetch_started(self.inner.options.clock.now());
        }
        newer
    }

    /// On a refresh: store the fetched token for the other replicas.
    pub(super) async fn shared_put(
        &self,
        slot: Option<&SharedSlot>,
        fetched: &Result<AccessToken, Error>,
    ) {
        if let (Ok(token), Some(l2), Some(slot)) = (fetched, &self.inner.l2, slot) {
            let now = self.inner.options.clock.now();
            l2.put(&slot.key, token, slot.fetch_started().unwrap_or(now), now)
                .await;
        }
    }

    /// Invalidation of one entry: its L2 value is deleted before this returns.
    pub(super) async fn shared_forget(&self, key: &Key) {
        if let Some(l2) = &self.inner.l2 {
            let names = l2.key(self.app(), &key.tenant, &key.scopes);
            l2.forget(&names, self.inner.options.clock.now()).await;
        }
    }

    /// Invalidation of one entry while it still holds `token`: the L2 value goes only if
    /// it is that token (a newer one stored by another replica stays).
    pub(super) async fn shared_forget_if(&self, key: &Key, token: &AccessToken) {
        if let Some(l2) = &self.inner.l2 {
            let names = l2.key(self.app(), &key.tenant, &key.scopes);
            let now = self.inner.options.clock.now();
            l2.forget_if(&names, (&key.tenant, &key.scopes), token, now)
                .await;
        }
    }

    /// Invalidation of a tenant: its tombstone makes every value fetched before now a
    /// miss for every replica's L2 reads (one write, whatever the replica knows).
    pub(super) async fn shared_forget_tenant(&self, tenant: &TenantId) {
        if let Some(l2) = &self.inner.l2 {
            let names = l2.tenant_tombstones(self.app(), tenant);
            l2.tombstone(&names, self.inner.options.clock.now()).await;
        }
    }

    /// Invalidation of everything: the global tombstone.
    pub(super) async fn shared_forget_all(&self) {
        if let Some(l2) = &self.inner.l2 {
            let names = l2.global_tombstone();
            l2.tombstone(&names, self.inner.options.clock.now()).await;
        }
    }

    /// Fills the L2 counters of `stats`.
    pub(super) fn shared_stats(&self, stats: &mut CacheStats) {
        let l2_count = |f: fn(&L2Counters) -> &AtomicU64| {
            self.inner
                .l2
                .as_ref()
                .map_or(0, |l2| f(&l2.counters).load(Ordering::Relaxed))
        };
        stats.l2_hits = l2_count(|c| &c.hits);
        stats.l2_misses = l2_count(|c| &c.misses);
        stats.l2_errors = l2_count(|c| &c.errors);
        stats.l2_open_failures = l2_count(|c| &c.open_failures);
    }
}

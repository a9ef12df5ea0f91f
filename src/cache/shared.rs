//! The glue between [`Cached`] and the shared (L2) cache: where a miss or a refresh looks
//! in L2, takes or waits on a cross-replica lease, stores what it fetched, and what
//! invalidation deletes there.

use std::hash::BuildHasher as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::Cached;
use super::entry::Entry;
use super::key::Key;
use super::stats::CacheStats;
use crate::error::Error;
use crate::l2::{L2Counters, L2Key};
use crate::provider::TenantCredentialProvider;
use crate::token::AccessToken;

impl<P: TenantCredentialProvider + 'static> Cached<P> {
    /// Deletes keys from the shared cache in the background (best effort: a runtime is
    /// needed; entries left behind expire with their tokens).
    pub(super) fn forget_in_l2(&self, keys: Vec<Key>) {
        if self.inner.l2.is_none() || keys.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            if let Some(l2) = &this.inner.l2 {
                for key in keys {
                    l2.delete(&this.l2_key(&key), this.inner.options.clock.now())
                        .await;
                }
            }
        });
    }

    /// `key`'s names in L2, when there is an L2.
    pub(super) fn shared_key(&self, key: &Key) -> Option<L2Key> {
        self.inner.l2.as_ref().map(|_| self.l2_key(key))
    }

    fn l2_key(&self, key: &Key) -> L2Key {
        let ns = self
            .inner
            .l2
            .as_ref()
            .map_or("act", |l2| l2.config.namespace.as_str());
        L2Key::new(
            ns,
            self.inner.provider.authority_host().as_str(),
            self.inner.provider.client_id(),
            &key.tenant,
            &key.scopes,
        )
    }

    /// A usable token for `key` from the shared cache, as an entry.
    async fn entry_from_l2(&self, key: &Key, l2_key: &L2Key, hash: u64) -> Option<Arc<Entry>> {
        let inner = &self.inner;
        let l2 = inner.l2.as_ref()?;
        let now = inner.options.clock.now();
        let token = l2.get(l2_key, &key.tenant, &key.scopes, now, now).await?;
        let entry = Entry::new(token, now, &inner.options, self.spread(hash));
        entry.usable(now).then(|| Arc::new(entry))
    }

    /// On a miss, before asking the provider: a token from L2, or one another replica
    /// fetched while this one waited on its lease. The caller inserts it in L1.
    pub(super) async fn shared_before_fetch(
        &self,
        key: &Key,
        l2_key: Option<&L2Key>,
        hash: u64,
        now: SystemTime,
    ) -> Option<Arc<Entry>> {
        let (l2, l2_key) = (self.inner.l2.as_ref()?, l2_key?);
        if let Some(entry) = self.entry_from_l2(key, l2_key, hash).await {
            return Some(entry);
        }
        let wait = l2.config.lease_wait?;
        if l2.lease(l2_key, now).await {
            // The previous holder may have stored the token and released the lease
            // between our lookup and our lease: look once more.
            if let Some(entry) = self.entry_from_l2(key, l2_key, hash).await {
                l2.release(l2_key, now).await;
                return Some(entry);
            }
        } else {
            // Another replica holds the lease: wait for its token in L2.
            // TODO(#12, #16): wait on the injected clock and sleeper.
            #[allow(clippy::disallowed_methods)]
            let deadline = tokio::time::Instant::now() + wait;
            #[allow(clippy::disallowed_methods)]
            while tokio::time::Instant::now() < deadline {
                #[allow(clippy::disallowed_methods)]
                tokio::time::sleep(Duration::from_millis(20)).await;
                if let Some(entry) = self.entry_from_l2(key, l2_key, hash).await {
                    return Some(entry);
                }
            }
        }
        None
    }

    /// On a miss, after asking the provider: store the token for the other replicas and
    /// give up the lease.
    pub(super) async fn shared_after_fetch(
        &self,
        l2_key: Option<&L2Key>,
        fetched: &Result<AccessToken, Error>,
    ) {
        if let (Some(l2), Some(l2_key)) = (&self.inner.l2, l2_key) {
            let now = self.inner.options.clock.now();
            if let Ok(token) = fetched {
                l2.put(l2_key, token, now).await;
            }
            l2.release(l2_key, now).await;
        }
    }

    /// On a refresh: a token in L2 newer than `old` (another replica refreshed already).
    pub(super) async fn shared_newer(
        &self,
        key: &Key,
        l2_key: Option<&L2Key>,
        old: &Entry,
    ) -> Option<Arc<Entry>> {
        let l2_key = l2_key?;
        self.entry_from_l2(key, l2_key, self.inner.hasher.hash_one(key))
            .await
            .filter(|e| e.token.expires_on() > old.token.expires_on())
    }

    /// On a refresh: store the fetched token for the other replicas.
    pub(super) async fn shared_put(
        &self,
        l2_key: Option<&L2Key>,
        fetched: &Result<AccessToken, Error>,
    ) {
        if let (Ok(token), Some(l2), Some(k)) = (fetched, &self.inner.l2, l2_key) {
            l2.put(k, token, self.inner.options.clock.now()).await;
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

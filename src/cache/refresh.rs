//! Refresh ahead: one background task per due key fetches a new token while callers keep
//! getting the cached one.

use std::hash::BuildHasher as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use moka::ops::compute::Op;

use super::Cached;
use super::entry::Entry;
use super::key::Key;
use crate::provider::TenantCredentialProvider;
use crate::scope::Scopes;
use crate::tenant::TenantId;

impl<P: TenantCredentialProvider + 'static> Cached<P> {
    /// Waits until no background refresh is running (before shutdown, or in tests).
    pub async fn wait_for_refreshes(&self) {
        loop {
            let done = self.inner.refreshes_done.notified();
            if self.inner.refreshes_running.load(Ordering::Acquire) == 0 {
                return;
            }
            done.await;
        }
    }

    /// A per-key fraction in [0, 1) spreading refreshes of different keys apart.
    pub(super) fn spread(&self, hash: u64) -> f64 {
        (hash >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(super) fn spawn_refresh(&self, tenant: &TenantId, scope: &str, old: Arc<Entry>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to run it on: the token is served until it is no longer usable,
            // then a caller refreshes it as a miss.
            old.refreshing.store(false, Ordering::Release);
            return;
        };
        let key = Key {
            tenant: tenant.clone(),
            scopes: Scopes::from_normalized(scope),
        };
        let this = self.clone();
        this.inner.refreshes_running.fetch_add(1, Ordering::AcqRel);
        this.inner
            .counters
            .refreshes
            .fetch_add(1, Ordering::Relaxed);
        runtime.spawn(async move {
            this.refresh(key, old).await;
            if this.inner.refreshes_running.fetch_sub(1, Ordering::AcqRel) == 1 {
                this.inner.refreshes_done.notify_waiters();
            }
        });
    }

    async fn refresh(&self, key: Key, old: Arc<Entry>) {
        let inner = &self.inner;
        tracing::debug!(tenant = %key.tenant, scope = %key.scopes, "refreshing token in the background");
        // Another replica may have refreshed it already.
        let l2_key = self.shared_key(&key);
        let from_l2 = self.shared_newer(&key, l2_key.as_ref(), &old).await;
        let fetched = match from_l2 {
            Some(entry) => Ok(entry.token.clone()),
            None => {
                let result = self.fetch(&key).await;
                self.shared_put(l2_key.as_ref(), &result).await;
                result
            }
        };
        match fetched {
            Ok(token) => {
                let hash = inner.hasher.hash_one(&key);
                let fresh = Arc::new(Entry::new(
                    token,
                    inner.options.clock.now(),
                    &inner.options,
                    self.spread(hash),
                ));
                let now = inner.options.clock.now();
                if fresh.refresh_at <= now {
                    // The provider handed back a token already due (its own cache?): wait
                    // before asking again instead of refreshing on every hit.
                    *fresh.retry.lock().unwrap_or_else(|p| p.into_inner()) =
                        (now + inner.options.refresh_retry, 1);
                }
                // Replace only the entry this refresh was for: if it was invalidated
                // (offboarding) or replaced meanwhile, the refresh must not resurrect it.
                inner
                    .tokens
                    .entry(key)
                    .and_compute_with(|current| match current {
                        Some(c) if Arc::ptr_eq(c.value(), &old) => Op::Put(fresh),
                        _ => Op::Nop,
                    });
            }
            Err(error) => {
                inner
                    .counters
                    .refresh_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    tenant = %key.tenant,
                    scope = %key.scopes,
                    error = %error,
                    "background token refresh failed; serving the cached token until it expires"
                );
                old.refresh_failed(inner.options.clock.now(), inner.options.refresh_retry);
            }
        }
    }
}

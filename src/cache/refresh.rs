//! Refresh ahead: one background task per due key fetches a new token while callers keep
//! getting the cached one.

use std::hash::BuildHasher as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use moka::ops::compute::Op;

use super::entry::{Entry, Slot};
use super::key::Key;
use super::{Cached, Inner};
use crate::provider::TenantCredentialProvider;

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

    pub(super) fn spawn_refresh(&self, key: Key, old: Arc<Entry>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to run it on: the token is served until it is no longer usable,
            // then a caller refreshes it as a miss.
            old.refreshing.store(false, Ordering::Release);
            return;
        };
        self.inner.refreshes_running.fetch_add(1, Ordering::AcqRel);
        self.inner
            .counters
            .refreshes
            .fetch_add(1, Ordering::Relaxed);
        let running = Running {
            inner: self.inner.clone(),
            old: old.clone(),
            finished: false,
        };
        let this = self.clone();
        runtime.spawn(async move {
            let mut running = running;
            this.refresh(key, old).await;
            running.finished = true;
        });
    }

    async fn refresh(&self, key: Key, old: Arc<Entry>) {
        let inner = &self.inner;
        self.feed_store();
        tracing::debug!(tenant = %key.tenant, scope = %key.scopes, "refreshing token in the background");
        // Another replica may have refreshed it already.
        let l2_key = self.shared_key(&key);
        let from_l2 = self.shared_newer(&key, l2_key.as_ref(), &old).await;
        let fetched = match from_l2 {
            Some(entry) => Ok(entry.token.clone()),
            None => {
                let result = self.fetch(&key).await.map(|(token, _)| token);
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
                let (index, refresh) = (&inner.index, inner.options.refresh);
                inner
                    .tokens
                    .entry(key.clone())
                    .and_compute_with(|current| match current {
                        Some(c) if Arc::ptr_eq(c.value(), &old) => {
                            index.insert(key, Slot::new(&fresh, refresh), &index.guard());
                            Op::Put(fresh)
                        }
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

/// A background refresh in progress. Dropping it, however the task ends (done, panicked,
/// or cancelled with its runtime), counts it out so `wait_for_refreshes` returns; if the
/// refresh did not finish, the entry is released for a later attempt after the retry
/// wait, instead of staying marked as refreshing forever.
struct Running<P> {
    inner: Arc<Inner<P>>,
    old: Arc<Entry>,
    finished: bool,
}

impl<P> Drop for Running<P> {
    fn drop(&mut self) {
        let inner = &self.inner;
        if !self.finished {
            inner
                .counters
                .refresh_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                "a background token refresh ended without finishing (the provider panicked, \
                 or the runtime shut down); the cached token is served until it expires"
            );
            self.old
                .refresh_failed(inner.options.clock.now(), inner.options.refresh_retry);
        }
        if inner.refreshes_running.fetch_sub(1, Ordering::AcqRel) == 1 {
            inner.refreshes_done.notify_waiters();
        }
    }
}

//! [`OnboardingStore`]: where the onboarding keeps what must outlive one request (pending
//! sign-ins and consents, spent `state` values), and [`InMemoryOnboardingStore`], the
//! store of one process.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use crate::error::Error;

/// Most entries the in-process store holds (about 10 MB of pending flows and spent states).
const MAX_ENTRIES: usize = 100_000;

/// A small key-value store with expiry, shared by every replica that runs the onboarding
/// (or private to one process: [`InMemoryOnboardingStore`]). Keys are short ASCII
/// strings the onboarding makes from hashes (never a state, cookie or code itself);
/// values are a few KB. Times are Unix seconds from the onboarding's clock, so that an
/// injected clock governs expiry.
///
/// Every method is one atomic step for every user of the store: that is what makes a
/// `state` single-use across a fleet. [`SqlRegistry::onboarding_store`](crate::SqlRegistry)
/// (features `sqlite`, `postgres`) keeps it in the registry's database.
///
/// Values hold the pending flow's nonce and PKCE verifier: keep the store server-side,
/// readable by the application only.
#[async_trait::async_trait]
pub trait OnboardingStore: Send + Sync + fmt::Debug {
    /// Stores `value` under `key` until `expires_at`, replacing any value.
    async fn put(&self, key: &str, value: &[u8], expires_at: u64) -> Result<(), Error>;

    /// The value under `key`, unless it expired before `now`.
    async fn get(&self, key: &str, now: u64) -> Result<Option<Vec<u8>>, Error>;

    /// Removes the value under `key` and returns it, unless it expired before `now`: of
    /// concurrent calls for one key, at most one gets it.
    async fn take(&self, key: &str, now: u64) -> Result<Option<Vec<u8>>, Error>;

    /// Stores `value` under `key` until `expires_at` only if no unexpired value is there:
    /// true if this call stored it. Of concurrent calls for one key, at most one gets true.
    async fn insert_new(
        &self,
        key: &str,
        value: &[u8],
        expires_at: u64,
        now: u64,
    ) -> Result<bool, Error>;

    /// Removes `key` (nothing if absent).
    async fn delete(&self, key: &str) -> Result<(), Error>;

    /// Removes every value expired before `now`; returns how many.
    async fn purge_expired(&self, now: u64) -> Result<u64, Error>;
}

/// The onboarding store of one process: what [`Onboarding`](crate::Onboarding) uses
/// unless given another. A state is single-use within this process only (another replica,
/// or a restart, does not know it), so a fleet behind a load balancer needs a shared store
/// (the registry's database: [`SqlRegistry::onboarding_store`](crate::SqlRegistry)).
/// Bounded at 100,000 entries: past that, expired entries go first, then the tenth that
/// expires soonest.
#[derive(Default)]
pub struct InMemoryOnboardingStore {
    entries: Mutex<HashMap<String, (Vec<u8>, u64)>>,
}

impl fmt::Debug for InMemoryOnboardingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.lock().len();
        f.debug_struct("InMemoryOnboardingStore")
            .field("entries", &len)
            .finish()
    }
}

impl InMemoryOnboardingStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Vec<u8>, u64)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Makes room for one more entry: expired ones first, then the tenth expiring soonest
/// (exactly a tenth even when many share one second), so the map stays bounded whoever
/// starts flows.
fn make_room(entries: &mut HashMap<String, (Vec<u8>, u64)>, now: u64) {
    if entries.len() < MAX_ENTRIES {
        return;
    }
    entries.retain(|_, (_, expires)| *expires >= now);
    if entries.len() < MAX_ENTRIES {
        return;
    }
    let tenth = MAX_ENTRIES / 10;
    let mut by_expiry: Vec<(u64, String)> =
        entries.iter().map(|(k, (_, e))| (*e, k.clone())).collect();
    by_expiry.select_nth_unstable(tenth);
    for (_, soonest) in &by_expiry[..tenth] {
        entries.remove(soonest);
    }
}

#[async_trait::async_trait]
impl OnboardingStore for InMemoryOnboardingStore {
    async fn put(&self, key: &str, value: &[u8], expires_at: u64) -> Result<(), Error> {
        let mut entries = self.lock();
        if !entries.contains_key(key) {
            make_room(&mut entries, expires_at.saturating_sub(1));
        }
        entries.insert(key.to_owned(), (value.to_vec(), expires_at));
        Ok(())
    }

    async fn get(&self, key: &str, now: u64) -> Result<Option<Vec<u8>>, Error> {
        let entries = self.lock();
        Ok(entries
            .get(key)
            .filter(|(_, expires)| *expires >= now)
            .map(|(v, _)| v.clone()))
    }

    async fn take(&self, key: &str, now: u64) -> Result<Option<Vec<u8>>, Error> {
        let mut entries = self.lock();
        Ok(entries
            .remove(key)
            .filter(|(_, expires)| *expires >= now)
            .map(|(v, _)| v))
    }

    async fn insert_new(
        &self,
        key: &str,
        value: &[u8],
        expires_at: u64,
        now: u64,
    ) -> Result<bool, Error> {
        let mut entries = self.lock();
        if entries.get(key).is_some_and(|(_, e)| *e >= now) {
            return Ok(false);
        }
        make_room(&mut entries, now);
        entries.insert(key.to_owned(), (value.to_vec(), expires_at));
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.lock().remove(key);
        Ok(())
    }

    async fn purge_expired(&self, now: u64) -> Result<u64, Error> {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|_, (_, expires)| *expires >= now);
        Ok((before - entries.len()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_inserted_once_taken_once_and_the_map_stays_bounded() {
        let store = InMemoryOnboardingStore::new();
        assert!(store.insert_new("k", b"v", 100, 10).await.unwrap());
        assert!(!store.insert_new("k", b"w", 100, 10).await.unwrap());
        // Expired: usable again.
        assert!(store.insert_new("k", b"w", 300, 101).await.unwrap());
        store.put("p", b"x", 50).await.unwrap();
        assert_eq!(
            store.get("p", 50).await.unwrap().as_deref(),
            Some(&b"x"[..])
        );
        assert_eq!(store.get("p", 51).await.unwrap(), None);
        assert_eq!(
            store.take("p", 50).await.unwrap().as_deref(),
            Some(&b"x"[..])
        );
        assert_eq!(store.take("p", 50).await.unwrap(), None);

        for i in 0..MAX_ENTRIES + 10 {
            assert!(
                store
                    .insert_new(&format!("s{i}"), b"", 1000, 10)
                    .await
                    .unwrap()
            );
        }
        let kept = store.len();
        assert!(kept <= MAX_ENTRIES, "{kept}");
        // Entries sharing one expiry are not all forgotten at once: a tenth goes.
        assert!(kept >= MAX_ENTRIES - MAX_ENTRIES / 10, "{kept}");
        let last = format!("s{}", MAX_ENTRIES + 9);
        assert!(!store.insert_new(&last, b"", 1000, 10).await.unwrap());
        assert_eq!(store.purge_expired(2000).await.unwrap() as usize, kept);
    }
}

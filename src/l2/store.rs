//! What a shared store must do for the L2 cache ([`L2Store`]), and how it says it failed
//! ([`L2Error`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::value::MAX_TOMBSTONE;

/// Why an L2 operation failed. Never reaches callers of `get_token`: it is a miss.
///
/// ```
/// use azure_cross_tenant::L2Error;
///
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
/// let error = L2Error::with_source("cannot connect to cache.internal:6379", io);
/// assert_eq!(error.to_string(), "shared token cache: cannot connect to cache.internal:6379");
/// assert!(std::error::Error::source(&error).is_some());
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("shared token cache: {context}")]
pub struct L2Error {
    context: Cow<'static, str>,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl L2Error {
    /// A failure described by `context` alone (what was tried, against what).
    pub fn new(context: impl Into<Cow<'static, str>>) -> Self {
        Self {
            context: context.into(),
            source: None,
        }
    }

    /// A failure described by `context`, caused by `source` (kept, not flattened).
    pub fn with_source(
        context: impl Into<Cow<'static, str>>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            context: context.into(),
            source: Some(Arc::new(source)),
        }
    }
}

/// A shared key-value store with expiry (Redis, Memcached, a database...).
///
/// Every value is sealed before it reaches the store and every key name is a keyed hash,
/// so the store needs no trust beyond availability. [`Cached`](crate::Cached) bounds every
/// call with [`SharedCache::timeout`](crate::SharedCache::timeout); a store needs no
/// timeouts of its own for commands, but should connect in the background, under its own
/// deadline, rather than inside a call (a call cancelled by the timeout would otherwise
/// throw away a half-built connection every time).
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use std::time::Duration;
/// use azure_cross_tenant::{L2Error, L2Store};
///
/// /// One process's memory: useless in production (nothing is shared), fine in tests.
/// #[derive(Debug, Default)]
/// struct Memory(Mutex<HashMap<String, Vec<u8>>>);
///
/// #[async_trait::async_trait]
/// impl L2Store for Memory {
///     async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, L2Error> {
///         let map = self.0.lock().unwrap();
///         Ok(keys.iter().map(|k| map.get(*k).cloned()).collect())
///     }
///     async fn put(&self, key: &str, value: &[u8], _ttl: Duration) -> Result<(), L2Error> {
///         self.0.lock().unwrap().insert(key.into(), value.into());
///         Ok(())
///     }
///     async fn delete(&self, key: &str) -> Result<(), L2Error> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
///     async fn delete_if(&self, key: &str, expected: &[u8]) -> Result<bool, L2Error> {
///         let mut map = self.0.lock().unwrap();
///         let holds = map.get(key).is_some_and(|v| v == expected);
///         if holds {
///             map.remove(key);
///         }
///         Ok(holds)
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait L2Store: Send + Sync + fmt::Debug {
    /// The values under `keys`, in the same order (Redis `MGET`), in one round trip where
    /// the store can.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, L2Error>;

    /// Stores `value` under `key` for `ttl`.
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), L2Error>;

    /// Removes `key`.
    async fn delete(&self, key: &str) -> Result<(), L2Error>;

    /// Removes `key` only if it still holds `expected`, atomically (compare-and-delete):
    /// true if it did. Leases are released this way, so a replica never frees a lease
    /// another one took after its own ran out.
    async fn delete_if(&self, key: &str, expected: &[u8]) -> Result<bool, L2Error>;

    /// Takes a short exclusive lease on `key` for `holder` (Redis `SET NX PX`): true if
    /// this caller got it. Stores without leases return true, so every replica asks Entra
    /// itself.
    async fn try_lease(&self, key: &str, holder: &[u8], ttl: Duration) -> Result<bool, L2Error> {
        let _ = (key, holder, ttl);
        Ok(true)
    }

    /// Whether the store answers, (re)connecting if needed: the circuit breaker's probe
    /// while the store is considered down. May take longer than one call's timeout
    /// (it runs in the background), but must end on its own.
    async fn ping(&self) -> Result<(), L2Error> {
        self.get_many(&["ping"]).await.map(drop)
    }

    /// The values under `keys` as [`get_many`](Self::get_many) gives them, each cut to at
    /// most `limit` bytes. The cache asks for one byte more than it accepts and treats a
    /// value that long as oversized (a miss), so it never needs the rest: a store that can
    /// read part of a value (Redis `GETRANGE`) should, so that a huge value written into
    /// the store never crosses the network whole. The default reads whole values with
    /// `get_many` and cuts them.
    async fn get_many_bounded(
        &self,
        keys: &[&str],
        limit: usize,
    ) -> Result<Vec<Option<Vec<u8>>>, L2Error> {
        let mut values = self.get_many(keys).await?;
        for value in values.iter_mut().flatten() {
            value.truncate(limit);
        }
        Ok(values)
    }

    /// Stores the tombstone `at` (an invalidation time, milliseconds since the Unix
    /// epoch, as decimal text) under `key` for `ttl`, unless `key` already holds a later
    /// one: of two invalidations written in either order (a replica writing one it had to
    /// postpone, after another replica wrote a newer one), the later stands, so the
    /// values fetched between the two stay hidden. A value that is not a tombstone is
    /// overwritten.
    ///
    /// `RedisStore` compares and writes in one script, atomically. The default reads,
    /// compares and then writes with [`put`](Self::put): two replicas can interleave
    /// between the read and the write, so a store that can compare-and-set should
    /// override it.
    async fn put_tombstone(&self, key: &str, at: u64, ttl: Duration) -> Result<(), L2Error> {
        let current = self.get_many_bounded(&[key], MAX_TOMBSTONE + 1).await?;
        if let Some(Some(held)) = current.first()
            && tombstone_time(held).is_some_and(|held| held >= at)
        {
            return Ok(());
        }
        self.put(key, at.to_string().as_bytes(), ttl).await
    }

    /// Which independently failing part of the store holds `key`. The circuit breaker
    /// counts failures, skips and probes per part, so a part that is down (a lost Redis
    /// Cluster master: `RedisStore` answers with the key's hash slot) turns off only its
    /// own keys. Keys of one entry (its value, lease and tombstones) must share a part.
    /// The default, one part, turns the whole store off together.
    fn partition(&self, key: &str) -> u32 {
        let _ = key;
        0
    }

    /// The circuit breaker's probe of the part holding `key` ([`partition`](Self::partition)),
    /// reconnecting if needed; like [`ping`](Self::ping), it may take longer than one
    /// call's timeout but must end on its own. The default pings the whole store.
    async fn ping_partition(&self, key: &str) -> Result<(), L2Error> {
        let _ = key;
        self.ping().await
    }
}

/// The time a stored tombstone holds, if it is one: 1 to 20 decimal digits that fit in
/// a `u64` (what [`L2Store::put_tombstone`] writes).
fn tombstone_time(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 20 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Default)]
    struct Memory(Mutex<HashMap<String, Vec<u8>>>);

    #[async_trait::async_trait]
    impl L2Store for Memory {
        async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, L2Error> {
            let map = self.0.lock().unwrap();
            Ok(keys.iter().map(|k| map.get(*k).cloned()).collect())
        }
        async fn put(&self, key: &str, value: &[u8], _ttl: Duration) -> Result<(), L2Error> {
            self.0.lock().unwrap().insert(key.into(), value.to_vec());
            Ok(())
        }
        async fn delete(&self, key: &str) -> Result<(), L2Error> {
            self.0.lock().unwrap().remove(key);
            Ok(())
        }
        async fn delete_if(&self, _key: &str, _expected: &[u8]) -> Result<bool, L2Error> {
            Ok(false)
        }
    }

    fn held(store: &Memory) -> Vec<u8> {
        store.0.lock().unwrap()["t"].clone()
    }

    #[tokio::test]
    async fn the_later_tombstone_stands_whichever_is_written_last() {
        let store = Memory::default();
        let ttl = Duration::from_secs(60);
        store.put_tombstone("t", 2_000, ttl).await.unwrap();
        store.put_tombstone("t", 1_000, ttl).await.unwrap();
        assert_eq!(held(&store), b"2000");
        store.put_tombstone("t", 3_000, ttl).await.unwrap();
        assert_eq!(held(&store), b"3000");
    }

    #[tokio::test]
    async fn a_value_that_is_no_tombstone_is_overwritten() {
        let store = Memory::default();
        let ttl = Duration::from_secs(60);
        for junk in [
            &b"-1"[..],
            b"",
            b"12x",
            b"999999999999999999999",
            &[0xff; 40],
        ] {
            store.put("t", junk, ttl).await.unwrap();
            store.put_tombstone("t", 1_000, ttl).await.unwrap();
            assert_eq!(held(&store), b"1000", "{junk:?}");
        }
    }
}

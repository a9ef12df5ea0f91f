//! The shared (L2) cache on real Redis (one node, and a three-master Redis Cluster), with
//! MockEntra over real HTTP: replicas share tokens, leases keep a cold fleet to about one
//! request per key, invalidation reaches every replica's L2 reads, outages fall back to
//! L1 and Entra and recover within a probe, and sealed values cannot be moved, tampered
//! with, read without their key, or served past their expiry margin.
//!
//! Each test starts its own servers on free loopback ports. Tests written once run on
//! both backends through [`on_both!`].

use std::sync::Arc;
use std::time::Duration;

use crate::common::World;
use azure_cross_tenant::{
    CacheOptions, Cached, ClientSecret, RedisStore, SealingKeys, SharedCache,
};

mod servers;

mod identity;
mod invalidation;
mod leases;
mod margin;
mod outage;
mod refusals;
mod sealing;
mod sharing;

use servers::{Cluster, Redis};

/// Where the shared cache lives in one test.
pub enum Backend {
    Single(Redis),
    Cluster(Cluster),
}

impl Backend {
    pub fn single() -> Option<Self> {
        Redis::start().map(Self::Single)
    }

    pub fn cluster() -> Option<Self> {
        Cluster::start().map(Self::Cluster)
    }

    /// A new store on this backend (each replica has its own connection).
    pub fn store(&self) -> RedisStore {
        match self {
            Self::Single(r) => RedisStore::new(&r.url()).unwrap(),
            Self::Cluster(c) => RedisStore::cluster(c.urls()).unwrap(),
        }
    }

    /// A plain client, to look at (or tamper with) what the cache stored.
    pub async fn raw(&self) -> Raw {
        match self {
            Self::Single(r) => Raw::Single(
                redis::Client::open(r.url())
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap(),
            ),
            Self::Cluster(c) => Raw::Cluster(
                redis::cluster::ClusterClient::new(c.urls())
                    .unwrap()
                    .get_async_connection()
                    .await
                    .unwrap(),
            ),
        }
    }
}

/// A plain Redis connection to either backend.
pub enum Raw {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Raw {
    pub async fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> T {
        match self {
            Self::Single(c) => cmd.query_async(c).await.unwrap(),
            Self::Cluster(c) => cmd.query_async(c).await.unwrap(),
        }
    }

    /// Every key matching `pattern`, sorted (on a cluster, from every master).
    pub async fn keys(&mut self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = self.query(redis::cmd("KEYS").arg(pattern)).await;
        keys.sort();
        keys
    }

    pub async fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.query(redis::cmd("GET").arg(key)).await
    }

    pub async fn set(&mut self, key: &str, value: &[u8]) {
        self.query::<()>(redis::cmd("SET").arg(key).arg(value))
            .await
    }
}

pub fn keys(id: &str, byte: u8) -> SealingKeys {
    SealingKeys::new(id, [byte; 32]).unwrap()
}

/// The shared cache of one replica: generous timeouts for a loaded 2-core CI box
/// (waiters must outlast the lease holder's fetch).
pub fn shared(backend: &Backend, sealing: SealingKeys) -> SharedCache {
    SharedCache::new(Arc::new(backend.store()), sealing)
        .timeout(Duration::from_millis(500))
        .lease_wait(Some(Duration::from_secs(5)))
}

/// One replica on the world's clock: its own credential and L1, sharing `shared`.
pub fn replica_with(w: &World, shared: SharedCache) -> Cached<ClientSecret> {
    Cached::with_options(
        w.credential(),
        CacheOptions::default()
            .clock(Arc::new(w.clock.clone()))
            .shared(shared),
    )
    .expect("valid cache options")
}

/// One replica with the default test settings and sealing key `k1`.
pub fn replica(w: &World, backend: &Backend) -> Cached<ClientSecret> {
    replica_with(w, shared(backend, keys("k1", 1)))
}

/// Runs an async test body `fn(Backend)` once on a single Redis and once on a Redis
/// Cluster, as two tests named `<body>::single` and `<body>::cluster` (on a two-worker
/// runtime, or with `current_thread:` on one thread).
macro_rules! on_both {
    (current_thread: $body:ident) => {
        mod $body {
            #[tokio::test(flavor = "current_thread")]
            async fn single() {
                if let Some(backend) = super::super::Backend::single() {
                    super::$body(backend).await;
                }
            }

            #[tokio::test(flavor = "current_thread")]
            async fn cluster() {
                if let Some(backend) = super::super::Backend::cluster() {
                    super::$body(backend).await;
                }
            }
        }
    };
    ($($body:ident),* $(,)?) => {$(
        mod $body {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn single() {
                if let Some(backend) = super::super::Backend::single() {
                    super::$body(backend).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cluster() {
                if let Some(backend) = super::super::Backend::cluster() {
                    super::$body(backend).await;
                }
            }
        }
    )*};
}
pub(crate) use on_both;

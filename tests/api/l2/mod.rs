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

mod azure;
mod bounds;
mod invalidation;
mod leases;
mod margin;
mod onboarding;
mod outage;
mod sealing;
mod sharing;

use servers::{Cluster, Redis};

/// Where the shared cache lives in one test.
pub enum Backend {
    Single(Redis),
    Cluster(Cluster),
}

impl Backend {
    pub fn single() -> Self {
        Self::Single(Redis::start())
    }

    pub fn cluster() -> Self {
        Self::Cluster(Cluster::start())
    }

    /// The CA of the servers' certificates, when they serve TLS.
    pub fn ca_pem(&self) -> Option<String> {
        self.servers()[0].ca_pem.clone()
    }

    /// A new store on this backend (each replica has its own connection).
    pub fn store(&self) -> RedisStore {
        let store = match self {
            Self::Single(r) => RedisStore::new(&r.url()).unwrap(),
            Self::Cluster(c) => RedisStore::cluster(c.urls()).unwrap(),
        };
        match self.ca_pem() {
            Some(ca) => store.tls_ca_pem(ca).unwrap(),
            None => store,
        }
    }

    /// Every server of this backend.
    pub fn servers(&self) -> Vec<&Redis> {
        match self {
            Self::Single(r) => vec![r],
            Self::Cluster(c) => c.nodes.iter().collect(),
        }
    }

    /// Bytes all servers have sent to clients so far.
    pub fn bytes_sent(&self) -> u64 {
        self.servers().iter().map(|s| s.bytes_sent()).sum()
    }

    /// A plain client, to look at (or tamper with) what the cache stored.
    pub async fn raw(&self) -> Raw {
        let certs = || redis::TlsCertificates {
            client_tls: None,
            root_cert: self.ca_pem().map(String::into_bytes),
        };
        match self {
            Self::Single(r) => {
                let client = match self.ca_pem() {
                    Some(_) => redis::Client::build_with_tls(r.url(), certs()).unwrap(),
                    None => redis::Client::open(r.url()).unwrap(),
                };
                Raw::Single(client.get_multiplexed_async_connection().await.unwrap())
            }
            Self::Cluster(c) => {
                let mut builder = redis::cluster::ClusterClient::builder(c.urls());
                if self.ca_pem().is_some() {
                    builder = builder.certs(certs());
                }
                Raw::Cluster(
                    builder
                        .build()
                        .unwrap()
                        .get_async_connection()
                        .await
                        .unwrap(),
                )
            }
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
/// runtime, or with `current_thread:` on one thread). Both need `redis-server` and
/// `redis-cli`: they are ignored unless asked for (`main.rs` says how).
macro_rules! on_both {
    (current_thread: $body:ident) => {
        mod $body {
            #[tokio::test(flavor = "current_thread")]
            #[ignore = "needs redis-server: apt-get install redis-server, then --include-ignored"]
            async fn single() {
                super::$body(super::super::Backend::single()).await;
            }

            #[tokio::test(flavor = "current_thread")]
            #[ignore = "needs redis-server: apt-get install redis-server, then --include-ignored"]
            async fn cluster() {
                super::$body(super::super::Backend::cluster()).await;
            }
        }
    };
    ($($body:ident),* $(,)?) => {$(
        mod $body {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs redis-server: apt-get install redis-server, then --include-ignored"]
            async fn single() {
                super::$body(super::super::Backend::single()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs redis-server: apt-get install redis-server, then --include-ignored"]
            async fn cluster() {
                super::$body(super::super::Backend::cluster()).await;
            }
        }
    )*};
}
pub(crate) use on_both;

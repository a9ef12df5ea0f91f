//! The shared (L2) cache on a real Redis, with MockEntra over real HTTP: replicas share
//! tokens, leases keep a cold fleet to about one request per key, Redis outages fall
//! back to L1 and Entra, and sealed values cannot be moved, tampered with or read
//! without their key.
//!
//! Each test starts its own `redis-server` on a free loopback port (`.ci/run` installs
//! it). Without one, tests skip with a message, except under CI, where they fail.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{VAULT, World};
use azure_cross_tenant::insecure::decode_unverified;
use azure_cross_tenant::{
    CacheOptions, Cached, ClientSecret, RedisStore, SealingKeys, SharedCache, TenantId,
};

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// A fresh redis-server, or `None` (skip) outside CI when none is installed.
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    fn start_on(port: u16) -> Option<Self> {
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!(
                    "SKIPPED: no redis-server ({e}); install it (apt-get install redis-server) or run .ci/run"
                );
                return None;
            }
            Err(e) => panic!("CI is set but redis-server cannot start: {e}"),
        };
        // Wait until it accepts connections.
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Self { child, port });
            }
            // Waiting for a child process to listen: real time is what it takes.
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not start on port {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn keys(id: &str, byte: u8) -> SealingKeys {
    SealingKeys::new(id, [byte; 32]).unwrap()
}

/// One replica: its own credential and L1, sharing Redis.
fn replica(w: &World, redis: &Redis, sealing: SealingKeys) -> Cached<ClientSecret> {
    let shared = SharedCache::new(Arc::new(RedisStore::new(&redis.url()).unwrap()), sealing)
        .timeout(Duration::from_millis(500))
        // Generous on a loaded 2-core CI box: waiters must outlast the lease holder's fetch.
        .lease_wait(Some(Duration::from_secs(5)));
    Cached::with_options(
        w.credential(),
        CacheOptions::default()
            .clock(Arc::new(w.clock.clone()))
            .shared(shared),
    )
    .expect("valid cache options")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replica_gets_the_first_replicas_token_without_asking_entra() {
    let Some(redis) = Redis::start() else { return };
    let w = World::new().await;
    let a = replica(&w, &redis, keys("k1", 1));
    let b = replica(&w, &redis, keys("k1", 1));
    let from_a = a.get_token(&w.customer, &[VAULT]).await.unwrap();
    let from_b = b.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(w.entra.token_requests(), 1);
    assert_eq!(from_a.secret(), from_b.secret());
    // Expiry travels at millisecond precision.
    let ms =
        |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    assert_eq!(ms(from_b.expires_on()), ms(from_a.expires_on()));
    let stats = b.stats();
    assert_eq!((stats.l2_hits, stats.misses), (1, 0), "{stats:?}");

    // Redis never sees the token or the tenant id in the clear.
    let mut raw = redis.raw().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut raw)
        .await
        .unwrap();
    for k in &keys {
        assert!(!k.contains(w.customer.as_str()), "{k}");
        let value: Vec<u8> = redis::cmd("GET")
            .arg(k)
            .query_async(&mut raw)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&value);
        assert!(
            !text.contains(&from_a.secret()[..40]),
            "token in the clear under {k}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_cold_replicas_on_two_hundred_tenants_ask_entra_about_once_per_tenant() {
    let Some(redis) = Redis::start() else { return };
    let w = World::new().await;
    let mut tenants = Vec::new();
    for i in 0..200 {
        let t = w.entra.add_tenant(&format!("t{i}.example"));
        w.entra.consent(&t, &w.app);
        tenants.push(t);
    }
    let replicas: Vec<_> = (0..8).map(|_| replica(&w, &redis, keys("k1", 1))).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for r in &replicas {
        for t in &tenants {
            let (r, t) = (r.clone(), t.clone());
            tasks.spawn(async move {
                let token = r.get_token(&t, &[VAULT]).await.unwrap();
                let tid = decode_unverified(token.secret()).unwrap().tid;
                assert_eq!(tid.as_deref(), Some(t.as_str()));
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let requests = w.entra.token_requests();
    eprintln!(
        "8 replicas x 200 tenants, cold and concurrent: {requests} token requests (without L2: 1600)"
    );
    assert!(requests < 300, "{requests} token requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_falls_back_to_l1_and_entra_and_recovers() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let w = World::new().await;
    let a = replica(&w, &redis, keys("k1", 1));
    a.get_token(&w.customer, &[VAULT]).await.unwrap();

    redis.stop();
    // L1 still answers; a cold key goes to Entra; nothing fails.
    a.get_token(&w.customer, &[VAULT]).await.unwrap();
    let cold = w.entra.add_tenant("cold.example");
    w.entra.consent(&cold, &w.app);
    a.get_token(&cold, &[VAULT]).await.unwrap();
    assert!(a.stats().l2_errors > 0);
    let b = replica(&w, &redis, keys("k1", 1));
    b.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(
        w.entra.token_requests(),
        3,
        "L1, then Entra for what L1 lacks"
    );

    // Redis comes back. The first call on the old connection may fail while it
    // reconnects (and reopen the circuit); within a few cooldowns replica A writes to
    // Redis again, and a new replica C reads from it without asking Entra.
    let redis = Redis::start_on(redis.port).unwrap();
    let c = replica(&w, &redis, keys("k1", 1));
    let mut resumed = false;
    for attempt in 0..5 {
        w.clock.advance(Duration::from_secs(31));
        let t = w.entra.add_tenant(&format!("later{attempt}.example"));
        w.entra.consent(&t, &w.app);
        a.get_token(&t, &[VAULT]).await.unwrap();
        let before = w.entra.token_requests();
        c.get_token(&t, &[VAULT]).await.unwrap();
        if w.entra.token_requests() == before {
            resumed = true;
            break;
        }
    }
    assert!(
        resumed,
        "replica A never wrote to Redis again after it came back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_tampered_and_unknown_key_values_are_rejected_and_replaced() {
    let Some(redis) = Redis::start() else { return };
    let w = World::new().await;
    w.entra.consent(&w.stranger, &w.app);
    let writer = replica(&w, &redis, keys("old", 1));
    writer.get_token(&w.customer, &[VAULT]).await.unwrap();
    let mut raw = redis.raw().await;
    let first: Vec<String> = redis::cmd("KEYS")
        .arg("act:tok:*")
        .query_async(&mut raw)
        .await
        .unwrap();
    writer.get_token(&w.stranger, &[VAULT]).await.unwrap();
    let all: Vec<String> = redis::cmd("KEYS")
        .arg("act:tok:*")
        .query_async(&mut raw)
        .await
        .unwrap();
    let customer_key = first[0].clone();
    let stranger_key = all.into_iter().find(|k| *k != customer_key).unwrap();
    let customer_value: Vec<u8> = redis::cmd("GET")
        .arg(&customer_key)
        .query_async(&mut raw)
        .await
        .unwrap();

    // A key rotation: the retired id still opens while configured.
    let rotated = SealingKeys::new("new", [2; 32])
        .unwrap()
        .with_previous("old", [1; 32])
        .unwrap();
    let reader = replica(&w, &redis, rotated);
    let before = w.entra.token_requests();
    reader.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(w.entra.token_requests(), before);

    // Without the old id, the value is a miss (and Entra is asked).
    let only_new = replica(&w, &redis, keys("new", 2));
    only_new.get_token(&w.stranger, &[VAULT]).await.unwrap();
    assert_eq!(only_new.stats().l2_open_failures, 1);

    // The customer's value copied under the stranger's key: refused, never served.
    let _: () = redis::cmd("SET")
        .arg(&stranger_key)
        .arg(&customer_value)
        .query_async(&mut raw)
        .await
        .unwrap();
    let victim = replica(&w, &redis, keys("old", 1));
    let token = victim.get_token(&w.stranger, &[VAULT]).await.unwrap();
    assert_eq!(
        decode_unverified(token.secret()).unwrap().tid.as_deref(),
        Some(w.stranger.as_str())
    );
    assert_eq!(victim.stats().l2_open_failures, 1);

    // A flipped byte: refused.
    let mut tampered = customer_value.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let _: () = redis::cmd("SET")
        .arg(&customer_key)
        .arg(&tampered)
        .query_async(&mut raw)
        .await
        .unwrap();
    let fresh = replica(&w, &redis, keys("old", 1));
    let token = fresh.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(
        decode_unverified(token.secret()).unwrap().tid.as_deref(),
        Some(w.customer.as_str())
    );
    assert_eq!(fresh.stats().l2_open_failures, 1);
    let _: TenantId = w.customer.clone();
}

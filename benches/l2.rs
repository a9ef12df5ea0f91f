//! The shared cache's place between the two others: an L1 hit (memory), an L2 hit (Redis
//! on loopback, unsealing included), and a token request (mock Entra at 50 ms latency),
//! in the same run.
//!
//! Needs `redis-server` (started here on a free port) or `REDIS_URL`.
//! Run: `cargo bench -p azure-cross-tenant-benches --bench l2`

#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::sync::Arc;
use std::time::Duration;

use azure_cross_tenant::{
    CacheOptions, Cached, ClientSecret, RedisStore, SealingKeys, SharedCache,
    TenantCredentialProvider,
};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mock_entra::MockEntra;

const VAULT: &str = "https://vault.azure.net/.default";

fn redis_url() -> (String, Option<std::process::Child>) {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return (url, None);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server) or REDIS_URL is needed");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        // Waiting for a child process to listen: real time is what it takes.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(10));
    }
    (format!("redis://127.0.0.1:{port}/"), Some(child))
}

fn tiers(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (url, mut redis) = redis_url();
    let entra = rt.block_on(MockEntra::start());
    let home = entra.add_tenant("provider.example");
    let tenant = entra.add_tenant("fabrikam.example");
    let app = entra.register_app(&home, "bench");
    let secret = entra.add_secret(&app);
    entra.consent(&tenant, &app);
    entra.set_latency(Duration::from_millis(50));
    let credential = || {
        ClientSecret::new(app.client_id(), &secret)
            .authority_host(entra.uri())
            .build()
            .unwrap()
    };
    let keys = || SealingKeys::new("bench", [7; 32]).unwrap();
    let shared = SharedCache::new(Arc::new(RedisStore::new(&url).unwrap()), keys());
    let options = CacheOptions::default().shared(shared);
    let cached = Cached::with_options(credential(), options.clone()).unwrap();
    let uncached = credential();
    rt.block_on(async { cached.get_token(&tenant, &[VAULT]).await.unwrap() });

    let mut g = c.benchmark_group("token_tiers");
    g.bench_function("l1_hit", |b| {
        b.to_async(&rt)
            .iter(|| async { cached.get_token(&tenant, &[VAULT]).await.unwrap() })
    });
    // A replica with an empty L1 on the same Redis connection, built outside the timing
    // (invalidation would not do: it reaches L2 too). A small capacity, so its first
    // insert does not size moka's frequency sketch for 50,000 entries inside the timing.
    let small = options.max_entries(16);
    let shared_credential = Arc::new(credential());
    g.bench_function("l2_hit", |b| {
        b.to_async(&rt).iter_batched(
            || Cached::with_options(shared_credential.clone(), small.clone()).unwrap(),
            |replica| async {
                let token = replica.get_token(&tenant, &[VAULT]).await.unwrap();
                (replica, token)
            },
            BatchSize::SmallInput,
        )
    });
    g.sample_size(10);
    g.bench_function("entra_request_50ms", |b| {
        b.to_async(&rt)
            .iter(|| async { uncached.get_token(&tenant, &[VAULT]).await.unwrap() })
    });
    g.finish();
    if let Some(child) = redis.as_mut() {
        let _ = child.kill();
    }
}

criterion_group!(benches, tiers);
criterion_main!(benches);

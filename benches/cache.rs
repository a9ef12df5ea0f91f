//! `Cached<ClientSecret>` against `azure_identity::ClientSecretCredential` doing the same
//! work in the same run, against the same MockEntra. Report ratios (ours / theirs), not
//! absolute times: see the README's "Benchmarks".
//!
//! Run: `cargo bench --bench cache --all-features`

#![allow(missing_docs)] // criterion's macros generate undocumented functions

mod support;

use support::Minted;

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::ClientOptions;
use azure_cross_tenant::testing::{MockApp, MockEntra};
use azure_cross_tenant::{CacheOptions, Cached, ClientSecret, TenantId};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const VAULT: &str = "https://vault.azure.net/.default";

struct World {
    entra: MockEntra,
    app: MockApp,
    secret: String,
    tenants: Vec<TenantId>,
}

impl World {
    async fn new(customers: usize) -> Self {
        let entra = MockEntra::start().await;
        let home = entra.add_tenant("provider.example");
        let app = entra.register_app(&home, "bench");
        let secret = entra.add_secret(&app);
        let mut tenants = Vec::new();
        for i in 0..customers {
            let t = entra.add_tenant(&format!("customer{i}.example"));
            entra.consent(&t, &app);
            tenants.push(t);
        }
        Self {
            entra,
            app,
            secret,
            tenants,
        }
    }

    fn ours(&self) -> Cached<ClientSecret> {
        Cached::new(
            ClientSecret::new(self.app.client_id(), &self.secret)
                .authority_host(self.entra.uri())
                .build()
                .unwrap(),
        )
    }

    fn theirs(&self, tenant: &TenantId) -> Arc<ClientSecretCredential> {
        let https = self.entra.uri().as_str().replacen("http://", "https://", 1);
        let mut cloud = azure_core::cloud::CustomConfiguration::default();
        cloud.authority_host = https;
        let options = ClientSecretCredentialOptions {
            client_options: ClientOptions {
                cloud: Some(Arc::new(cloud.into())),
                transport: Some(azure_cross_tenant::testing::loopback_transport()),
                ..Default::default()
            },
        };
        ClientSecretCredential::new(
            tenant.as_str(),
            self.app.client_id().to_owned(),
            Secret::new(self.secret.clone()),
            Some(options),
        )
        .unwrap()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn warm_hit(c: &mut Criterion) {
    let rt = runtime();
    let w = rt.block_on(World::new(1));
    let tenant = w.tenants[0].clone();
    let ours = w.ours();
    let theirs = w.theirs(&tenant);
    rt.block_on(async {
        ours.get_token(&tenant, &[VAULT]).await.unwrap();
        theirs.get_token(&[VAULT], None).await.unwrap();
    });

    let mut g = c.benchmark_group("warm_hit");
    g.bench_function("ours", |b| {
        b.to_async(&rt)
            .iter(|| async { ours.get_token(&tenant, &[VAULT]).await.unwrap() })
    });
    g.bench_function("azure_identity", |b| {
        b.to_async(&rt)
            .iter(|| async { theirs.get_token(&[VAULT], None).await.unwrap() })
    });

    // The same hit while the cache holds 10,000 tenants x 3 scopes.
    let scopes = [
        VAULT,
        "https://storage.azure.com/.default",
        "https://servicebus.azure.net/.default",
    ];
    let one = Cached::new(Minted);
    let full = Cached::with_options(Minted, CacheOptions::default().max_entries(40_000)).unwrap();
    let probe: TenantId = "probe.example".parse().unwrap();
    rt.block_on(async {
        one.get_token(&probe, &[VAULT]).await.unwrap();
        for i in 0..10_000 {
            let t: TenantId = format!("tenant{i}.example").parse().unwrap();
            for s in scopes {
                full.get_token(&t, &[s]).await.unwrap();
            }
        }
        full.get_token(&probe, &[VAULT]).await.unwrap();
    });
    assert!(full.stats().entries > 30_000);
    g.bench_function("ours_1_entry", |b| {
        b.to_async(&rt)
            .iter(|| async { one.get_token(&probe, &[VAULT]).await.unwrap() })
    });
    g.bench_function("ours_30000_entries", |b| {
        b.to_async(&rt)
            .iter(|| async { full.get_token(&probe, &[VAULT]).await.unwrap() })
    });
    g.finish();
}

fn parallel_cold_misses(c: &mut Criterion) {
    let rt = runtime();
    let w = rt.block_on(World::new(1));
    let tenant = w.tenants[0].clone();
    let resources: Vec<String> = (0..10)
        .map(|i| format!("https://api{i}.bench.example"))
        .collect();
    for r in &resources {
        w.entra.add_resource(&tenant, r);
    }
    let scopes: Vec<String> = resources.iter().map(|r| format!("{r}/.default")).collect();
    w.entra.set_latency(Duration::from_millis(50));

    let mut g = c.benchmark_group("parallel_cold_misses_10_scopes_50ms");
    g.sample_size(10);
    g.bench_function("ours", |b| {
        b.to_async(&rt).iter_batched(
            || w.ours(),
            |cache| {
                let (tenant, scopes) = (&tenant, &scopes);
                async move {
                    let calls = scopes.iter().map(|s| {
                        let cache = cache.clone();
                        let (t, s) = (tenant.clone(), s.clone());
                        tokio::spawn(async move { cache.get_token(&t, &[s.as_str()]).await })
                    });
                    for call in calls.collect::<Vec<_>>() {
                        call.await.unwrap().unwrap();
                    }
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("azure_identity", |b| {
        b.to_async(&rt).iter_batched(
            || w.theirs(&tenant),
            |cred| {
                let scopes = &scopes;
                async move {
                    let calls = scopes.iter().map(|s| {
                        let (cred, s) = (cred.clone(), s.clone());
                        tokio::spawn(async move { cred.get_token(&[s.as_str()], None).await })
                    });
                    for call in calls.collect::<Vec<_>>() {
                        call.await.unwrap().unwrap();
                    }
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn many_tenants(c: &mut Criterion) {
    let rt = runtime();
    let w = rt.block_on(World::new(1000));
    let tenants = Arc::new(w.tenants.clone());
    const WORKERS: usize = 8;

    let mut g = c.benchmark_group("first_token_from_1000_tenants_8_workers");
    g.sample_size(10);
    g.bench_function("ours", |b| {
        b.to_async(&rt).iter_batched(
            || w.ours(),
            |cache| {
                let tenants = tenants.clone();
                async move {
                    let workers = (0..WORKERS).map(|k| {
                        let (cache, tenants) = (cache.clone(), tenants.clone());
                        tokio::spawn(async move {
                            for t in tenants.iter().skip(k).step_by(WORKERS) {
                                cache.get_token(t, &[VAULT]).await.unwrap();
                            }
                        })
                    });
                    for worker in workers.collect::<Vec<_>>() {
                        worker.await.unwrap();
                    }
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("azure_identity", |b| {
        b.to_async(&rt).iter_batched(
            || Arc::new(tenants.iter().map(|t| w.theirs(t)).collect::<Vec<_>>()),
            |creds| async move {
                let workers = (0..WORKERS).map(|k| {
                    let creds = creds.clone();
                    tokio::spawn(async move {
                        for cred in creds.iter().skip(k).step_by(WORKERS) {
                            cred.get_token(&[VAULT], None).await.unwrap();
                        }
                    })
                });
                for worker in workers.collect::<Vec<_>>() {
                    worker.await.unwrap();
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, warm_hit, parallel_cold_misses, many_tenants);
criterion_main!(benches);

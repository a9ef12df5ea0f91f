//! `Cached<ClientSecret>` against `azure_identity::ClientSecretCredential` doing the same
//! work in the same run, against the same MockEntra; a 30,000-entry cache hit in a
//! random order beside a plain `HashMap` and moka alone doing the same lookups; and one
//! SDK call through azure_core's bearer policy on our `TenantCredential`, which the policy
//! asks per request, beside the same policy keeping its own copy of the token. Report
//! ratios (ours / theirs), not absolute times: see the README's "Benchmarks".
//!
//! Hits are timed per thread: 1 or 2 OS threads, each driving one task on its own
//! current-thread runtime, started together; the time per iteration is the aggregate
//! cost per hit (wall time / all hits).
//!
//! Run: `cargo bench -p azure-cross-tenant-benches --bench cache`

#![allow(missing_docs)] // criterion's macros generate undocumented functions

mod support;

use support::Minted;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::ClientOptions;
use azure_cross_tenant::{AccessToken, CacheOptions, Cached, ClientSecret, Scopes, TenantId};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mock_entra::{MockApp, MockEntra};

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
                transport: Some(mock_entra::loopback_transport()),
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

const STORAGE: &str = "https://storage.azure.com/.default";
const SERVICEBUS: &str = "https://servicebus.azure.net/.default";

/// Runs `hit(thread, i)` `iters` times in all, split over `threads` OS threads that start
/// together, each inside its own current-thread runtime (a task per thread), and returns
/// the wall time: divided by `iters` by criterion, that is the aggregate cost per hit.
fn parallel<'a, F>(runtimes: &[tokio::runtime::Runtime], iters: u64, hit: F) -> Duration
where
    F: Fn(usize, u64) -> std::pin::Pin<Box<dyn Future<Output = ()> + 'a>> + Sync,
{
    let threads = runtimes.len();
    let per = iters.div_ceil(threads as u64);
    let start = std::sync::Barrier::new(threads + 1);
    let done = std::sync::Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        for (t, rt) in runtimes.iter().enumerate() {
            let (hit, start, done) = (&hit, &start, &done);
            scope.spawn(move || {
                start.wait();
                rt.block_on(hit(t, per));
                done.wait();
            });
        }
        start.wait();
        // A benchmark measures real time; nothing here decides expiry.
        #[allow(clippy::disallowed_methods)]
        let began = std::time::Instant::now();
        done.wait();
        began.elapsed()
    })
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A precomputed random walk over `n` keys (xorshift), so the sequence costs nothing.
fn random_walk(n: usize) -> Vec<u32> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..1 << 16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as u32
        })
        .collect()
}

fn warm_hit(c: &mut Criterion) {
    let rt = runtime();
    let w = rt.block_on(World::new(2));
    let (a, b) = (w.tenants[0].clone(), w.tenants[1].clone());
    // Tenant A by one of its domains: the same entry, through the domain's known GUID.
    let a_domain: TenantId = "customer0.example".parse().unwrap();
    let ours = w.ours();
    let (theirs_a, theirs_b) = (w.theirs(&a), w.theirs(&b));
    rt.block_on(async {
        for t in [&a, &b, &a_domain] {
            ours.get_token(t, &[VAULT]).await.unwrap();
        }
        assert_eq!(
            w.entra.token_requests(),
            2,
            "one entry for A's GUID and domain"
        );
        theirs_a.get_token(&[VAULT], None).await.unwrap();
        theirs_b.get_token(&[VAULT], None).await.unwrap();
    });
    let one = [current_thread()];
    let two = [current_thread(), current_thread()];

    // References, so each task's `async move` block copies them.
    let (ours, a, b, theirs_a, theirs_b) = (&ours, &a, &b, &theirs_a, &theirs_b);
    let a_domain = &a_domain;
    let mut g = c.benchmark_group("hit");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("ours_1_task_1_key", |bch| {
        bch.iter_custom(|n| {
            parallel(&one, n, |_, per| {
                Box::pin(async move {
                    for _ in 0..per {
                        black_box(ours.get_token(a, &[VAULT]).await.unwrap());
                    }
                })
            })
        })
    });
    g.bench_function("azure_identity_1_task_1_key", |bch| {
        bch.iter_custom(|n| {
            parallel(&one, n, |_, per| {
                Box::pin(async move {
                    for _ in 0..per {
                        black_box(theirs_a.get_token(&[VAULT], None).await.unwrap());
                    }
                })
            })
        })
    });
    g.bench_function("ours_1_task_1_key_by_domain", |bch| {
        bch.iter_custom(|n| {
            parallel(&one, n, |_, per| {
                Box::pin(async move {
                    for _ in 0..per {
                        black_box(ours.get_token(a_domain, &[VAULT]).await.unwrap());
                    }
                })
            })
        })
    });
    g.bench_function("ours_get_if_fresh_1_task_1_key", |bch| {
        bch.iter_custom(|n| {
            parallel(&one, n, |_, per| {
                Box::pin(async move {
                    for _ in 0..per {
                        black_box(ours.get_if_fresh(a, &[VAULT]).unwrap());
                    }
                })
            })
        })
    });
    g.bench_function("ours_2_tasks_same_key", |bch| {
        bch.iter_custom(|n| {
            parallel(&two, n, |_, per| {
                Box::pin(async move {
                    for _ in 0..per {
                        black_box(ours.get_token(a, &[VAULT]).await.unwrap());
                    }
                })
            })
        })
    });
    g.bench_function("azure_identity_2_tasks_same_key", |bch| {
        bch.iter_custom(|n| {
            parallel(&two, n, |_, per| {
                Box::pin(async move {
                    for _ in 0..per {
                        black_box(theirs_a.get_token(&[VAULT], None).await.unwrap());
                    }
                })
            })
        })
    });
    g.bench_function("ours_2_tasks_2_tenants", |bch| {
        bch.iter_custom(|n| {
            parallel(&two, n, |t, per| {
                let tenant = if t == 0 { a } else { b };
                Box::pin(async move {
                    for _ in 0..per {
                        black_box(ours.get_token(tenant, &[VAULT]).await.unwrap());
                    }
                })
            })
        })
    });
    g.bench_function("azure_identity_2_tasks_2_tenants", |bch| {
        bch.iter_custom(|n| {
            parallel(&two, n, |t, per| {
                let cred = if t == 0 { theirs_a } else { theirs_b };
                Box::pin(async move {
                    for _ in 0..per {
                        black_box(cred.get_token(&[VAULT], None).await.unwrap());
                    }
                })
            })
        })
    });
    g.finish();
}

/// 10,000 tenants x 3 scopes cached, hit in a precomputed random order, beside the same
/// lookups in a plain `std::collections::HashMap` (the memory-latency floor of this
/// machine for these keys) and in moka alone.
fn fleet_hit(c: &mut Criterion) {
    let rt = runtime();
    let scopes = [VAULT, STORAGE, SERVICEBUS];
    let keys: Vec<(TenantId, &str)> = (0..10_000)
        .flat_map(|i| {
            let t: TenantId = format!("{i:08x}-0000-4000-8000-00000000beef")
                .parse()
                .unwrap();
            scopes.map(move |s| (t.clone(), s))
        })
        .collect();
    let ours = Cached::with_options(Minted, CacheOptions::default().max_entries(40_000)).unwrap();
    let mut plain: HashMap<(TenantId, Scopes), AccessToken> = HashMap::new();
    let moka: moka::sync::Cache<(TenantId, Scopes), AccessToken> = moka::sync::Cache::new(40_000);
    rt.block_on(async {
        for (t, s) in &keys {
            let token = ours.get_token(t, &[s]).await.unwrap();
            let key = (t.clone(), Scopes::parse(&[s]).unwrap());
            plain.insert(key.clone(), token.clone());
            moka.insert(key, token);
        }
    });
    assert_eq!(ours.stats().entries, 30_000);
    let owned: Vec<(TenantId, Scopes)> = keys
        .iter()
        .map(|(t, s)| (t.clone(), Scopes::parse(&[s]).unwrap()))
        .collect();
    let walk = random_walk(keys.len());
    let at = |t: usize, i: u64| walk[(i as usize + t * 30_011) % walk.len()] as usize;
    let one = [current_thread()];
    let two = [current_thread(), current_thread()];

    let mut g = c.benchmark_group("hit_30000_entries_random_keys");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    for (name, runtimes) in [("1_task", &one[..]), ("2_tasks", &two[..])] {
        g.bench_function(format!("ours_{name}"), |bch| {
            bch.iter_custom(|n| {
                parallel(runtimes, n, |t, per| {
                    let (keys, ours) = (&keys, &ours);
                    Box::pin(async move {
                        for i in 0..per {
                            let (tenant, scope) = &keys[at(t, i)];
                            black_box(ours.get_token(tenant, &[scope]).await.unwrap());
                        }
                    })
                })
            })
        });
        g.bench_function(format!("control_std_hashmap_{name}"), |bch| {
            bch.iter_custom(|n| {
                parallel(runtimes, n, |t, per| {
                    let (owned, plain) = (&owned, &plain);
                    Box::pin(async move {
                        for i in 0..per {
                            black_box(plain.get(&owned[at(t, i)]).unwrap().clone());
                        }
                    })
                })
            })
        });
        g.bench_function(format!("moka_alone_{name}"), |bch| {
            bch.iter_custom(|n| {
                parallel(runtimes, n, |t, per| {
                    let (owned, moka) = (&owned, &moka);
                    Box::pin(async move {
                        for i in 0..per {
                            black_box(moka.get(&owned[at(t, i)]).unwrap());
                        }
                    })
                })
            })
        });
    }
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

/// A transport answering every request at once from memory, so an SDK call costs its
/// pipeline only.
#[derive(Debug)]
struct Answering;

#[async_trait::async_trait]
impl azure_core::http::HttpClient for Answering {
    async fn execute_request(
        &self,
        _request: &azure_core::http::Request,
    ) -> azure_core::Result<azure_core::http::AsyncRawResponse> {
        Ok(azure_core::http::AsyncRawResponse::from_bytes(
            azure_core::http::StatusCode::Ok,
            azure_core::http::headers::Headers::new(),
            &b"{}"[..],
        ))
    }
}

/// One request through an SDK client's pipeline (its bearer policy on `credential`, then
/// a transport answering from memory), as every `azure_core` client sends it.
fn sdk_pipeline(credential: Arc<dyn TokenCredential>) -> azure_core::http::Pipeline {
    let bearer =
        azure_core::http::policies::auth::BearerTokenAuthorizationPolicy::new(credential, [VAULT]);
    azure_core::http::Pipeline::new(
        None,
        None,
        ClientOptions {
            transport: Some(azure_core::http::Transport::new(Arc::new(Answering))),
            ..Default::default()
        },
        Vec::new(),
        vec![Arc::new(bearer)],
        None,
    )
}

async fn sdk_request(pipeline: &azure_core::http::Pipeline, url: &azure_core::http::Url) {
    let mut request = azure_core::http::Request::new(url.clone(), azure_core::http::Method::Get);
    let ctx = azure_core::http::Context::new();
    black_box(pipeline.send(&ctx, &mut request, None).await.unwrap());
}

fn sdk_call(c: &mut Criterion) {
    use azure_cross_tenant::TenantCredentialExt;
    let rt = runtime();
    let world = rt.block_on(World::new(1));
    let tenant = world.tenants[0].clone();
    let ours = world.ours();
    let per_call = sdk_pipeline(ours.for_tenant(tenant.clone()));
    let kept = sdk_pipeline(ours.for_tenant(tenant.clone()).reporting_token_expiry());
    let theirs = sdk_pipeline(world.theirs(&tenant));
    let url: azure_core::http::Url = "https://fabrikam.vault.azure.net/secrets/db?api-version=7.6"
        .parse()
        .unwrap();
    let call = |pipeline| sdk_request(pipeline, &url);
    let ct = current_thread();
    for pipeline in [&per_call, &kept, &theirs] {
        ct.block_on(call(pipeline));
    }

    let mut g = c.benchmark_group("sdk_call");
    g.bench_function("ours_asked_per_request", |b| {
        b.iter(|| ct.block_on(call(&per_call)))
    });
    g.bench_function("ours_policy_keeps_the_token", |b| {
        b.iter(|| ct.block_on(call(&kept)))
    });
    g.bench_function("azure_identity_policy_keeps_the_token", |b| {
        b.iter(|| ct.block_on(call(&theirs)))
    });
    g.finish();
    drop(world);
}

criterion_group!(
    benches,
    warm_hit,
    sdk_call,
    fleet_hit,
    parallel_cold_misses,
    many_tenants
);
criterion_main!(benches);

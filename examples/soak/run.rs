//! One soak run: the world, the replicas, the callers and the schedule, then the report.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use azure_cross_tenant::{
    CacheOptions, Cached, ClientSecret, RedisStore, SealingKeys, SharedCache, Sleeper, TenantId,
    TokenValidator, TokioSleeper,
};
use mock_entra::{MockApp, MockEntra};

use crate::Settings;
use crate::caller::{Caller, Counting, RESOURCES, Replica, now};
use crate::redis::Redis;
use crate::report::{Outcome, Report, report};
use crate::schedule::{self, PHASES};
use crate::tally::Tally;

/// Mock Entra with the provider's app and `n` consented customer tenants.
struct World {
    entra: MockEntra,
    app: MockApp,
    secret: String,
    tenants: Vec<TenantId>,
}

async fn world(settings: &Settings) -> World {
    let entra = MockEntra::start().await;
    entra.set_token_lifetime(settings.lifetime);
    let home = entra.add_tenant("provider.example");
    let app = entra.register_app(&home, "soak");
    let secret = entra.add_secret(&app);
    let tenants = (0..settings.tenants)
        .map(|i| {
            let t = entra.add_tenant(&format!("t{i}.example"));
            entra.consent(&t, &app);
            t
        })
        .collect();
    World {
        entra,
        app,
        secret,
        tenants,
    }
}

/// `n` replicas, each with its own credential, memory and Redis connection.
fn fleet(n: usize, w: &World, redis: &Redis, tally: &Arc<Tally>) -> Vec<Replica> {
    let index: Arc<HashMap<TenantId, usize>> = Arc::new(
        w.tenants
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, t)| (t, i))
            .collect(),
    );
    (0..n)
        .map(|_| {
            let store = if redis.cluster {
                RedisStore::cluster(redis.urls())
            } else {
                RedisStore::new(&redis.urls()[0])
            }
            .expect("a valid Redis URL");
            let inner = ClientSecret::new(w.app.client_id(), &w.secret)
                .authority_host(w.entra.uri())
                .build()
                .expect("a valid credential");
            let provider = Counting {
                inner,
                index: index.clone(),
                tally: tally.clone(),
            };
            let keys = SealingKeys::new("soak", [0x5a; 32]).expect("a valid key");
            let shared = SharedCache::new(Arc::new(store), keys);
            Cached::with_options(provider, CacheOptions::default().shared(shared))
                .expect("valid cache options")
        })
        .collect()
}

/// Counts panics anywhere in the process (a violation), then lets the default hook print.
fn count_panics() -> Arc<AtomicU64> {
    let panics = Arc::new(AtomicU64::new(0));
    let counter = panics.clone();
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counter.fetch_add(1, Ordering::Relaxed);
        default(info);
    }));
    panics
}

/// Samples the entries all replicas hold, once a second, until `stop`.
fn sample_entries(
    replicas: Arc<Vec<Replica>>,
    stop: Arc<AtomicBool>,
) -> (Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let peak = Arc::new(AtomicU64::new(0));
    let sampled = peak.clone();
    let task = tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let entries: u64 = replicas.iter().map(|r| r.stats().entries).sum();
            sampled.fetch_max(entries, Ordering::Relaxed);
            TokioSleeper::default().sleep(Duration::from_secs(1)).await;
        }
    });
    (peak, task)
}

/// Runs the whole soak and returns its report.
pub async fn soak(settings: Settings) -> Report {
    let panics = count_panics();
    let mut redis = if settings.cluster {
        Redis::cluster().await
    } else {
        Redis::single().await
    };
    let w = world(&settings).await;
    let tally = Arc::new(Tally::new(w.tenants.len(), PHASES.len()));
    let replicas = Arc::new(fleet(settings.replicas, &w, &redis, &tally));
    let validator = Arc::new(
        TokenValidator::builder(w.entra.cloud())
            .refetch_interval(Duration::from_secs(1))
            .build()
            .expect("a validator"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let tenants = Arc::new(w.tenants.clone());
    let started = now();
    let mut callers = tokio::task::JoinSet::new();
    for seed in 0..settings.callers as u64 {
        let caller = Caller {
            replicas: replicas.clone(),
            tenants: tenants.clone(),
            scopes: RESOURCES[..settings.scopes]
                .iter()
                .map(|r| format!("{r}/.default"))
                .collect(),
            validator: validator.clone(),
            client_id: w.app.client_id().to_owned(),
            tally: tally.clone(),
            stop: stop.clone(),
        };
        callers.spawn(caller.run(seed + 1));
    }
    let (peak_entries, sampler) = sample_entries(replicas.clone(), stop.clone());
    // What a SaaS does when it hears a tenant was offboarded.
    let offboarding = replicas[0].clone();
    let on_revoke = move |t: TenantId| {
        let replica = offboarding.clone();
        tokio::spawn(async move { replica.invalidate_tenant(&t).await })
    };
    let schedule = schedule::World {
        entra: &w.entra,
        app: &w.app,
        tenants: &w.tenants,
        redis: &mut redis,
        tally: &tally,
        on_revoke: &on_revoke,
    };
    schedule::run(schedule, settings.duration).await;
    stop.store(true, Ordering::Relaxed);
    while callers.join_next().await.is_some() {}
    let _ = sampler.await;
    let elapsed = now().duration_since(started).unwrap_or_default();
    for r in replicas.iter() {
        r.wait_for_refreshes().await;
    }
    let stats = replicas.iter().map(Replica::stats).collect();
    let entra_requests = w.entra.token_requests();
    drop((on_revoke, replicas, validator, w, redis));
    let outcome = Outcome {
        stats,
        elapsed,
        entra_requests,
        tasks_left: tasks_left_running().await,
        panics: panics.load(Ordering::Relaxed),
        peak_entries: peak_entries.load(Ordering::Relaxed),
    };
    report(&settings, &tally, &outcome)
}

/// Tasks still alive once everything is dropped (given a few seconds to wind down).
async fn tasks_left_running() -> usize {
    let metrics = tokio::runtime::Handle::current().metrics();
    for _ in 0..100 {
        if metrics.num_alive_tasks() == 0 {
            return 0;
        }
        TokioSleeper::default()
            .sleep(Duration::from_millis(100))
            .await;
    }
    metrics.num_alive_tasks()
}

//! One soak run: the world, the replicas, the callers, the checks and the report.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use azure_cross_tenant::testing::MockEntra;
use azure_cross_tenant::{
    AccessToken, CacheOptions, CacheStats, Cached, ClientSecret, Clock, Error, Expectations,
    RedisStore, SealingKeys, SharedCache, Sleeper, SystemClock, TenantCredentialProvider, TenantId,
    TokenValidator, TokioSleeper, ValidationError,
};

use crate::Settings;
use crate::redis::Redis;
use crate::schedule::{self, PHASES};
use crate::tally::{Kind, Tally};

const RESOURCES: [&str; 3] = [
    "https://vault.azure.net",
    "https://storage.azure.com",
    "https://management.azure.com",
];

pub struct Report {
    pub table: String,
    pub violations: u64,
}

/// A credential that counts what it asks Entra, per tenant and phase.
struct Counting {
    inner: ClientSecret,
    index: Arc<HashMap<TenantId, usize>>,
    tally: Arc<Tally>,
}

impl std::fmt::Debug for Counting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counting")
            .field("inner", &self.inner)
            .finish()
    }
}

#[async_trait::async_trait]
impl TenantCredentialProvider for Counting {
    fn client_id(&self) -> &str {
        self.inner.client_id()
    }

    fn authority_host(&self) -> &url::Url {
        self.inner.authority_host()
    }

    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        if let Some(&i) = self.index.get(tenant) {
            self.tally.note_request(i);
        }
        self.inner.get_token(tenant, scopes).await
    }
}

type Replica = Cached<Counting>;

fn now() -> SystemTime {
    SystemClock::default().now()
}

/// xorshift64*: callers need cheap, independent, reproducible choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Log-uniform in `0..n`: a few tenants are busy, most are quiet, all are asked.
    fn skewed(&mut self, n: usize) -> usize {
        (((n as f64).ln() * self.unit()).exp() as usize)
            .saturating_sub(1)
            .min(n - 1)
    }
}

/// Whether `error` for tenant `i` is one the schedule causes.
fn scheduled(error: &Error, i: usize) -> bool {
    match (Kind::of(i), error) {
        (Kind::Throttled, Error::Throttled { .. }) => true,
        (Kind::Revoked, Error::NotConsented { .. }) => true,
        (Kind::ServerErrors, e) => e.is_retryable() || matches!(e, Error::Authority(_)),
        _ => false,
    }
}

/// What the cache promises about a token it hands out at `asked` (the time before the
/// call): at least the expiry margin of its whole lifetime left.
fn inside_margin(token: &AccessToken, asked: SystemTime) -> bool {
    let issued = token.issued_on().unwrap_or(asked);
    let lifetime = token
        .expires_on()
        .duration_since(issued)
        .unwrap_or_default();
    let margin = Duration::from_secs(5 * 60).min(lifetime / 4);
    token.expires_on().duration_since(asked).unwrap_or_default() <= margin
}

/// Calls `get_token`, timing it, and telling a hit (ready at the first poll: no I/O)
/// from a miss.
async fn timed_get(
    replica: &Replica,
    tenant: &TenantId,
    scope: &str,
    tally: &Tally,
) -> Result<AccessToken, Error> {
    let scopes = [scope];
    let start = now();
    let mut call = std::pin::pin!(replica.get_token(tenant, &scopes));
    let first = call.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    let (result, hit) = match first {
        Poll::Ready(r) => (r, true),
        Poll::Pending => (call.await, false),
    };
    let took = now().duration_since(start).unwrap_or_default();
    if hit { &tally.hits } else { &tally.misses }.record(took);
    result
}

struct Caller {
    replicas: Arc<Vec<Replica>>,
    tenants: Arc<Vec<TenantId>>,
    scopes: Vec<String>,
    validator: Arc<TokenValidator>,
    client_id: String,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
}

impl Caller {
    async fn run(self, seed: u64) {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        while !self.stop.load(Ordering::Relaxed) {
            let r = &self.replicas[rng.next() as usize % self.replicas.len()];
            let (i, s) = (
                rng.skewed(self.tenants.len()),
                rng.next() as usize % self.scopes.len(),
            );
            self.tally.note_touched(i, s);
            self.one(r, i, s).await;
            // Hits complete without suspending: let the mock and Redis run.
            tokio::task::yield_now().await;
        }
    }

    async fn one(&self, replica: &Replica, i: usize, s: usize) {
        let tally = &self.tally;
        let tenant = &self.tenants[i];
        tally.calls.fetch_add(1, Ordering::Relaxed);
        let asked = now();
        let token = match timed_get(replica, tenant, &self.scopes[s], tally).await {
            Ok(t) => t,
            Err(e) if scheduled(&e, i) => {
                tally.scheduled_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => return tally.unexpected(format!("tenant #{i} ({:?}): {e}", Kind::of(i))),
        };
        let expect = Expectations::new(tenant.clone())
            .audience(RESOURCES[s])
            .app_id(self.client_id.clone());
        match self.validator.validate(token.secret(), &expect).await {
            Ok(claims) => {
                let now_s = now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                if claims.exp.is_none_or(|exp| exp <= now_s) || token.is_expired_at(now()) {
                    tally.expired.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(ValidationError::WrongTenant { .. } | ValidationError::WrongAudience { .. }) => {
                tally
                    .wrong_tenant_or_audience
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(ValidationError::Expired { .. }) => {
                tally.expired.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tally.invalid.fetch_add(1, Ordering::Relaxed);
                tally.unexpected(format!("tenant #{i}: token did not validate: {e}"));
            }
        }
        if inside_margin(&token, asked) {
            tally.inside_margin.fetch_add(1, Ordering::Relaxed);
        }
        tally.checked.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs the whole soak and returns its report.
pub async fn soak(settings: Settings) -> Report {
    let panics = Arc::new(AtomicU64::new(0));
    {
        let panics = panics.clone();
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            panics.fetch_add(1, Ordering::Relaxed);
            default(info);
        }));
    }
    let mut redis = if settings.cluster {
        Redis::cluster().await
    } else {
        Redis::single().await
    };
    let entra = MockEntra::start().await;
    entra.set_token_lifetime(settings.lifetime);
    let home = entra.add_tenant("provider.example");
    let app = entra.register_app(&home, "soak");
    let secret = entra.add_secret(&app);
    let tenants: Vec<TenantId> = (0..settings.tenants)
        .map(|i| {
            let t = entra.add_tenant(&format!("t{i}.example"));
            entra.consent(&t, &app);
            t
        })
        .collect();
    let index: Arc<HashMap<TenantId, usize>> = Arc::new(
        tenants
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, t)| (t, i))
            .collect(),
    );
    let tally = Arc::new(Tally::new(tenants.len(), PHASES.len()));
    let keys = || SealingKeys::new("soak", [0x5a; 32]).expect("a valid key");
    let replicas: Arc<Vec<Replica>> = Arc::new(
        (0..settings.replicas)
            .map(|_| {
                let store = if redis.cluster {
                    RedisStore::cluster(redis.urls())
                } else {
                    RedisStore::new(&redis.urls()[0])
                }
                .expect("a valid Redis URL");
                let inner = ClientSecret::new(app.client_id(), &secret)
                    .authority_host(entra.uri())
                    .build()
                    .expect("a valid credential");
                let provider = Counting {
                    inner,
                    index: index.clone(),
                    tally: tally.clone(),
                };
                let shared = SharedCache::new(Arc::new(store), keys());
                Cached::with_options(provider, CacheOptions::default().shared(shared))
                    .expect("valid cache options")
            })
            .collect(),
    );
    let validator = Arc::new(
        TokenValidator::builder(entra.cloud())
            .refetch_interval(Duration::from_secs(1))
            .build()
            .expect("a validator"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let tenants = Arc::new(tenants);
    let scopes: Vec<String> = RESOURCES[..settings.scopes]
        .iter()
        .map(|r| format!("{r}/.default"))
        .collect();
    let started = now();
    let mut callers = tokio::task::JoinSet::new();
    for seed in 0..settings.callers as u64 {
        let caller = Caller {
            replicas: replicas.clone(),
            tenants: tenants.clone(),
            scopes: scopes.clone(),
            validator: validator.clone(),
            client_id: app.client_id().to_owned(),
            tally: tally.clone(),
            stop: stop.clone(),
        };
        callers.spawn(caller.run(seed + 1));
    }
    let peak_entries = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (replicas, peak, stop) = (replicas.clone(), peak_entries.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let entries: u64 = replicas.iter().map(|r| r.stats().entries).sum();
                peak.fetch_max(entries, Ordering::Relaxed);
                TokioSleeper::default().sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let on_revoke = {
        let replica = replicas[0].clone();
        move |t: TenantId| {
            let replica = replica.clone();
            tokio::spawn(async move { replica.invalidate_tenant(&t).await })
        }
    };
    schedule::run(
        schedule::World {
            entra: &entra,
            app: &app,
            tenants: &tenants,
            redis: &mut redis,
            tally: &tally,
            on_revoke: &on_revoke,
        },
        settings.duration,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    while callers.join_next().await.is_some() {}
    let _ = sampler.await;
    let elapsed = now().duration_since(started).unwrap_or_default();
    for r in replicas.iter() {
        r.wait_for_refreshes().await;
    }
    let stats: Vec<CacheStats> = replicas.iter().map(Replica::stats).collect();
    let entra_requests = entra.token_requests();
    drop(on_revoke);
    drop(replicas);
    drop(validator);
    drop(entra);
    drop(redis);
    let left = tasks_left_running().await;
    crate::run::report(
        &settings,
        &tally,
        &stats,
        elapsed,
        entra_requests,
        left,
        &panics,
        &peak_entries,
    )
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

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn ms(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.1} us", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    s: &Settings,
    tally: &Tally,
    stats: &[CacheStats],
    elapsed: Duration,
    entra_requests: usize,
    tasks_left: usize,
    panics: &AtomicU64,
    peak_entries: &AtomicU64,
) -> Report {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut t = String::new();
    let backend = if s.cluster {
        "a 3-master Redis Cluster"
    } else {
        "one Redis node"
    };
    let _ = writeln!(
        t,
        "\nsoak: {} tenants x {} scopes, {} replicas sharing {backend}, {} callers, {:.0} s, \
         {} s token lifetime\n",
        s.tenants,
        s.scopes,
        s.replicas,
        s.callers,
        elapsed.as_secs_f64(),
        s.lifetime.as_secs()
    );
    let violations = get(&tally.wrong_tenant_or_audience)
        + get(&tally.expired)
        + get(&tally.inside_margin)
        + get(&tally.unexpected_errors)
        + get(panics)
        + tasks_left as u64;
    let rows: [(&str, u64, &str); 8] = [
        ("get_token calls", get(&tally.calls), ""),
        (
            "tokens checked (signature, tid, aud, app, exp)",
            get(&tally.checked),
            "",
        ),
        (
            "wrong tenant or audience",
            get(&tally.wrong_tenant_or_audience),
            "must be 0",
        ),
        ("expired when served", get(&tally.expired), "must be 0"),
        (
            "served inside the expiry margin",
            get(&tally.inside_margin),
            "must be 0",
        ),
        (
            "errors the schedule caused",
            get(&tally.scheduled_errors),
            "",
        ),
        (
            "other errors (incl. tokens that did not validate)",
            get(&tally.unexpected_errors),
            "must be 0",
        ),
        ("panics", get(panics), "must be 0"),
    ];
    for (name, n, note) in rows {
        let _ = writeln!(t, "| {name:<50} | {n:>12} | {note:<9} |");
    }
    let _ = writeln!(
        t,
        "| {:<50} | {:>12} | {:<9} |",
        "tasks left running", tasks_left, "must be 0"
    );
    if let Some(first) = &*tally
        .first_unexpected
        .lock()
        .unwrap_or_else(|p| p.into_inner())
    {
        let _ = writeln!(t, "\nfirst unexpected error: {first}");
    }
    report_requests(&mut t, s, tally, elapsed, entra_requests);
    let _ = writeln!(
        t,
        "\n| get_token latency | calls | p50 | p99 | max |\n|---|---:|---:|---:|---:|"
    );
    for (name, h) in [
        ("hit (L1)", &tally.hits),
        ("miss (L2, lease, Entra)", &tally.misses),
    ] {
        let _ = writeln!(
            t,
            "| {name} | {} | {} | {} | {} |",
            h.count(),
            ms(h.quantile(0.5)),
            ms(h.quantile(0.99)),
            ms(h.max())
        );
    }
    let sum = |f: fn(&CacheStats) -> u64| stats.iter().map(f).sum::<u64>();
    let _ = writeln!(
        t,
        "\npeak RSS {:.0} MiB; peak entries {} (all replicas); L2 hits {}, misses {}, errors {}, \
         open failures {}; refreshes {} ({} failed); evictions {}",
        peak_rss_mib(),
        get(peak_entries),
        sum(|s| s.l2_hits),
        sum(|s| s.l2_misses),
        sum(|s| s.l2_errors),
        sum(|s| s.l2_open_failures),
        sum(|s| s.refreshes),
        sum(|s| s.refresh_failures),
        sum(|s| s.evictions),
    );
    Report {
        table: t,
        violations,
    }
}

fn report_requests(t: &mut String, s: &Settings, tally: &Tally, elapsed: Duration, entra: usize) {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let lifetimes = elapsed.as_secs_f64() / s.lifetime.as_secs_f64();
    let _ = writeln!(
        t,
        "\ntoken requests to Entra: {entra} (including retries); the minimum is one per key \
         asked for per token lifetime ({lifetimes:.1} lifetimes elapsed)\n\n\
         | tenants | keys asked for | requests | minimum | ratio |\n|---|---:|---:|---:|---:|"
    );
    for kind in Kind::ALL {
        let (mut keys, mut requests) = (0u64, 0u64);
        for i in (0..s.tenants).filter(|i| Kind::of(*i) == kind) {
            keys += u64::from(get(&tally.touched[i]).count_ones());
            requests += get(&tally.requests[i]);
        }
        let minimum = (keys as f64 * lifetimes.max(1.0)).ceil();
        let _ = writeln!(
            t,
            "| {} | {keys} | {requests} | {minimum:.0} | {:.2} |",
            kind.name(),
            requests as f64 / minimum.max(1.0)
        );
    }
    let _ = writeln!(
        t,
        "\n| phase | from | requests | per second |\n|---|---:|---:|---:|"
    );
    let total = elapsed.as_secs_f64();
    for (i, (at, name)) in PHASES.iter().enumerate() {
        let until = PHASES.get(i + 1).map_or(1.0, |p| p.0);
        let secs = (until - at) * total;
        let n = get(&tally.by_phase[i]);
        let _ = writeln!(
            t,
            "| {name} | {:.0} s | {n} | {:.1} |",
            at * total,
            n as f64 / secs.max(1.0)
        );
    }
}

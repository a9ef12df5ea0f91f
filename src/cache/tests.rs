//! The read index and the bounded store against a plain model: after any sequence of
//! hits, misses, evictions, refreshes and invalidations, the two maps hold the same live
//! entries, stay under the bound, and never serve a token that is older than one already
//! served, invalidated, or past its margin.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use proptest::prelude::*;

use super::*;
use crate::clock::Clock;
use crate::scope::Scopes;

#[derive(Debug)]
struct TestClock(Mutex<SystemTime>);

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

/// Mints numbered tokens naming their key, valid for `life` on the test clock.
#[derive(Debug)]
struct Mint {
    clock: Arc<TestClock>,
    serial: AtomicU64,
    life: Duration,
}

#[async_trait::async_trait]
impl TenantCredentialProvider for Mint {
    fn client_id(&self) -> &str {
        "00000000-0000-0000-0000-00000000000a"
    }
    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        let scopes = Scopes::parse(scopes)?;
        tokio::task::yield_now().await;
        let n = self.serial.fetch_add(1, Ordering::SeqCst);
        let now = self.clock.now();
        Ok(AccessToken::new(
            format!("{tenant}|{scopes}|{n:08}"),
            now + self.life,
            tenant.clone(),
            scopes,
        )
        .with_refresh_on(now + self.life / 2))
    }
}

const SCOPES: [&str; 2] = [
    "https://vault.azure.net/.default",
    "https://storage.azure.com/.default",
];

fn tenant(i: usize) -> TenantId {
    format!("t{i}.example").parse().unwrap()
}

fn serial(token: &AccessToken) -> u64 {
    token.secret().rsplit('|').next().unwrap().parse().unwrap()
}

fn cache(max_entries: u64, refresh: bool, life: Duration) -> (Cached<Mint>, Arc<TestClock>) {
    let clock = Arc::new(TestClock(Mutex::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    )));
    let cache = Cached::with_options(
        Mint {
            clock: clock.clone(),
            serial: AtomicU64::new(0),
            life,
        },
        CacheOptions::default()
            .max_entries(max_entries)
            .refresh(refresh)
            .jitter(Duration::ZERO)
            .expiry_skew(Duration::from_secs(60))
            .clock(clock.clone()),
    )
    .unwrap();
    (cache, clock)
}

/// The index and the store hold the same entries (pointer-equal), within the bound.
fn assert_consistent(cache: &Cached<Mint>) {
    let inner = &cache.inner;
    inner.tokens.run_pending_tasks();
    let store: HashMap<Key, Arc<Entry>> = inner
        .tokens
        .iter()
        .map(|(k, v)| ((*k).clone(), v))
        .collect();
    let guard = inner.index.guard();
    let index: HashMap<Key, Arc<Entry>> = inner
        .index
        .entries(&guard)
        .map(|i| {
            // What a hit serves is the entry's own token.
            assert!(i.slot.token.ptr_eq(&i.slot.entry.token));
            (i.key.clone(), i.slot.entry.clone())
        })
        .collect();
    assert!(
        index.len() as u64 <= inner.options.max_entries,
        "index holds {} entries, over the bound",
        index.len()
    );
    assert_eq!(index.len(), store.len(), "index and store disagree on size");
    for (key, entry) in &index {
        let held = store
            .get(key)
            .expect("an indexed entry the store does not hold");
        assert!(
            Arc::ptr_eq(held, entry),
            "index and store hold different entries"
        );
        assert_eq!(entry.token.tenant(), &key.tenant);
        assert_eq!(entry.token.scopes(), &key.scopes);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Get(usize, usize),
    Invalidate(usize, usize),
    InvalidateIfCurrent(usize, usize, bool),
    InvalidateTenant(usize),
    InvalidateAll,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..6usize, 0..2usize).prop_map(|(t, s)| Op::Get(t, s)),
        1 => (0..6usize, 0..2usize).prop_map(|(t, s)| Op::Invalidate(t, s)),
        1 => (0..6usize, 0..2usize, any::<bool>()).prop_map(|(t, s, c)| Op::InvalidateIfCurrent(t, s, c)),
        1 => (0..6usize).prop_map(Op::InvalidateTenant),
        1 => Just(Op::InvalidateAll),
        2 => (1..400u64).prop_map(Op::Advance),
    ]
}

/// What the model knows of one key: the last token served and whether it may still be.
#[derive(Default)]
struct Seen {
    last: Option<AccessToken>,
    /// The last token was invalidated: the next one served must be newer.
    dropped: bool,
}

fn run(ops: Vec<Op>, refresh: bool) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (cache, clock) = cache(4, refresh, Duration::from_secs(900));
        let mut model: HashMap<(usize, usize), Seen> = HashMap::new();
        let mut served: HashSet<String> = HashSet::new();
        for op in ops {
            match op {
                Op::Get(t, s) => {
                    let token = cache.get_token(&tenant(t), &[SCOPES[s]]).await.unwrap();
                    let now = clock.now();
                    prop_assert_eq!(token.tenant(), &tenant(t));
                    prop_assert_eq!(token.scopes().as_str(), SCOPES[s]);
                    prop_assert!(
                        token.expires_on() - Duration::from_secs(60) > now,
                        "served inside its margin"
                    );
                    let seen = model.entry((t, s)).or_default();
                    match &seen.last {
                        Some(last) if last.ptr_eq(&token) => {
                            prop_assert!(!seen.dropped, "served an invalidated token");
                        }
                        Some(last) => {
                            prop_assert!(serial(&token) > serial(last), "served an older token");
                            prop_assert!(
                                !served.contains(token.secret()),
                                "served a token again after another"
                            );
                        }
                        None => {}
                    }
                    served.insert(token.secret().to_owned());
                    *seen = Seen {
                        last: Some(token),
                        dropped: false,
                    };
                }
                Op::Invalidate(t, s) => {
                    cache.invalidate(&tenant(t), &[SCOPES[s]]).await;
                    model.entry((t, s)).or_default().dropped = true;
                }
                Op::InvalidateIfCurrent(t, s, current) => {
                    let seen = model.entry((t, s)).or_default();
                    if let Some(last) = &seen.last {
                        let reported = if current {
                            last.clone()
                        } else {
                            AccessToken::new(
                                "stale",
                                last.expires_on(),
                                tenant(t),
                                last.scopes().clone(),
                            )
                        };
                        cache
                            .invalidate_if_current(&tenant(t), &[SCOPES[s]], &reported)
                            .await;
                        if current {
                            seen.dropped = true;
                        }
                    }
                }
                Op::InvalidateTenant(t) => {
                    cache.invalidate_tenant(&tenant(t)).await;
                    for s in 0..2 {
                        model.entry((t, s)).or_default().dropped = true;
                    }
                }
                Op::InvalidateAll => {
                    cache.invalidate_all().await;
                    for seen in model.values_mut() {
                        seen.dropped = true;
                    }
                }
                Op::Advance(secs) => clock.advance(Duration::from_secs(secs)),
            }
            cache.wait_for_refreshes().await;
            assert_consistent(&cache);
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn index_and_store_agree_with_a_model_under_evictions(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops, false)?;
    }

    #[test]
    fn index_and_store_agree_with_a_model_under_evictions_and_refreshes(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops, true)?;
    }
}

/// Hits, misses, refreshes, evictions and invalidations from many tasks on two threads
/// at once, on a cache far smaller than the keys in use: every token served is for the
/// key asked and inside its margin; after a task's invalidation returns, that task is
/// never served a token minted before it started (nor the token it reported with
/// `invalidate_if_current`); afterwards the index and the store agree and no flight is
/// left behind.
#[test]
fn concurrent_hits_evictions_refreshes_and_invalidations_keep_the_invariants() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // 40 s tokens: a 10 s margin, due for refresh at 20 s.
        let (cache, clock) = cache(6, true, Duration::from_secs(40));
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..8u64 {
            let (cache, clock) = (cache.clone(), clock.clone());
            tasks.spawn(async move {
                let minted = || cache.provider().serial.load(Ordering::SeqCst);
                // Per key: tokens minted before this serial must not be served any more.
                let mut floor: HashMap<(usize, usize), u64> = HashMap::new();
                let mut reported: HashSet<String> = HashSet::new();
                let mut rng = task.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for _ in 0..3_000 {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let (t, s) = ((rng % 5) as usize, ((rng >> 8) % 2) as usize);
                    match (rng >> 16) % 100 {
                        0..=84 => {
                            let before = clock.now();
                            let token = cache.get_token(&tenant(t), &[SCOPES[s]]).await.unwrap();
                            assert_eq!(token.tenant(), &tenant(t));
                            assert_eq!(token.scopes().as_str(), SCOPES[s]);
                            assert!(token.expires_on() - Duration::from_secs(10) > before);
                            let n = serial(&token);
                            let min = floor.get(&(t, s)).copied().unwrap_or(0);
                            assert!(
                                n >= min,
                                "{t}/{s}: served {n}, minted before an invalidation at {min}"
                            );
                            assert!(
                                !reported.contains(token.secret()),
                                "served a token reported with invalidate_if_current"
                            );
                        }
                        85..=89 => {
                            if let Some(token) = cache.get_if_fresh(&tenant(t), &[SCOPES[s]]) {
                                cache
                                    .invalidate_if_current(&tenant(t), &[SCOPES[s]], &token)
                                    .await;
                                reported.insert(token.secret().to_owned());
                            }
                        }
                        90..=93 => {
                            let at = minted();
                            cache.invalidate(&tenant(t), &[SCOPES[s]]).await;
                            floor.insert((t, s), at);
                        }
                        94 => {
                            let at = minted();
                            cache.invalidate_tenant(&tenant(t)).await;
                            floor.insert((t, 0), at);
                            floor.insert((t, 1), at);
                        }
                        95 if task == 0 => {
                            let at = minted();
                            cache.invalidate_all().await;
                            for t in 0..5 {
                                floor.insert((t, 0), at);
                                floor.insert((t, 1), at);
                            }
                        }
                        _ if task == 1 => clock.advance(Duration::from_secs(5)),
                        _ => tokio::task::yield_now().await,
                    }
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        cache.wait_for_refreshes().await;
        assert_consistent(&cache);
        assert!(cache.inner.flights.is_empty(), "a flight was left behind");
        let stats = cache.stats();
        assert!(stats.evictions > 0 && stats.refreshes > 0, "{stats:?}");
    });
}

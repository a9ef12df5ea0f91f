//! `Cached<P>` in front of `ClientSecret`, against the mock over real HTTP: single flight,
//! parallel misses, refresh ahead, stale-on-error, expiry, eviction, invalidation and
//! isolation. Time is a `ManualClock` shared by the mock, the credential and the cache.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{VAULT, World};
use azure_cross_tenant::insecure::decode_unverified;
use azure_cross_tenant::{
    AccessToken, CacheOptions, Cached, ClientSecret, Clock, Error, ManualClock, RetryPolicy,
    TenantCredentialProvider, TenantId,
};
use mock_entra::MockFault;
use proptest::prelude::*;

const STORAGE: &str = "https://storage.azure.com/.default";

/// A credential whose retry waits do not move the shared clock (so a failed refresh
/// does not also age the cached token).
fn credential(w: &World) -> ClientSecret {
    ClientSecret::new(w.app.client_id(), &w.secret)
        .authority_host(w.entra.uri())
        .clock(Arc::new(w.clock.clone()))
        .sleeper(Arc::new(ManualClock::starting_now()))
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

fn cached(w: &World) -> Cached<ClientSecret> {
    Cached::with_options(
        credential(w),
        CacheOptions::default().clock(Arc::new(w.clock.clone())),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_on_a_cold_key_make_one_request() {
    let w = World::new().await;
    w.entra.set_latency(Duration::from_millis(50)); // keep the flight open while they pile up
    let cache = cached(&w);
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let cache = cache.clone();
            let tenant = w.customer.clone();
            tokio::spawn(async move { cache.get_token(&tenant, &[VAULT]).await })
        })
        .collect();
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap().unwrap());
    }
    assert_eq!(w.entra.token_requests_for(&w.customer), 1);
    assert!(tokens.iter().all(|t| t.secret() == tokens[0].secret()));
    let stats = cache.stats();
    assert_eq!(stats.misses, 1);
    assert_eq!(stats.entries, 1);
}

/// Holds every token request until `n` are in flight at once: if misses on different
/// keys were serialized behind one lock, this would never release them.
#[derive(Debug)]
struct AllAtOnce {
    inner: ClientSecret,
    barrier: tokio::sync::Barrier,
}

#[async_trait::async_trait]
impl TenantCredentialProvider for AllAtOnce {
    fn client_id(&self) -> &str {
        self.inner.client_id()
    }
    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        self.barrier.wait().await;
        self.inner.get_token(tenant, scopes).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misses_on_fifty_different_keys_are_in_flight_together() {
    let w = World::new().await;
    w.entra.set_latency(Duration::from_millis(100));
    let mut tenants = vec![w.customer.clone()];
    for i in 0..9 {
        let t = w.entra.add_tenant(&format!("customer{i}.example"));
        w.entra.consent(&t, &w.app);
        tenants.push(t);
    }
    let scopes = [
        VAULT,
        STORAGE,
        "https://servicebus.azure.net/.default",
        "https://management.azure.com/.default",
        "https://signalr.azure.com/.default",
    ];
    let cache = Cached::with_options(
        AllAtOnce {
            inner: credential(&w),
            barrier: tokio::sync::Barrier::new(50),
        },
        CacheOptions::default().clock(Arc::new(w.clock.clone())),
    )
    .unwrap();
    let mut tasks = Vec::new();
    for t in &tenants {
        for s in scopes {
            let (cache, t) = (cache.clone(), t.clone());
            tasks.push(tokio::spawn(async move { cache.get_token(&t, &[s]).await }));
        }
    }
    let all = async {
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    };
    // A deadlock guard, not a timing assertion: serialized misses never get here.
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("misses on different keys must not wait for each other");
    assert_eq!(w.entra.token_requests(), 50);
    assert_eq!(cache.stats().entries, 50);
}

#[tokio::test]
async fn a_refusal_goes_to_every_waiter_of_the_flight_and_is_remembered_until_invalidated() {
    let w = World::new().await;
    w.entra.set_latency(Duration::from_millis(50));
    let cache = cached(&w);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (cache, tenant) = (cache.clone(), w.stranger.clone());
        calls.spawn(async move { cache.get_token(&tenant, &[VAULT]).await });
    }
    while let Some(result) = calls.join_next().await {
        let err = result.unwrap().unwrap_err();
        assert!(matches!(err, Error::NotConsented { .. }), "{err:?}");
    }
    assert_eq!(w.entra.token_requests_for(&w.stranger), 1);
    assert_eq!(cache.stats().errors, 1);

    // Remembered until the onboarding that follows the admin's consent drops it.
    w.entra.consent(&w.stranger, &w.app);
    assert!(cache.get_token(&w.stranger, &[VAULT]).await.is_err());
    cache.invalidate_tenant(&w.stranger).await;
    cache.get_token(&w.stranger, &[VAULT]).await.unwrap();
    assert_eq!(w.entra.token_requests_for(&w.stranger), 2);
}

#[tokio::test]
async fn scope_order_and_duplicates_share_one_entry_and_hits_return_the_same_token() {
    let w = World::new().await;
    let cache = cached(&w);
    let a = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    let b = cache.get_token(&w.customer, &[VAULT, VAULT]).await.unwrap();
    assert!(a.ptr_eq(&b));
    assert_eq!(w.entra.token_requests(), 1);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (1, 1, 1));
    assert!(matches!(
        cache.get_token(&w.customer, &[VAULT, STORAGE]).await,
        Err(Error::InvalidScope { .. })
    ));
}

#[tokio::test]
async fn an_expired_token_is_never_returned() {
    let w = World::new().await;
    let cache = cached(&w);
    let first = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    w.clock.advance(Duration::from_secs(3600));
    assert!(first.is_expired_at(w.clock.now()));
    let later = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert!(!later.ptr_eq(&first));
    assert!(!later.is_expired_at(w.clock.now()));
}

#[tokio::test]
async fn without_refresh_the_token_is_used_until_expiry_minus_skew_then_fetched_again() {
    let w = World::new().await;
    let cache = Cached::with_options(
        credential(&w),
        CacheOptions::default()
            .refresh(false)
            .clock(Arc::new(w.clock.clone())),
    )
    .unwrap();
    let first = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    w.clock.advance(Duration::from_secs(3298));
    assert!(
        cache
            .get_token(&w.customer, &[VAULT])
            .await
            .unwrap()
            .ptr_eq(&first)
    );
    assert_eq!(w.entra.token_requests(), 1);
    w.clock.advance(Duration::from_secs(2));
    let second = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert!(!second.ptr_eq(&first));
    assert_eq!(w.entra.token_requests(), 2);
}

/// A token that reaches a cache late (here from another cache; in a fleet, from the
/// shared cache) is served only until its expiry minus the margin of its whole lifetime,
/// not three quarters of whatever it has left.
#[tokio::test]
async fn a_token_inserted_late_keeps_the_margin_of_its_whole_lifetime() {
    let w = World::new().await;
    let options = || {
        CacheOptions::default()
            .refresh(false)
            .clock(Arc::new(w.clock.clone()))
    };
    let inner = Cached::with_options(credential(&w), options()).unwrap();
    let outer = Cached::with_options(inner, options()).unwrap();
    let first = outer.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert!(first.issued_on().is_some(), "stamped on receipt");

    // 50 min later the outer cache loses the entry and gets the same token again from
    // the inner one, with 10 min left.
    w.clock.advance(Duration::from_secs(3000));
    outer.invalidate(&w.customer, &[VAULT]).await;
    let again = outer.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert!(again.ptr_eq(&first));

    // 5 min 50 s later it has 4 min 10 s left: less than the 5 min margin.
    w.clock.advance(Duration::from_secs(350));
    let now = w.clock.now();
    let served = outer.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert!(
        !served.ptr_eq(&first),
        "a token inside its margin was served"
    );
    assert!(served.expires_on() >= now + Duration::from_secs(300));
    assert_eq!(w.entra.token_requests(), 2);
}

#[tokio::test]
async fn a_token_is_refreshed_in_the_background_while_callers_keep_the_cached_one() {
    let w = World::new().await;
    w.entra.set_token_lifetime(Duration::from_secs(3));
    w.entra.set_refresh_in(Some(Duration::from_secs(1)));
    let cache = cached(&w);
    let first = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert!(first.refresh_on().is_some());

    w.clock.advance(Duration::from_millis(1500));
    // Due for refresh: this caller gets the cached token at once; a refresh starts.
    let during = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert!(
        during.ptr_eq(&first),
        "the caller must not wait for the refresh"
    );
    cache.wait_for_refreshes().await;

    let after = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert!(!after.ptr_eq(&first), "the refreshed token is served");
    assert!(after.expires_on() > first.expires_on());
    assert_eq!(w.entra.token_requests(), 2);
    let stats = cache.stats();
    assert_eq!(
        (stats.misses, stats.refreshes, stats.refresh_failures),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn a_failed_refresh_keeps_serving_the_valid_token_and_errors_once_it_expires() {
    let w = World::new().await;
    w.entra.set_token_lifetime(Duration::from_secs(3));
    w.entra.set_refresh_in(Some(Duration::from_secs(1)));
    let cache = cached(&w);
    let first = cache.get_token(&w.customer, &[VAULT]).await.unwrap();

    w.entra
        .inject_fault(&w.customer, MockFault::ServerError { status: 503 }, 100);
    w.clock.advance(Duration::from_millis(1500));
    assert!(
        cache
            .get_token(&w.customer, &[VAULT])
            .await
            .unwrap()
            .ptr_eq(&first)
    );
    cache.wait_for_refreshes().await;
    assert_eq!(cache.stats().refresh_failures, 1);
    // Still valid (usable until 2.25 s): still served, no new request (backoff).
    let before = w.entra.token_requests();
    assert!(
        cache
            .get_token(&w.customer, &[VAULT])
            .await
            .unwrap()
            .ptr_eq(&first)
    );
    assert_eq!(w.entra.token_requests(), before);

    // Past usable: the caller gets the provider's error, not the stale token.
    w.clock.advance(Duration::from_secs(1));
    let err = cache.get_token(&w.customer, &[VAULT]).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.entra().unwrap().status, 503);
}

#[tokio::test]
async fn invalidation_drops_one_key_or_one_tenant() {
    let w = World::new().await;
    let other = w.entra.add_tenant("contoso.example");
    w.entra.consent(&other, &w.app);
    let cache = cached(&w);
    for t in [&w.customer, &other] {
        for s in [VAULT, STORAGE] {
            cache.get_token(t, &[s]).await.unwrap();
        }
    }
    assert_eq!(w.entra.token_requests(), 4);

    cache.invalidate(&w.customer, &[VAULT]).await;
    cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    cache.get_token(&w.customer, &[STORAGE]).await.unwrap();
    assert_eq!(
        w.entra.token_requests(),
        5,
        "only the invalidated key is fetched again"
    );

    cache.invalidate_tenant(&w.customer).await;
    for s in [VAULT, STORAGE] {
        cache.get_token(&w.customer, &[s]).await.unwrap();
        cache.get_token(&other, &[s]).await.unwrap();
    }
    assert_eq!(w.entra.token_requests_for(&w.customer), 5);
    assert_eq!(
        w.entra.token_requests_for(&other),
        2,
        "other tenants keep their tokens"
    );
}

#[tokio::test]
async fn the_cache_stays_under_max_entries_and_stays_correct_after_eviction() {
    let w = World::new().await;
    let mut tenants = vec![w.customer.clone()];
    for i in 0..19 {
        let t = w.entra.add_tenant(&format!("t{i}.example"));
        w.entra.consent(&t, &w.app);
        tenants.push(t);
    }
    let cache = Cached::with_options(
        credential(&w),
        CacheOptions::default()
            .max_entries(5)
            .clock(Arc::new(w.clock.clone())),
    )
    .unwrap();
    for round in 0..2 {
        for t in &tenants {
            let token = cache.get_token(t, &[VAULT]).await.unwrap();
            let claims = decode_unverified(token.secret()).unwrap();
            assert_eq!(claims.tid.as_deref(), Some(t.as_str()));
        }
        // moka applies its bound in maintenance; `stats` runs it.
        let stats = cache.stats();
        assert!(stats.entries <= 5, "round {round}: {stats:?}");
        assert!(
            stats.evictions >= 15 * (round + 1),
            "round {round}: {stats:?}"
        );
    }
    assert!(
        w.entra.token_requests() > 20,
        "evicted keys were fetched again"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Whatever the order of calls, a token comes back only for the tenant and scope
    /// asked: the tenant in its `tid`, the resource in its `aud`.
    #[test]
    fn a_token_never_crosses_tenants_or_scopes(calls in proptest::collection::vec((0usize..4, 0usize..3, any::<bool>()), 1..24)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let w = World::new().await;
            let t2 = w.entra.add_tenant("t2.example");
            let t3 = w.entra.add_tenant("t3.example");
            w.entra.consent(&t2, &w.app);
            w.entra.consent(&t3, &w.app);
            let by_domain: TenantId = "fabrikam.example".parse().unwrap();
            let tenants = [w.customer.clone(), t2, t3, by_domain];
            let guids: Vec<String> = tenants.iter().map(|t| w.entra.tenant_guid(t)).collect();
            let scopes = [VAULT, STORAGE, "https://servicebus.azure.net/.default"];
            let cache = cached(&w);
            for (t, s, dup) in calls {
                let asked: Vec<&str> = if dup { vec![scopes[s], scopes[s]] } else { vec![scopes[s]] };
                let token = cache.get_token(&tenants[t], &asked).await.unwrap();
                prop_assert_eq!(token.scopes().as_str(), scopes[s]);
                let claims = decode_unverified(token.secret()).unwrap();
                prop_assert_eq!(claims.tid.as_deref(), Some(guids[t].as_str()));
                prop_assert_eq!(claims.aud.clone(), vec![scopes[s].trim_end_matches("/.default").to_owned()]);
            }
            Ok(())
        })?;
    }
}

/// Holds each token response (fetched over real HTTP) until the test lets it go, so a
/// test can act while a request is in flight.
#[derive(Debug)]
struct HeldOpen {
    inner: ClientSecret,
    fetched: tokio::sync::Notify,
    release: tokio::sync::Semaphore,
}

#[async_trait::async_trait]
impl TenantCredentialProvider for HeldOpen {
    fn client_id(&self) -> &str {
        self.inner.client_id()
    }
    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        let token = self.inner.get_token(tenant, scopes).await;
        self.fetched.notify_one();
        self.release.acquire().await.unwrap().forget();
        token
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_request_in_flight_when_invalidate_tenant_returns_is_never_cached() {
    let w = World::new().await;
    let cache = Cached::with_options(
        HeldOpen {
            inner: credential(&w),
            fetched: tokio::sync::Notify::new(),
            release: tokio::sync::Semaphore::new(0),
        },
        CacheOptions::default().clock(Arc::new(w.clock.clone())),
    )
    .unwrap();
    let in_flight = {
        let (cache, tenant) = (cache.clone(), w.customer.clone());
        tokio::spawn(async move { cache.get_token(&tenant, &[VAULT]).await })
    };
    cache.provider().fetched.notified().await;
    assert_eq!(w.entra.token_requests_for(&w.customer), 1);

    // Offboarding while Entra's answer is on its way back.
    cache.invalidate_tenant(&w.customer).await;
    cache.provider().release.add_permits(1);
    let old = in_flight.await.unwrap().unwrap();

    assert!(cache.get_if_fresh(&w.customer, &[VAULT]).is_none());
    assert_eq!(cache.stats().entries, 0);
    cache.provider().release.add_permits(1);
    let next = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert!(!next.ptr_eq(&old));
    assert_eq!(w.entra.token_requests_for(&w.customer), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_invalidated_during_its_flight_starts_a_new_flight_for_later_callers() {
    let w = World::new().await;
    let cache = Cached::with_options(
        HeldOpen {
            inner: credential(&w),
            fetched: tokio::sync::Notify::new(),
            release: tokio::sync::Semaphore::new(0),
        },
        CacheOptions::default().clock(Arc::new(w.clock.clone())),
    )
    .unwrap();
    let first = {
        let (cache, tenant) = (cache.clone(), w.customer.clone());
        tokio::spawn(async move { cache.get_token(&tenant, &[VAULT]).await })
    };
    cache.provider().fetched.notified().await;
    cache.invalidate(&w.customer, &[VAULT]).await;
    // A caller after the invalidation does not join the revoked flight.
    let second = {
        let (cache, tenant) = (cache.clone(), w.customer.clone());
        tokio::spawn(async move { cache.get_token(&tenant, &[VAULT]).await })
    };
    cache.provider().fetched.notified().await;
    cache.provider().release.add_permits(2);
    let (first, second) = (
        first.await.unwrap().unwrap(),
        second.await.unwrap().unwrap(),
    );
    assert!(!first.ptr_eq(&second));
    assert_eq!(w.entra.token_requests_for(&w.customer), 2);
    let cached = cache.get_if_fresh(&w.customer, &[VAULT]).unwrap();
    assert!(
        cached.ptr_eq(&second),
        "only the second flight's token is cached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_401s_for_one_token_cause_one_new_token_request() {
    let w = World::new().await;
    let cache = cached(&w);
    let old = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    w.entra.set_latency(Duration::from_millis(50)); // the refetch is in flight while they pile up
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (cache, tenant, old) = (cache.clone(), w.customer.clone(), old.clone());
        calls.spawn(async move {
            cache.invalidate_if_current(&tenant, &[VAULT], &old).await;
            cache.get_token(&tenant, &[VAULT]).await.unwrap()
        });
    }
    let mut fresh = Vec::new();
    while let Some(token) = calls.join_next().await {
        fresh.push(token.unwrap());
    }
    assert_eq!(w.entra.token_requests_for(&w.customer), 2);
    assert!(fresh.iter().all(|t| !t.ptr_eq(&old) && t.ptr_eq(&fresh[0])));
    // A late report of the old token leaves the new one alone.
    cache
        .invalidate_if_current(&w.customer, &[VAULT], &old)
        .await;
    assert!(
        cache
            .get_if_fresh(&w.customer, &[VAULT])
            .unwrap()
            .ptr_eq(&fresh[0])
    );
}

#[tokio::test]
async fn get_if_fresh_answers_from_the_cache_only() {
    let w = World::new().await;
    let cache = cached(&w);
    assert!(cache.get_if_fresh(&w.customer, &[VAULT]).is_none());
    assert_eq!(w.entra.token_requests(), 0, "get_if_fresh never asks Entra");
    let token = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert!(
        cache
            .get_if_fresh(&w.customer, &[VAULT])
            .unwrap()
            .ptr_eq(&token)
    );
    assert!(cache.get_if_fresh(&w.customer, &[VAULT, STORAGE]).is_none());
    w.clock.advance(Duration::from_secs(3300));
    assert!(
        cache.get_if_fresh(&w.customer, &[VAULT]).is_none(),
        "inside the margin"
    );
}

#[tokio::test]
async fn max_entries_of_zero_is_refused_when_the_cache_is_built() {
    let w = World::new().await;
    let err =
        Cached::with_options(credential(&w), CacheOptions::default().max_entries(0)).unwrap_err();
    assert!(matches!(err, Error::InvalidConfiguration(_)), "{err:?}");
    assert!(err.to_string().contains("max_entries"), "{err}");
}

/// Panics on its second call: the first background refresh.
#[derive(Debug)]
struct PanicsOnce {
    inner: ClientSecret,
    calls: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl TenantCredentialProvider for PanicsOnce {
    fn client_id(&self) -> &str {
        self.inner.client_id()
    }
    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert_ne!(call, 1, "the provider panicked (on purpose, in a test)");
        self.inner.get_token(tenant, scopes).await
    }
}

#[tokio::test]
async fn a_refresh_that_panics_is_counted_out_and_the_key_refreshes_again_later() {
    let w = World::new().await;
    w.entra.set_token_lifetime(Duration::from_secs(3));
    w.entra.set_refresh_in(Some(Duration::from_secs(1)));
    let cache = Cached::with_options(
        PanicsOnce {
            inner: credential(&w),
            calls: Default::default(),
        },
        CacheOptions::default()
            .refresh_retry(Duration::from_millis(100))
            .clock(Arc::new(w.clock.clone())),
    )
    .unwrap();
    let first = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    w.clock.advance(Duration::from_millis(1500));
    assert!(
        cache
            .get_token(&w.customer, &[VAULT])
            .await
            .unwrap()
            .ptr_eq(&first)
    );
    // A deadlock guard, not a timing assertion: without the fix this never returns.
    tokio::time::timeout(Duration::from_secs(30), cache.wait_for_refreshes())
        .await
        .expect("wait_for_refreshes returns after a refresh panicked");
    assert_eq!(cache.stats().refresh_failures, 1);

    // After the retry wait the key is refreshed again, and this time it works.
    w.clock.advance(Duration::from_millis(200));
    assert!(
        cache
            .get_token(&w.customer, &[VAULT])
            .await
            .unwrap()
            .ptr_eq(&first)
    );
    cache.wait_for_refreshes().await;
    let after = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert!(!after.ptr_eq(&first), "the key refreshed after the panic");
    assert_eq!(cache.stats().refreshes, 2);
}

/// Entra's `expires_in` counts from its answer, which comes after the request left: an
/// answer delayed on its way back must not make the cache believe the token lives that
/// much longer than its own `exp`, so its expiry margin is kept in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_lives_from_when_it_was_asked_for_not_from_when_the_answer_arrived() {
    let w = World::new().await;
    let cache = Cached::with_options(
        credential(&w),
        CacheOptions::default()
            .refresh(false)
            .clock(Arc::new(w.clock.clone())),
    )
    .unwrap();
    // The mock mints the token when the request arrives, then holds the answer.
    w.entra.set_latency(Duration::from_secs(2));
    let asked_at = w.clock.now();
    let in_flight = {
        let (cache, tenant) = (cache.clone(), w.customer.clone());
        tokio::spawn(async move { cache.get_token(&tenant, &[VAULT]).await.unwrap() })
    };
    for _ in 0..400 {
        if w.entra.token_requests() == 1 {
            break;
        }
        // Waiting for the request to reach the mock: real time, bounded.
        #[allow(clippy::disallowed_methods)]
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(w.entra.token_requests(), 1, "the request reached the mock");
    // The answer takes a minute to come back.
    w.clock.advance(Duration::from_secs(60));
    assert!(!in_flight.is_finished(), "the answer was still on its way");
    let token = in_flight.await.unwrap();
    w.entra.set_latency(Duration::ZERO);

    let exp = decode_unverified(token.secret()).unwrap().exp.unwrap();
    let exp = std::time::UNIX_EPOCH + Duration::from_secs(exp);
    // `exp` counts whole seconds.
    assert!(
        token.expires_on() < exp + Duration::from_secs(1),
        "expires_on {:?} runs past the token's exp {exp:?}",
        token.expires_on()
    );
    assert!(
        token
            .issued_on()
            .is_some_and(|at| at <= asked_at + Duration::from_secs(1))
    );

    // The 5 min margin, from the token's real end: served until exp - 300 s, not after.
    let served_until = exp - Duration::from_secs(300);
    let now = w.clock.now();
    w.clock
        .advance(served_until.duration_since(now).unwrap() - Duration::from_secs(1));
    assert!(
        cache
            .get_token(&w.customer, &[VAULT])
            .await
            .unwrap()
            .ptr_eq(&token)
    );
    w.clock.advance(Duration::from_secs(2));
    let next = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert!(
        !next.ptr_eq(&token),
        "served with less than the margin left before its exp"
    );
}

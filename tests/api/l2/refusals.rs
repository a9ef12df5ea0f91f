//! A tenant that said no is asked once per window by the whole fleet: the refusal is
//! remembered and shared through L2, and every invalidation drops it at once.

use std::time::Duration;

use super::{Backend, on_both, replica};
use crate::common::{VAULT, World};
use azure_cross_tenant::{Cached, ClientSecret, Error};

on_both!(
    four_replicas_ask_entra_once_per_window_about_a_tenant_that_said_no,
    an_invalidation_on_one_replica_lets_every_replica_ask_again_at_once,
    a_401_for_an_old_token_leaves_the_refusal_stored_since,
);

fn not_consented(err: &Error) {
    assert!(matches!(err, Error::NotConsented { .. }), "{err:?}");
}

async fn four_replicas_ask_entra_once_per_window_about_a_tenant_that_said_no(backend: Backend) {
    let w = World::new().await;
    let replicas: Vec<Cached<ClientSecret>> = (0..4).map(|_| replica(&w, &backend)).collect();

    for i in 0..1000 {
        let err = replicas[i % 4]
            .get_token(&w.stranger, &[VAULT])
            .await
            .unwrap_err();
        not_consented(&err);
        // Entra's own answer once; after that, remembered (on the other replicas, from L2).
        assert_eq!(err.remembered_at().is_some(), i > 0, "call {i}: {err}");
    }
    assert_eq!(
        w.entra.token_requests_for(&w.stranger),
        1,
        "1,000 sequential calls on 4 replicas"
    );

    // The next window: 1,000 calls at once.
    w.clock.advance(Duration::from_secs(61));
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let (r, stranger) = (replicas[i % 4].clone(), w.stranger.clone());
        calls.spawn(async move { r.get_token(&stranger, &[VAULT]).await });
    }
    while let Some(result) = calls.join_next().await {
        not_consented(&result.unwrap().unwrap_err());
    }
    assert_eq!(
        w.entra.token_requests_for(&w.stranger),
        2,
        "1,000 concurrent calls on 4 replicas in the next window"
    );
}

async fn an_invalidation_on_one_replica_lets_every_replica_ask_again_at_once(backend: Backend) {
    let w = World::new().await;
    let (a, b) = (replica(&w, &backend), replica(&w, &backend));
    not_consented(&a.get_token(&w.stranger, &[VAULT]).await.unwrap_err());
    not_consented(&b.get_token(&w.stranger, &[VAULT]).await.unwrap_err());
    assert_eq!(w.entra.token_requests_for(&w.stranger), 1);

    // The admin consents; without an invalidation the refusal is still remembered.
    w.entra.consent(&w.stranger, &w.app);
    let err = b.get_token(&w.stranger, &[VAULT]).await.unwrap_err();
    not_consented(&err);
    assert_eq!(w.entra.token_requests_for(&w.stranger), 1);

    // Onboarding finished on A: every replica asks again at once.
    a.invalidate_tenant(&w.stranger).await;
    // (Values stamped in the same millisecond as a tombstone count as older.)
    w.clock.advance(Duration::from_millis(1));
    b.get_token(&w.stranger, &[VAULT]).await.unwrap();
    a.get_token(&w.stranger, &[VAULT]).await.unwrap();
    assert_eq!(w.entra.token_requests_for(&w.stranger), 2);

    // The same for one entry, and for everything.
    w.entra.revoke_consent(&w.stranger, &w.app);
    w.clock.advance(Duration::from_secs(3600));
    not_consented(&a.get_token(&w.stranger, &[VAULT]).await.unwrap_err());
    w.entra.consent(&w.stranger, &w.app);
    a.invalidate(&w.stranger, &[VAULT]).await;
    w.clock.advance(Duration::from_millis(1));
    b.get_token(&w.stranger, &[VAULT]).await.unwrap();

    w.entra.revoke_consent(&w.stranger, &w.app);
    w.clock.advance(Duration::from_secs(3600));
    not_consented(&b.get_token(&w.stranger, &[VAULT]).await.unwrap_err());
    w.entra.consent(&w.stranger, &w.app);
    b.invalidate_all().await;
    w.clock.advance(Duration::from_millis(1));
    a.get_token(&w.stranger, &[VAULT]).await.unwrap();
}

/// With Redis down, a replica still asks once per window: its own memory of the refusal
/// answers while L2 cannot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: apt-get install redis-server, then --include-ignored"]
async fn with_redis_down_a_replica_remembers_the_refusal_itself() {
    let mut redis = super::servers::Redis::start();
    let w = World::new().await;
    let store = std::sync::Arc::new(azure_cross_tenant::RedisStore::new(&redis.url()).unwrap());
    let a = super::replica_with(
        &w,
        azure_cross_tenant::SharedCache::new(store, super::keys("k1", 1))
            .timeout(Duration::from_millis(300))
            .circuit_breaker(1, Duration::from_secs(60)),
    );
    not_consented(&a.get_token(&w.stranger, &[VAULT]).await.unwrap_err());
    redis.stop();
    for _ in 0..20 {
        let err = a.get_token(&w.stranger, &[VAULT]).await.unwrap_err();
        not_consented(&err);
        assert!(err.remembered_at().is_some(), "{err}");
    }
    assert_eq!(w.entra.token_requests_for(&w.stranger), 1);
    assert!(a.stats().l2_errors >= 1, "{:?}", a.stats());
}

/// A resource refusing a token (`invalidate_if_current`) drops that token only: a refusal
/// another replica stored since under the same entry stays, and the fleet still asks once.
async fn a_401_for_an_old_token_leaves_the_refusal_stored_since(backend: Backend) {
    let w = World::new().await;
    let (a, b) = (replica(&w, &backend), replica(&w, &backend));
    let old = a.get_token(&w.customer, &[VAULT]).await.unwrap();
    w.entra.revoke_consent(&w.customer, &w.app);
    w.clock.advance(Duration::from_secs(3600));
    // The token expired; A asks again and stores the refusal in its place.
    not_consented(&a.get_token(&w.customer, &[VAULT]).await.unwrap_err());
    assert_eq!(w.entra.token_requests_for(&w.customer), 2);

    b.invalidate_if_current(&w.customer, &[VAULT], &old).await;
    let err = b.get_token(&w.customer, &[VAULT]).await.unwrap_err();
    not_consented(&err);
    assert!(err.remembered_at().is_some(), "{err}");
    assert_eq!(w.entra.token_requests_for(&w.customer), 2);
}

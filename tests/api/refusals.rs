//! A tenant's permanent "no" (not consented, not found, app disabled) is remembered per
//! (tenant, scope) for a bounded window and served as the same typed error, marked as
//! remembered; transport errors, 5xx and throttling are never remembered; every
//! invalidation drops it. Memory only here; the fleet's shared memory is in `l2::refusals`.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{VAULT, World};
use azure_cross_tenant::{
    CacheOptions, Cached, ClientSecret, Clock, Error, ManualClock, RetryPolicy, TenantId,
};
use mock_entra::MockFault;

const STORAGE: &str = "https://storage.azure.com/.default";

fn credential(w: &World) -> ClientSecret {
    ClientSecret::new(w.app.client_id(), &w.secret)
        .authority_host(w.entra.uri())
        .clock(Arc::new(w.clock.clone()))
        .sleeper(Arc::new(ManualClock::starting_now()))
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

fn cached_with(w: &World, options: CacheOptions) -> Cached<ClientSecret> {
    Cached::with_options(credential(w), options.clock(Arc::new(w.clock.clone()))).unwrap()
}

fn cached(w: &World) -> Cached<ClientSecret> {
    cached_with(w, CacheOptions::default())
}

#[tokio::test]
async fn a_thousand_calls_for_a_tenant_that_never_consented_make_one_request_per_window() {
    let w = World::new().await;
    let cache = cached(&w);
    let learned = w.clock.now();
    let first = cache.get_token(&w.stranger, &[VAULT]).await.unwrap_err();
    assert!(matches!(first, Error::NotConsented { .. }), "{first:?}");
    assert_eq!(first.remembered_at(), None, "Entra's own answer");
    for _ in 1..1000 {
        let err = cache.get_token(&w.stranger, &[VAULT]).await.unwrap_err();
        assert!(matches!(err, Error::NotConsented { .. }), "{err:?}");
        assert_eq!(err.consent_url(), first.consent_url());
        assert_eq!(err.trace_id(), first.trace_id());
        assert_eq!(err.remembered_at(), Some(learned));
        assert!(err.to_string().contains("remembered"), "{err}");
    }
    assert_eq!(w.entra.token_requests_for(&w.stranger), 1);
    assert_eq!(cache.stats().remembered_refusals, 999);

    // Still within the window (about a minute, shortened by up to a fifth per key).
    w.clock.advance(Duration::from_secs(47));
    assert!(cache.get_token(&w.stranger, &[VAULT]).await.is_err());
    assert_eq!(w.entra.token_requests_for(&w.stranger), 1);

    // The next window asks once more.
    w.clock.advance(Duration::from_secs(14));
    for _ in 0..10 {
        assert!(cache.get_token(&w.stranger, &[VAULT]).await.is_err());
    }
    assert_eq!(w.entra.token_requests_for(&w.stranger), 2);
}

#[tokio::test]
async fn tenant_not_found_and_app_disabled_are_remembered_too() {
    let w = World::new().await;
    let cache = cached(&w);
    let nowhere: TenantId = "nowhere.example".parse().unwrap();
    for _ in 0..3 {
        let err = cache.get_token(&nowhere, &[VAULT]).await.unwrap_err();
        assert!(matches!(err, Error::TenantNotFound(_)), "{err:?}");
    }
    w.entra.set_app_enabled(&w.customer, &w.app, false);
    for _ in 0..3 {
        let err = cache.get_token(&w.customer, &[VAULT]).await.unwrap_err();
        assert!(matches!(err, Error::AppDisabled(_)), "{err:?}");
    }
    assert_eq!(w.entra.token_requests(), 2);
}

#[tokio::test]
async fn transient_failures_are_never_remembered() {
    let w = World::new().await;
    let cache = cached(&w);
    let faults = [
        MockFault::ServerError { status: 503 },
        MockFault::Throttle { retry_after: None },
        MockFault::entra_error(400, "temporarily_unavailable", 50033, "Retry later."),
        MockFault::NotJson,
    ];
    for (i, fault) in faults.into_iter().enumerate() {
        w.entra.inject_fault(&w.customer, fault, 1);
        assert!(cache.get_token(&w.customer, &[VAULT]).await.is_err());
        // The next call asks again, and gets its token.
        cache.get_token(&w.customer, &[VAULT]).await.unwrap();
        assert_eq!(w.entra.token_requests_for(&w.customer), 2 * (i + 1));
        cache.invalidate(&w.customer, &[VAULT]).await;
    }
}

#[tokio::test]
async fn a_refusal_is_remembered_per_scope_and_dropped_by_every_invalidation() {
    let w = World::new().await;
    let cache = cached(&w);
    assert!(cache.get_token(&w.stranger, &[VAULT]).await.is_err());
    assert_eq!(w.entra.token_requests_for(&w.stranger), 1);
    // Another scope of the same tenant is asked on its own.
    assert!(cache.get_token(&w.stranger, &[STORAGE]).await.is_err());
    assert_eq!(w.entra.token_requests_for(&w.stranger), 2);

    w.entra.consent(&w.stranger, &w.app);
    assert!(cache.get_token(&w.stranger, &[VAULT]).await.is_err());
    assert_eq!(
        w.entra.token_requests_for(&w.stranger),
        2,
        "still remembered"
    );

    cache.invalidate(&w.stranger, &[VAULT]).await;
    cache.get_token(&w.stranger, &[VAULT]).await.unwrap();
    assert!(
        cache.get_token(&w.stranger, &[STORAGE]).await.is_err(),
        "only the invalidated key was dropped"
    );
    cache.invalidate_tenant(&w.stranger).await;
    cache.get_token(&w.stranger, &[STORAGE]).await.unwrap();
    assert_eq!(w.entra.token_requests_for(&w.stranger), 4);

    w.entra.revoke_consent(&w.stranger, &w.app);
    cache.invalidate_tenant(&w.stranger).await;
    assert!(cache.get_token(&w.stranger, &[VAULT]).await.is_err());
    w.entra.consent(&w.stranger, &w.app);
    cache.invalidate_all().await;
    cache.get_token(&w.stranger, &[VAULT]).await.unwrap();
    assert_eq!(w.entra.token_requests_for(&w.stranger), 6);
}

#[tokio::test]
async fn a_zero_window_turns_the_memory_off() {
    let w = World::new().await;
    let cache = cached_with(&w, CacheOptions::default().negative_ttl(Duration::ZERO));
    for _ in 0..3 {
        assert!(cache.get_token(&w.stranger, &[VAULT]).await.is_err());
    }
    assert_eq!(w.entra.token_requests_for(&w.stranger), 3);
}

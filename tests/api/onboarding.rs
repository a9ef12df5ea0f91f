//! Onboarding against the mock: admin sign-in proving the tenant, admin consent bound to
//! it (the tenant swap refused), confirmation by a token request, linking in the
//! registry, and a daemon loop over the registry where one failing tenant never stops
//! the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{VAULT, World};
use azure_cross_tenant::{
    Cached, Error, InMemoryRegistry, OnboardingState, TenantCredentialProvider, TenantRecord,
    TenantRegistry, for_each_active,
};

#[tokio::test]
async fn the_daemon_loop_serves_four_tenants_when_the_fifth_revoked_consent() {
    let w = World::new().await;
    let provider = Cached::new(w.credential());
    let registry = InMemoryRegistry::new();
    let mut tenants = Vec::new();
    for i in 0..5 {
        let t = w.entra.add_tenant(&format!("customer{i}.example"));
        w.entra.consent(&t, &w.app);
        registry
            .upsert(TenantRecord::new(
                t.clone(),
                format!("Customer {i}"),
                OnboardingState::Active,
            ))
            .await
            .unwrap();
        tenants.push(t);
    }
    let offboarded = w.entra.add_tenant("gone.example");
    registry
        .upsert(TenantRecord::new(
            offboarded.clone(),
            "Gone",
            OnboardingState::Revoked,
        ))
        .await
        .unwrap();
    // The fourth customer revoked consent in Entra; the registry does not know yet.
    w.entra.revoke_consent(&tenants[3], &w.app);

    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let results = for_each_active(&registry, 2, |record| {
        let (provider, in_flight, max_seen) =
            (provider.clone(), in_flight.clone(), max_seen.clone());
        async move {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            max_seen.fetch_max(now, Ordering::SeqCst);
            let result = provider.get_token(&record.tenant, &[VAULT]).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            result
        }
    })
    .await
    .unwrap();

    assert_eq!(
        results.len(),
        5,
        "revoked tenants in the registry are skipped"
    );
    assert!(max_seen.load(Ordering::SeqCst) <= 2);
    for (tenant, result) in &results {
        if *tenant == tenants[3] {
            assert!(
                matches!(result, Err(Error::NotConsented { .. })),
                "{result:?}"
            );
        } else {
            assert!(result.is_ok(), "{tenant}: {result:?}");
        }
    }
    assert_eq!(w.entra.token_requests_for(&offboarded), 0);

    // The operator marks it, and the next round skips it.
    registry
        .set_state(&tenants[3], OnboardingState::Revoked)
        .await
        .unwrap();
    let next = for_each_active(&registry, 4, |r| {
        let provider = provider.clone();
        async move { provider.get_token(&r.tenant, &[VAULT]).await }
    })
    .await
    .unwrap();
    assert_eq!(next.len(), 4);
    assert!(next.iter().all(|(_, r)| r.is_ok()));
}

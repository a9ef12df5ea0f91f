//! Onboarding against the mock: the admin consent URL, the callback (forged, declined,
//! granted), confirmation by a token request, and a daemon loop over the tenant registry
//! where one failing tenant never stops the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{VAULT, World};
use azure_cross_tenant::{
    AdminConsentCallback, Cached, ConsentError, ConsentTenant, Error, InMemoryRegistry,
    JsonFileRegistry, OnboardingState, TenantRecord, TenantRegistry, admin_consent_url,
    for_each_active,
};

const STATE: &str = "f3b1c0de9a8e47d2b6c5";

#[tokio::test]
async fn a_tenant_is_onboarded_from_consent_url_to_confirmed_principal() {
    let w = World::new().await;
    let provider = Cached::new(w.credential());
    let newcomer = w.entra.add_tenant("newcomer.example");

    let url = admin_consent_url(
        &w.entra.cloud(),
        &ConsentTenant::Organizations,
        w.app.client_id(),
        "https://saas.example/onboarding/callback",
        STATE,
    )
    .unwrap();
    assert!(
        url.as_str()
            .starts_with(&format!("{}organizations/adminconsent?", w.entra.uri()))
    );

    // The admin consents; Entra redirects back with the tenant.
    let sp = w.entra.consent(&newcomer, &w.app);
    let query = format!("admin_consent=True&tenant={newcomer}&state={STATE}");
    let unconfirmed = AdminConsentCallback::parse(&query, STATE).unwrap();
    let confirmed = unconfirmed.confirm(&provider, VAULT).await.unwrap();
    assert_eq!(confirmed.tenant, newcomer);
    assert_eq!(
        confirmed.service_principal_object_id.as_deref(),
        Some(sp.as_str())
    );
    assert_eq!(confirmed.tenant_guid.as_deref(), Some(newcomer.as_str()));
}

#[tokio::test]
async fn a_forged_callback_naming_an_unconsented_tenant_is_not_confirmed() {
    let w = World::new().await;
    let provider = Cached::new(w.credential());
    // Right state (say, leaked), but the tenant never consented: confirmation fails.
    let query = format!("admin_consent=True&tenant={}&state={STATE}", w.stranger);
    let unconfirmed = AdminConsentCallback::parse(&query, STATE).unwrap();
    let err = unconfirmed.confirm(&provider, VAULT).await.unwrap_err();
    assert!(matches!(err, Error::NotConsented { .. }), "{err:?}");
    // Wrong state: refused before anything is asked.
    let forged = format!(
        "admin_consent=True&tenant={}&state=attacker-chosen-state",
        w.customer
    );
    assert_eq!(
        AdminConsentCallback::parse(&forged, STATE).unwrap_err(),
        ConsentError::StateMismatch
    );
    assert_eq!(w.entra.token_requests_for(&w.customer), 0);
}

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

#[tokio::test]
async fn the_json_registry_survives_a_restart() {
    let path = std::env::temp_dir().join(format!("act-registry-{}.json", uuid::Uuid::new_v4()));
    let t: azure_cross_tenant::TenantId = "72f988bf-86f1-41af-91ab-2d7cd011db47".parse().unwrap();
    {
        let reg = JsonFileRegistry::open(&path).await.unwrap();
        let mut record = TenantRecord::new(t.clone(), "Contoso", OnboardingState::Pending);
        record.allowed_scopes = vec![VAULT.into()];
        reg.upsert(record).await.unwrap();
        assert!(reg.set_state(&t, OnboardingState::Active).await.unwrap());
    }
    let reopened = JsonFileRegistry::open(&path).await.unwrap();
    let record = reopened.get(&t).await.unwrap().unwrap();
    assert_eq!(record.state, OnboardingState::Active);
    assert!(record.allows(VAULT));
    assert!(!record.allows("https://storage.azure.com/.default"));
    std::fs::write(&path, b"{not json").unwrap();
    assert!(JsonFileRegistry::open(&path).await.is_err());
    let _ = std::fs::remove_file(&path);
}

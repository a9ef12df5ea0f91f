//! The registry contract, the same on every backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use azure_cross_tenant::{
    AdminProof, Error, LinkError, OnboardingState, Relink, RoundOptions, SqlRegistry,
    TenantCondition, TenantHealth, TenantHealthMonitor, TenantId, TenantRecord, TenantRegistry,
};

use crate::Backend;

fn tenant(n: u32) -> TenantId {
    format!("{n:08x}-86f1-41af-91ab-2d7cd011db47")
        .parse()
        .unwrap()
}

fn full_record(t: TenantId) -> TenantRecord {
    let mut record = TenantRecord::new(t, "Contoso \u{1F600} 'quoted'", OnboardingState::Active);
    record.service_principal_object_id = Some("0c1f7e52-5a6b-4f4e-9d5a-2b6e8f0a1c3d".into());
    record.linked_by = Some("admin-object-id".into());
    record.linked_at = Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    record.proof = Some(AdminProof::DirectoryRole(
        "62e90394-69f5-4237-9190-012177145e10".into(),
    ));
    record.allowed_scopes = vec!["https://vault.azure.net/.default".into()];
    record
}

/// A health as stored (whole seconds), made through the public API.
fn needs_consent_health() -> TenantHealth {
    let err = Error::provider(tenant(0), "x");
    assert!(TenantHealth::from_error(&err, UNIX_EPOCH).is_none());
    let t: TenantId = tenant(9);
    serde_json::from_value(serde_json::json!({
        "condition": "needs_consent", "since": 1_700_000_500u64,
        "error": format!("app is not consented in tenant {t}"), "code": 700016, "trace_id": "trace-1"
    }))
    .unwrap()
}

pub async fn every_field_of_a_record_survives_the_store(backend: Backend) {
    let registry = backend.registry().await;
    let t = tenant(1);
    let mut record = full_record(t.clone());
    record.account = Some("acct-1".into());
    record.health = Some(needs_consent_health());
    registry.upsert(record.clone()).await.unwrap();
    assert_eq!(registry.get(&t).await.unwrap(), Some(record.clone()));
    assert_eq!(registry.list().await.unwrap(), vec![record.clone()]);

    // Health alone, then state alone: every other field stays.
    assert!(registry.set_health(&t, None).await.unwrap());
    assert!(
        registry
            .set_state(&t, OnboardingState::Revoked)
            .await
            .unwrap()
    );
    let stored = registry.get(&t).await.unwrap().unwrap();
    assert_eq!(stored.health, None);
    assert_eq!(stored.state, OnboardingState::Revoked);
    assert_eq!(stored.proof, record.proof);
    assert_eq!(stored.linked_at, record.linked_at);
    assert_eq!(stored.allowed_scopes, record.allowed_scopes);

    // Unknown tenants: nothing written, and said so.
    assert!(
        !registry
            .set_state(&tenant(2), OnboardingState::Active)
            .await
            .unwrap()
    );
    assert!(!registry.set_health(&tenant(2), None).await.unwrap());
    assert_eq!(registry.get(&tenant(2)).await.unwrap(), None);
}

pub async fn a_tenant_linked_to_one_account_is_refused_to_another(backend: Backend) {
    let registry = backend.registry().await;
    let t = tenant(1);
    let linked = registry
        .link("acct-x", full_record(t.clone()), Relink::Refuse)
        .await
        .unwrap();
    assert_eq!(linked.account.as_deref(), Some("acct-x"));
    // The operator narrows the scopes; a second onboarding by the same account keeps them.
    let mut narrowed = linked.clone();
    narrowed.allowed_scopes = vec!["https://storage.azure.com/.default".into()];
    registry.upsert(narrowed.clone()).await.unwrap();
    let again = registry
        .link("acct-x", full_record(t.clone()), Relink::Refuse)
        .await
        .unwrap();
    assert_eq!(again.allowed_scopes, narrowed.allowed_scopes);

    match registry
        .link("acct-y", full_record(t.clone()), Relink::Refuse)
        .await
    {
        Err(LinkError::LinkedElsewhere {
            linked_account,
            requested_account,
            ..
        }) => {
            assert_eq!(linked_account, "acct-x");
            assert_eq!(requested_account, "acct-y");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        registry.get(&t).await.unwrap().unwrap().account.as_deref(),
        Some("acct-x")
    );
    let moved = registry
        .link("acct-y", full_record(t.clone()), Relink::MoveToThisAccount)
        .await
        .unwrap();
    assert_eq!(moved.account.as_deref(), Some("acct-y"));
    let domain = TenantRecord::new("contoso.com".parse().unwrap(), "C", OnboardingState::Active);
    assert!(matches!(
        registry.link("acct-x", domain, Relink::Refuse).await,
        Err(LinkError::TenantNotGuid { .. })
    ));
}

pub async fn fifty_concurrent_links_of_one_tenant_link_it_exactly_once(backend: Backend) {
    let registry = backend.registry().await;
    let t = tenant(7);
    let mut links = Vec::new();
    for i in 0..50 {
        let registry = registry.clone();
        let record = full_record(t.clone());
        links.push(tokio::spawn(async move {
            registry
                .link(&format!("acct-{i}"), record, Relink::Refuse)
                .await
                .map(|r| r.account)
        }));
    }
    let mut won = Vec::new();
    for link in links {
        match link.await.unwrap() {
            Ok(account) => won.push(account.unwrap()),
            Err(LinkError::LinkedElsewhere { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won.len(), 1, "winners: {won:?}");
    let stored = registry.get(&t).await.unwrap().unwrap();
    assert_eq!(stored.account.as_ref(), Some(&won[0]));
}

/// Counts health writes on the way to the real registry.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn TenantRegistry>,
    health_writes: AtomicUsize,
}

#[async_trait::async_trait]
impl TenantRegistry for Counting {
    async fn list(&self) -> Result<Vec<TenantRecord>, Error> {
        self.inner.list().await
    }
    async fn get(&self, t: &TenantId) -> Result<Option<TenantRecord>, Error> {
        self.inner.get(t).await
    }
    async fn upsert(&self, r: TenantRecord) -> Result<(), Error> {
        self.inner.upsert(r).await
    }
    async fn link(&self, a: &str, r: TenantRecord, l: Relink) -> Result<TenantRecord, LinkError> {
        self.inner.link(a, r, l).await
    }
    async fn set_health(&self, t: &TenantId, h: Option<TenantHealth>) -> Result<bool, Error> {
        self.health_writes.fetch_add(1, Ordering::SeqCst);
        self.inner.set_health(t, h).await
    }
}

/// A cache on the world's clock, so a test can move past its memory of refusals.
fn on_world_clock(
    w: &crate::world::World,
) -> azure_cross_tenant::Cached<azure_cross_tenant::ClientSecret> {
    azure_cross_tenant::Cached::with_options(
        w.credential(),
        azure_cross_tenant::CacheOptions::default().clock(Arc::new(w.clock.clone())),
    )
    .unwrap()
}

pub async fn health_is_written_once_per_change_and_cleared_by_a_success(backend: Backend) {
    let w = crate::world::World::new().await;
    let inner = backend.registry().await;
    let registry = Arc::new(Counting {
        inner: inner.clone(),
        health_writes: AtomicUsize::new(0),
    });
    let (t, _) = w.newcomer("lost.example");
    let record = TenantRecord::new(t.clone(), "Lost", OnboardingState::Active);
    registry.link("acct", record, Relink::Refuse).await.unwrap();
    let monitor = TenantHealthMonitor::with_clock(registry.clone(), Arc::new(w.clock.clone()));
    let provider = monitor.watch(on_world_clock(&w));

    // Never consented: a hundred calls at once, one write.
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let (provider, t) = (provider.clone(), t.clone());
            tokio::spawn(async move {
                use azure_cross_tenant::TenantCredentialProvider as _;
                provider.get_token(&t, &[crate::world::VAULT]).await
            })
        })
        .collect();
    for call in calls {
        assert!(matches!(
            call.await.unwrap(),
            Err(Error::NotConsented { .. })
        ));
    }
    assert_eq!(registry.health_writes.load(Ordering::SeqCst), 1);
    let marked = inner.get(&t).await.unwrap().unwrap();
    let health = marked.health.expect("marked");
    assert_eq!(health.condition, TenantCondition::NeedsConsent);
    assert_eq!(health.code, Some(700016));
    assert!(health.trace_id.is_some(), "{health:?}");
    assert_eq!(
        marked.account.as_deref(),
        Some("acct"),
        "nothing else changed"
    );

    // Still broken: no write. Consented: the next success clears it, once.
    use azure_cross_tenant::TenantCredentialProvider as _;
    let _ = provider.get_token(&t, &[crate::world::VAULT]).await;
    assert_eq!(registry.health_writes.load(Ordering::SeqCst), 1);
    w.entra.consent(&t, &w.app);
    // The cache remembers the tenant's refusal for its window (a minute, jittered), so
    // the consent is seen once the window has passed.
    w.clock.advance(Duration::from_secs(120));
    for _ in 0..5 {
        provider
            .get_token(&t, &[crate::world::VAULT])
            .await
            .unwrap();
    }
    assert_eq!(registry.health_writes.load(Ordering::SeqCst), 2);
    assert_eq!(inner.get(&t).await.unwrap().unwrap().health, None);
}

pub async fn a_round_skips_tenants_needing_consent_and_reports_what_changed(backend: Backend) {
    let w = crate::world::World::new().await;
    let registry = backend.registry().await;
    let mut tenants = Vec::new();
    for i in 0..4 {
        let (t, _) = w.newcomer(&format!("c{i}.example"));
        w.entra.consent(&t, &w.app);
        let record = TenantRecord::new(t.clone(), format!("C{i}"), OnboardingState::Active);
        registry
            .link(&format!("acct-{i}"), record, Relink::Refuse)
            .await
            .unwrap();
        tenants.push(t);
    }
    w.entra.revoke_consent(&tenants[2], &w.app);
    let monitor = TenantHealthMonitor::with_clock(registry.clone(), Arc::new(w.clock.clone()));
    let provider = on_world_clock(&w);
    let round = |options| {
        let provider = provider.clone();
        let monitor = monitor.clone();
        async move {
            monitor
                .for_each_active(options, |r| {
                    let provider = provider.clone();
                    async move { provider.get_token(&r.tenant, &[crate::world::VAULT]).await }
                })
                .await
                .unwrap()
        }
    };
    let first = round(RoundOptions::new(2)).await;
    assert_eq!(first.results.len(), 4);
    assert_eq!(first.changed.len(), 1, "{:?}", first.changed);
    assert_eq!(first.changed[0].tenant, tenants[2]);
    assert_eq!(first.changed[0].after, Some(TenantCondition::NeedsConsent));

    // The next round skips it, and nothing changes.
    let second = round(RoundOptions::new(2)).await;
    assert_eq!(second.results.len(), 3);
    assert_eq!(
        second.skipped,
        vec![(tenants[2].clone(), TenantCondition::NeedsConsent)]
    );
    assert!(second.changed.is_empty());
    let plain =
        azure_cross_tenant::for_each_active(registry.as_ref(), 2, |_| async { Ok::<_, Error>(()) })
            .await
            .unwrap();
    assert_eq!(plain.len(), 3, "the plain loop skips it too");

    // Consent again; once the cache's memory of the refusal has passed, a round that
    // includes such tenants finds it working and clears it.
    w.entra.consent(&tenants[2], &w.app);
    w.clock.advance(Duration::from_secs(120));
    let third = round(RoundOptions::new(2).include_needing_consent()).await;
    assert_eq!(third.results.len(), 4);
    assert_eq!(third.changed.len(), 1);
    assert_eq!(third.changed[0].after, None);
    assert_eq!(
        registry.get(&tenants[2]).await.unwrap().unwrap().health,
        None
    );
}

pub async fn a_database_that_goes_down_gives_a_retryable_error_and_no_half_record(
    backend: Backend,
) {
    let url = backend.fresh_url().await;
    SqlRegistry::connect(&url).await.unwrap(); // the schema
    let port = crate::servers::postgres().port;
    let relay = crate::browser::Relay::start(port).await;
    let through = url.replace(&format!(":{port}/"), &format!(":{}/", relay.port));
    let registry = SqlRegistry::connect(&through).await.unwrap();
    let t = tenant(3);
    registry
        .link("acct", full_record(t.clone()), Relink::Refuse)
        .await
        .unwrap();

    relay.cut();
    let mut record = full_record(t.clone());
    record.display_name = "Changed while down".into();
    match registry.link("acct", record, Relink::Refuse).await {
        Err(LinkError::Registry(e @ Error::Database { .. })) => {
            assert!(e.is_retryable(), "{e}");
            assert!(!e.to_string().contains("postgres://"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let err = registry.list().await.unwrap_err();
    assert!(err.is_retryable(), "{err}");

    // The database itself holds the record as linked first, whole.
    let direct = SqlRegistry::connect(&url).await.unwrap();
    let stored = direct.get(&t).await.unwrap().unwrap();
    assert_eq!(stored.display_name, full_record(t).display_name);
}

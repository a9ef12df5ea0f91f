//! One tenant, one cache identity across the fleet: what one replica fetched by domain,
//! another gets by GUID from L2 (and the other way round), under one Redis entry, and a
//! tenant invalidation by either form tombstones both for every replica's L2 reads.

use super::{Backend, on_both, replica};
use crate::common::{VAULT, World};
use azure_cross_tenant::TenantId;

on_both!(
    replicas_asking_by_domain_and_by_guid_share_one_l2_entry,
    an_invalidation_by_guid_reaches_a_replica_asking_by_domain,
    an_invalidation_by_domain_reaches_a_replica_asking_by_guid,
);

fn domain() -> TenantId {
    "fabrikam.example".parse().unwrap()
}

async fn replicas_asking_by_domain_and_by_guid_share_one_l2_entry(backend: Backend) {
    let w = World::new().await;
    let (a, b) = (replica(&w, &backend), replica(&w, &backend));
    let by_domain = a.get_token(&domain(), &[VAULT]).await.unwrap();
    let by_guid = b.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(by_guid.secret(), by_domain.secret());
    assert_eq!(w.entra.token_requests(), 1);
    let mut raw = backend.raw().await;
    assert_eq!(raw.keys("act:*:t:*").await.len(), 1, "one value in Redis");

    // The other way round, on another scope.
    const STORAGE: &str = "https://storage.azure.com/.default";
    let by_guid = b.get_token(&w.customer, &[STORAGE]).await.unwrap();
    let c = replica(&w, &backend);
    let by_domain = c.get_token(&domain(), &[STORAGE]).await.unwrap();
    assert_eq!(by_guid.secret(), by_domain.secret());
    assert_eq!(w.entra.token_requests(), 2);
    assert_eq!(raw.keys("act:*:t:*").await.len(), 2);
}

async fn an_invalidation_by_guid_reaches_a_replica_asking_by_domain(backend: Backend) {
    let w = World::new().await;
    let a = replica(&w, &backend);
    let old = a.get_token(&domain(), &[VAULT]).await.unwrap();
    a.invalidate_tenant(&w.customer).await;
    let fresh = replica(&w, &backend);
    let new = fresh.get_token(&domain(), &[VAULT]).await.unwrap();
    assert_ne!(
        new.secret(),
        old.secret(),
        "a replica got the old token from L2"
    );
    let new_on_a = a.get_token(&domain(), &[VAULT]).await.unwrap();
    assert_ne!(
        new_on_a.secret(),
        old.secret(),
        "A kept the old token in memory"
    );
}

async fn an_invalidation_by_domain_reaches_a_replica_asking_by_guid(backend: Backend) {
    let w = World::new().await;
    let a = replica(&w, &backend);
    let old = a.get_token(&w.customer, &[VAULT]).await.unwrap();
    // A replica that never asked by domain invalidates by domain.
    replica(&w, &backend).invalidate_tenant(&domain()).await;
    let fresh = replica(&w, &backend);
    let new = fresh.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_ne!(
        new.secret(),
        old.secret(),
        "a replica got the old token from L2"
    );
    // And invalidating by domain on A drops its memory of the token asked by GUID.
    let before = a.get_token(&w.customer, &[VAULT]).await.unwrap();
    a.invalidate_tenant(&domain()).await;
    let after = a.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_ne!(after.secret(), before.secret());
}

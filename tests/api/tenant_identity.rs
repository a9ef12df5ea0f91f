//! One tenant, one cache identity: a tenant asked for by one of its domains and by its
//! GUID shares one entry, and invalidating either form drops both. The GUID comes from
//! the tenant's OpenID metadata before the first token, and from tokens' `tid` after.
//! Memory only here; with the shared cache in `l2::identity`.

use std::sync::Arc;

use crate::common::{VAULT, World};
use azure_cross_tenant::{CacheOptions, Cached, ClientSecret, TenantId};

const STORAGE: &str = "https://storage.azure.com/.default";

fn cached(w: &World) -> Cached<ClientSecret> {
    Cached::with_options(
        w.credential(),
        CacheOptions::default().clock(Arc::new(w.clock.clone())),
    )
    .unwrap()
}

fn domain() -> TenantId {
    "fabrikam.example".parse().unwrap()
}

#[tokio::test]
async fn a_tenant_asked_by_guid_then_by_domain_shares_one_entry() {
    let w = World::new().await;
    let cache = cached(&w);
    let by_guid = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    let by_domain = cache.get_token(&domain(), &[VAULT]).await.unwrap();
    assert_eq!(by_domain.secret(), by_guid.secret());
    assert_eq!(w.entra.token_requests(), 1);
    assert_eq!(cache.stats().entries, 1);
}

#[tokio::test]
async fn a_tenant_asked_by_domain_then_by_guid_shares_one_entry() {
    let w = World::new().await;
    let cache = cached(&w);
    let by_domain = cache.get_token(&domain(), &[VAULT]).await.unwrap();
    let by_guid = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(by_domain.secret(), by_guid.secret());
    // Hits by domain once the GUID is known: no request of any kind.
    let asked = w.entra.requests().len();
    for _ in 0..10 {
        let again = cache.get_token(&domain(), &[VAULT]).await.unwrap();
        assert_eq!(again.secret(), by_guid.secret());
        assert!(cache.get_if_fresh(&domain(), &[VAULT]).is_some());
    }
    assert_eq!(w.entra.requests().len(), asked);
    assert_eq!(w.entra.token_requests(), 1);
    assert_eq!(cache.stats().entries, 1);
}

#[tokio::test]
async fn invalidating_a_tenant_by_guid_drops_what_was_asked_by_domain() {
    let w = World::new().await;
    let cache = cached(&w);
    let old = cache.get_token(&domain(), &[VAULT]).await.unwrap();
    cache.get_token(&domain(), &[STORAGE]).await.unwrap();
    cache.invalidate_tenant(&w.customer).await;
    let new = cache.get_token(&domain(), &[VAULT]).await.unwrap();
    assert_ne!(new.secret(), old.secret());
    cache.get_token(&domain(), &[STORAGE]).await.unwrap();
    assert_eq!(w.entra.token_requests(), 4);

    // One entry of it, by the other form.
    cache.invalidate(&w.customer, &[VAULT]).await;
    let newer = cache.get_token(&domain(), &[VAULT]).await.unwrap();
    assert_ne!(newer.secret(), new.secret());
    assert_eq!(w.entra.token_requests(), 5);
}

#[tokio::test]
async fn invalidating_a_tenant_by_domain_drops_what_was_asked_by_guid() {
    let w = World::new().await;
    let cache = cached(&w);
    let old = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    // This cache never saw the domain: it learns the GUID from the tenant's metadata.
    cache.invalidate_tenant(&domain()).await;
    let new = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_ne!(new.secret(), old.secret());
    assert_eq!(w.entra.token_requests(), 2);

    cache.invalidate(&domain(), &[VAULT]).await;
    let newer = cache.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_ne!(newer.secret(), new.secret());
    assert_eq!(w.entra.token_requests(), 3);
}

#[tokio::test]
async fn two_domains_of_one_tenant_share_its_entry() {
    let w = World::new().await;
    w.entra
        .add_domain(&w.customer, "fabrikam.onmicrosoft.example");
    let other: TenantId = "fabrikam.onmicrosoft.example".parse().unwrap();
    let cache = cached(&w);
    let a = cache.get_token(&domain(), &[VAULT]).await.unwrap();
    let b = cache.get_token(&other, &[VAULT]).await.unwrap();
    assert_eq!(a.secret(), b.secret());
    assert_eq!(w.entra.token_requests(), 1);
    cache.invalidate_tenant(&other).await;
    let c = cache.get_token(&domain(), &[VAULT]).await.unwrap();
    assert_ne!(c.secret(), a.secret());
}

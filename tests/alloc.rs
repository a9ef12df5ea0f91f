//! A warm cache hit allocates nothing: counted by an instrumented global allocator, in
//! its own small test binary (a global allocator applies to a whole binary, and this one
//! must not slow or skew the main `tests/api` suite).

use std::alloc::System;
use std::time::Duration;

use azure_cross_tenant::{
    AccessToken, Cached, Clock, Error, Scopes, SystemClock, TenantCredentialProvider, TenantId,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const VAULT: &str = "https://vault.azure.net/.default";
const HITS: usize = 100_000;

/// Mints an hour-long token in-process for any tenant and scope. `tenantN.example` has
/// a GUID, as a credential would learn from the tenant's metadata; `plainN.example` not.
#[derive(Debug)]
struct Minted;

fn guid_of(domain: &str) -> Option<TenantId> {
    let n: u32 = domain
        .strip_prefix("tenant")?
        .strip_suffix(".example")?
        .parse()
        .ok()?;
    format!("{n:08x}-0000-4000-8000-00000000a110").parse().ok()
}

#[async_trait::async_trait]
impl TenantCredentialProvider for Minted {
    fn client_id(&self) -> &str {
        "00000000-0000-0000-0000-0000000000a1"
    }
    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        let expires = SystemClock::default().now() + Duration::from_secs(3600);
        Ok(AccessToken::new(
            "eyJ0.x.y",
            expires,
            tenant.clone(),
            Scopes::parse(scopes)?,
        ))
    }
    async fn resolve_tenant(&self, tenant: &TenantId) -> Result<Option<TenantId>, Error> {
        Ok(guid_of(tenant.as_str()).or_else(|| tenant.is_guid().then(|| tenant.clone())))
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = Cached::new(Minted);
    // Hits by domain (through the domain's known GUID), by GUID, and by a domain
    // without one (keyed by itself).
    let tenants: Vec<TenantId> = (0..100)
        .map(|i| match i % 3 {
            0 => format!("tenant{i}.example").parse().unwrap(),
            1 => guid_of(&format!("tenant{i}.example")).unwrap(),
            _ => format!("plain{i}.example").parse().unwrap(),
        })
        .collect();
    rt.block_on(async {
        // Warm: every key cached, thread-locals and the store's buffers set up.
        for _ in 0..3 {
            for t in &tenants {
                cache.get_token(t, &[VAULT]).await.unwrap();
            }
        }
        let region = Region::new(GLOBAL);
        for i in 0..HITS {
            let token = cache.get_token(&tenants[i % tenants.len()], &[VAULT]).await;
            std::hint::black_box(token.unwrap());
        }
        let async_hits = region.change();
        let region = Region::new(GLOBAL);
        for i in 0..HITS {
            std::hint::black_box(
                cache
                    .get_if_fresh(&tenants[i % tenants.len()], &[VAULT])
                    .unwrap(),
            );
        }
        let sync_hits = region.change();
        println!(
            "{HITS} warm hits through get_token: {} allocations; through get_if_fresh: {}",
            async_hits.allocations, sync_hits.allocations
        );
        assert_eq!(
            async_hits.allocations, 0,
            "get_token hits allocated: {async_hits:?}"
        );
        assert_eq!(
            sync_hits.allocations, 0,
            "get_if_fresh hits allocated: {sync_hits:?}"
        );
        assert_eq!(async_hits.reallocations + sync_hits.reallocations, 0);
    });
    assert_eq!(cache.stats().misses, 100);
    println!("alloc: 1 passed, 0 failed");
}

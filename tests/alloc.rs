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

/// Mints an hour-long token in-process for any tenant and scope.
#[derive(Debug)]
struct Minted;

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
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = Cached::new(Minted);
    let tenants: Vec<TenantId> = (0..100)
        .map(|i| format!("tenant{i}.example").parse().unwrap())
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

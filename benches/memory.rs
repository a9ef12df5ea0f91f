//! Heap bytes per cached (tenant, scope) entry at 100,000 entries, counted by an
//! instrumented allocator (its own binary, so it does not slow the timing benches).
//!
//! Run: `cargo bench -p azure-cross-tenant-benches --bench memory`

#![allow(missing_docs)]

mod support;

use support::{Minted, TOKEN_LEN};

use std::alloc::System;

use azure_cross_tenant::{CacheOptions, Cached, TenantId};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ENTRIES: usize = 100_000;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tenants: Vec<TenantId> = (0..ENTRIES)
        .map(|i| {
            format!("{:08x}-0000-4000-8000-000000000000", i)
                .parse()
                .unwrap()
        })
        .collect();
    let region = Region::new(GLOBAL);
    let cache = Cached::with_options(
        Minted,
        CacheOptions::default().max_entries(2 * ENTRIES as u64),
    )
    .unwrap();
    rt.block_on(async {
        for t in &tenants {
            cache
                .get_token(t, &["https://vault.azure.net/.default"])
                .await
                .unwrap();
        }
    });
    let entries = cache.stats().entries;
    let change = region.change();
    let live = change.bytes_allocated as i64 - change.bytes_deallocated as i64;
    let per_entry = live as f64 / entries as f64;
    println!(
        "memory: {entries} entries, {per_entry:.0} heap bytes per entry = {:.2}x the token's {TOKEN_LEN} bytes \
         (of which {:.0} bytes of bookkeeping; tenant ids are shared with the caller)",
        per_entry / TOKEN_LEN as f64,
        per_entry - TOKEN_LEN as f64
    );
    drop(cache);
}

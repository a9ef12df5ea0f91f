//! No token leaves the cache with less than its expiry margin left, whether it comes
//! from L1 or from L2, whichever replica put it there and however late it is read.

use std::time::Duration;

use super::{Backend, keys, on_both, replica, shared};
use crate::common::{VAULT, World};
use azure_cross_tenant::{CacheOptions, Cached, Clock};

on_both!(no_token_with_less_than_its_margin_left_is_served_from_l1_or_l2);

async fn no_token_with_less_than_its_margin_left_is_served_from_l1_or_l2(backend: Backend) {
    let w = World::new().await;
    // 60 s tokens: the 5 min default skew is capped at a quarter of the lifetime.
    let lifetime = Duration::from_secs(60);
    let margin = lifetime / 4;
    w.entra.set_token_lifetime(lifetime);
    // A refreshes ahead; B and the latecomers only ever miss, so they read L2 whenever
    // their own copy runs out.
    let a = replica(&w, &backend);
    let lazy = || {
        Cached::with_options(
            w.credential(),
            CacheOptions::default()
                .clock(std::sync::Arc::new(w.clock.clone()))
                .refresh(false)
                .shared(shared(&backend, keys("k1", 1))),
        )
        .expect("valid cache options")
    };
    let b = lazy();
    let mut served = 0;
    let mut from_l2 = 0;
    for step in 0..200 {
        let latecomer = lazy();
        for r in [&a, &b, &latecomer] {
            let token = r.get_token(&w.customer, &[VAULT]).await.unwrap();
            let now = w.clock.now();
            let left = token.expires_on().duration_since(now).unwrap_or_default();
            assert!(
                left > margin,
                "step {step}: served with {left:?} left (margin {margin:?})"
            );
            served += 1;
        }
        from_l2 += latecomer.stats().l2_hits;
        a.wait_for_refreshes().await;
        w.clock.advance(Duration::from_millis(700));
    }
    // 140 s: more than two lifetimes, every token checked, most latecomers served by L2.
    assert_eq!(served, 600);
    assert!(
        from_l2 > 100,
        "only {from_l2} latecomers were served from L2"
    );
}

//! Every L2 read is bounded: whoever can write to Redis can make a lookup miss, never make
//! it read megabytes.

use std::time::Duration;

use super::{Backend, on_both, replica};
use crate::common::{VAULT, World};
use azure_cross_tenant::insecure::decode_unverified;

on_both!(huge_values_in_redis_cost_misses_not_megabytes);

/// 16 MiB at the global tombstone and at the customer's token: ten replicas looking the
/// customer up read a few bytes of each (every lookup a miss while they stand: the safe
/// reading of values nobody should have written), and once they are gone the same
/// replicas share tokens again.
async fn huge_values_in_redis_cost_misses_not_megabytes(backend: Backend) {
    let w = World::new().await;
    w.entra.consent(&w.stranger, &w.app);
    let writer = replica(&w, &backend);
    let stored = writer.get_token(&w.customer, &[VAULT]).await.unwrap();
    let mut raw = backend.raw().await;
    let value_key = raw.keys("*:t:*").await.remove(0);
    let huge = vec![b'7'; 16 << 20];
    raw.set("act:x", &huge).await;
    raw.set(&value_key, &huge).await;

    let before = backend.bytes_sent();
    let readers: Vec<_> = (0..10).map(|_| replica(&w, &backend)).collect();
    for reader in &readers {
        let token = reader.get_token(&w.customer, &[VAULT]).await.unwrap();
        assert_ne!(token.secret(), stored.secret(), "served past a tombstone");
        let tid = decode_unverified(token.secret()).unwrap().tid;
        assert_eq!(tid.as_deref(), Some(w.customer.as_str()));
    }
    let sent = backend.bytes_sent() - before;
    assert!(sent < 1 << 20, "ten lookups read {sent} bytes from Redis");

    // The huge values gone, the replicas that met them share tokens again.
    raw.query::<()>(redis::cmd("DEL").arg("act:x").arg(&value_key))
        .await;
    w.clock.advance(Duration::from_secs(1));
    let fresh = writer.get_token(&w.stranger, &[VAULT]).await.unwrap();
    let asked = w.entra.token_requests();
    for reader in &readers {
        let token = reader.get_token(&w.stranger, &[VAULT]).await.unwrap();
        assert_eq!(token.secret(), fresh.secret());
    }
    assert_eq!(
        w.entra.token_requests(),
        asked,
        "a replica that met a huge value stopped using L2: {:?}",
        readers[0].stats()
    );
}

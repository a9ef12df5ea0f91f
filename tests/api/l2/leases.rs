//! Cross-replica leases: the holder frees its own lease, a waiter never frees another
//! replica's, and the wait runs on the cache's injected clock and sleeper.

use std::sync::Arc;
use std::time::Duration;

use super::{Backend, keys, on_both, replica, replica_with, shared};
use crate::common::{VAULT, World};
use azure_cross_tenant::Clock;

on_both!(a_replica_that_waited_on_another_replicas_lease_never_releases_it);

async fn a_replica_that_waited_on_another_replicas_lease_never_releases_it(backend: Backend) {
    let w = World::new().await;
    let a = replica(&w, &backend);
    a.get_token(&w.customer, &[VAULT]).await.unwrap();
    let mut raw = backend.raw().await;
    assert_eq!(
        raw.keys("*:l:*").await,
        Vec::<String>::new(),
        "the holder freed its lease"
    );

    // Another replica (gone quiet) holds the lease, and L2 has no token: the lease sits
    // beside the entry's value, in the same hash slot.
    let values = raw.keys("*:t:*").await;
    assert_eq!(values.len(), 1, "{values:?}");
    let lease = values[0].replacen(":t:", ":l:", 1);
    raw.query::<()>(redis::cmd("DEL").arg(&values[0])).await;
    raw.query::<()>(
        redis::cmd("SET")
            .arg(&lease)
            .arg("another-replica")
            .arg("PX")
            .arg(600_000),
    )
    .await;

    // B waits 30 s for it on the world's clock, which its sleeper moves: no real waiting.
    let b = replica_with(
        &w,
        shared(&backend, keys("k1", 1))
            .lease_wait(Some(Duration::from_secs(30)))
            .sleeper(Arc::new(w.clock.clone())),
    );
    let started = w.clock.now();
    let token = tokio::time::timeout(Duration::from_secs(10), b.get_token(&w.customer, &[VAULT]))
        .await
        .expect("the lease wait runs on the injected clock and sleeper")
        .unwrap();
    assert!(!token.secret().is_empty());
    let waited = w.clock.now().duration_since(started).unwrap();
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
        "waited {waited:?} on the injected clock"
    );
    assert_eq!(
        w.entra.token_requests(),
        2,
        "B asked Entra itself after the wait"
    );
    assert_eq!(
        raw.get(&lease).await.as_deref(),
        Some(&b"another-replica"[..]),
        "B released a lease it did not hold"
    );
}

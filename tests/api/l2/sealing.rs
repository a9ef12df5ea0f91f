//! Sealed values: a value copied under another entry, tampered with, or sealed under a
//! key no longer configured is a miss (and is deleted), never an error; a key rotation
//! keeps the values written before it readable while the retired key is configured.

use super::{Backend, keys, on_both, replica_with, shared};
use crate::common::{VAULT, World};
use azure_cross_tenant::SealingKeys;
use azure_cross_tenant::insecure::decode_unverified;

on_both!(
    moved_tampered_and_unknown_key_values_are_rejected_and_replaced,
    a_rotated_replica_reads_what_replicas_on_the_retired_key_stored,
);

async fn moved_tampered_and_unknown_key_values_are_rejected_and_replaced(backend: Backend) {
    let w = World::new().await;
    w.entra.consent(&w.stranger, &w.app);
    let writer = replica_with(&w, shared(&backend, keys("old", 1)));
    writer.get_token(&w.customer, &[VAULT]).await.unwrap();
    let mut raw = backend.raw().await;
    let first = raw.keys("*:t:*").await;
    writer.get_token(&w.stranger, &[VAULT]).await.unwrap();
    let all = raw.keys("*:t:*").await;
    let customer_key = first[0].clone();
    let stranger_key = all.into_iter().find(|k| *k != customer_key).unwrap();
    let customer_value = raw.get(&customer_key).await.unwrap();

    // Without the old key, the stranger's value is a miss (and Entra is asked). The
    // names differ under another key, so put the value where the new key looks.
    let only_new = replica_with(&w, shared(&backend, keys("new", 2)));
    only_new.get_token(&w.customer, &[VAULT]).await.unwrap();
    let new_customer_key = raw
        .keys("*:t:*")
        .await
        .into_iter()
        .find(|k| *k != customer_key && *k != stranger_key)
        .unwrap();
    raw.set(&new_customer_key, &customer_value).await;
    let before = w.entra.token_requests();
    let late = replica_with(&w, shared(&backend, keys("new", 2)));
    late.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(w.entra.token_requests(), before + 1);
    assert_eq!(late.stats().l2_open_failures, 1);

    // The customer's value copied under the stranger's key: refused, never served. (In a
    // cluster the copy lands in another slot; the seal refuses it all the same.)
    raw.set(&stranger_key, &customer_value).await;
    let victim = replica_with(&w, shared(&backend, keys("old", 1)));
    let token = victim.get_token(&w.stranger, &[VAULT]).await.unwrap();
    assert_eq!(
        decode_unverified(token.secret()).unwrap().tid.as_deref(),
        Some(w.stranger.as_str())
    );
    assert_eq!(victim.stats().l2_open_failures, 1);

    // A flipped byte: refused.
    let mut tampered = customer_value.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    raw.set(&customer_key, &tampered).await;
    let fresh = replica_with(&w, shared(&backend, keys("old", 1)));
    let token = fresh.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(
        decode_unverified(token.secret()).unwrap().tid.as_deref(),
        Some(w.customer.as_str())
    );
    assert_eq!(fresh.stats().l2_open_failures, 1);
}

async fn a_rotated_replica_reads_what_replicas_on_the_retired_key_stored(backend: Backend) {
    let w = World::new().await;
    let old = replica_with(&w, shared(&backend, keys("2026-10", 1)));
    let stored = old.get_token(&w.customer, &[VAULT]).await.unwrap();
    let rotated = SealingKeys::new("2026-11", [2; 32])
        .unwrap()
        .with_previous("2026-10", [1; 32])
        .unwrap();
    let new = replica_with(&w, shared(&backend, rotated));
    let read = new.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(read.secret(), stored.secret());
    assert_eq!(
        w.entra.token_requests(),
        1,
        "read under the retired key's names"
    );
}

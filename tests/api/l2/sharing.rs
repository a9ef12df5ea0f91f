//! Replicas share tokens through L2, and what Redis holds says nothing about tenants.

use aws_lc_rs::digest;

use super::{Backend, on_both, replica};
use crate::common::{VAULT, World};
use azure_cross_tenant::TenantCredentialProvider;
use azure_cross_tenant::insecure::decode_unverified;

on_both!(
    a_second_replica_gets_the_first_replicas_token_without_asking_entra,
    listing_redis_keys_tells_nothing_about_which_tenants_are_customers,
    eight_cold_replicas_on_two_hundred_tenants_ask_entra_about_once_per_tenant,
);

async fn a_second_replica_gets_the_first_replicas_token_without_asking_entra(backend: Backend) {
    let w = World::new().await;
    let a = replica(&w, &backend);
    let b = replica(&w, &backend);
    let from_a = a.get_token(&w.customer, &[VAULT]).await.unwrap();
    let from_b = b.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(w.entra.token_requests(), 1);
    assert_eq!(from_a.secret(), from_b.secret());
    // Expiry and issue time travel at millisecond precision.
    let ms =
        |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    assert_eq!(ms(from_b.expires_on()), ms(from_a.expires_on()));
    assert_eq!(
        from_b.issued_on().map(ms),
        from_a.issued_on().map(ms),
        "the lifetime travels with the token"
    );
    let stats = b.stats();
    assert_eq!((stats.l2_hits, stats.misses), (1, 0), "{stats:?}");

    // Redis never sees the token in the clear.
    let mut raw = backend.raw().await;
    for k in raw.keys("*").await {
        let value = raw.get(&k).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&value);
        assert!(
            !text.contains(&from_a.secret()[..40]),
            "token in the clear under {k}"
        );
    }
}

/// An unkeyed hash of (authority, client id, tenant, scope) lets anyone who can list
/// keys test a guess: compute it for a tenant and look for it.
async fn listing_redis_keys_tells_nothing_about_which_tenants_are_customers(backend: Backend) {
    let w = World::new().await;
    let a = replica(&w, &backend);
    a.get_token(&w.customer, &[VAULT]).await.unwrap();
    let mut raw = backend.raw().await;
    let listed = raw.keys("*").await;
    assert!(!listed.is_empty());

    let authority = a.authority_host().as_str();
    let client_id = a.client_id();
    let tenant = w.customer.as_str();
    let guesses = [
        format!("{authority}\n{client_id}\n{tenant}\n{VAULT}"),
        format!("{authority}\n{client_id}\n{tenant}"),
        tenant.to_owned(),
    ];
    for guess in &guesses {
        let hex: String = digest::digest(&digest::SHA256, guess.as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        for key in &listed {
            assert!(
                !key.contains(&hex[..16]),
                "{key} is an unkeyed hash of {guess:?}"
            );
            assert!(!key.contains(tenant), "{key} names the tenant");
        }
    }

    // The same tenant under another sealing key has other names: the hash is keyed.
    let other = super::replica_with(&w, super::shared(&backend, super::keys("k2", 2)));
    other.get_token(&w.customer, &[VAULT]).await.unwrap();
    let after = raw.keys("*").await;
    let new: Vec<_> = after.iter().filter(|k| !listed.contains(k)).collect();
    assert!(
        !new.is_empty(),
        "another key names the same entry differently"
    );
}

async fn eight_cold_replicas_on_two_hundred_tenants_ask_entra_about_once_per_tenant(
    backend: Backend,
) {
    let w = World::new().await;
    let mut tenants = Vec::new();
    for i in 0..200 {
        let t = w.entra.add_tenant(&format!("t{i}.example"));
        w.entra.consent(&t, &w.app);
        tenants.push(t);
    }
    // 1,600 concurrent misses on a loaded 2-core machine: generous call timeouts and lease
    // waits (the mock serves the token requests on this test's own two threads, beside
    // 1,400 waiters polling Redis: under a busy CI box a fetch took over the default
    // 5 s wait, and its waiters then asked Entra themselves), and no circuit breaker, so
    // what is measured is the lease protocol, not latency.
    let replicas: Vec<_> = (0..8)
        .map(|_| {
            let shared = super::shared(&backend, super::keys("k1", 1))
                .timeout(std::time::Duration::from_secs(5))
                .lease_wait(Some(std::time::Duration::from_secs(30)))
                .circuit_breaker(u32::MAX, std::time::Duration::from_secs(1));
            super::replica_with(&w, shared)
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for r in &replicas {
        for t in &tenants {
            let (r, t) = (r.clone(), t.clone());
            tasks.spawn(async move {
                let token = r.get_token(&t, &[VAULT]).await.unwrap();
                let tid = decode_unverified(token.secret()).unwrap().tid;
                assert_eq!(tid.as_deref(), Some(t.as_str()));
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let requests = w.entra.token_requests();
    eprintln!(
        "8 replicas x 200 tenants, cold and concurrent: {requests} token requests (without L2: 1600)"
    );
    assert!(requests < 300, "{requests} token requests");
}

//! The onboarding's shared store in Redis (`SharedCache::onboarding_store`): one callback
//! replayed to two replicas at once is accepted once, and Redis access alone can neither
//! read a pending flow nor forge one.

use std::sync::Arc;

use super::{Backend, keys, on_both, shared};
use crate::common::{VAULT, World};
use azure_cross_tenant::{Cached, Onboarding, OnboardingError, PendingSignIn, SignInTenant};

on_both!(
    a_callback_replayed_to_two_replicas_on_one_redis_is_accepted_once,
    a_pending_flow_in_redis_is_sealed_and_expires_on_the_onboarding_clock,
);

const SIGNED_IN: &str = "https://saas.example/onboarding/signed-in";

/// A replica: its own Redis connection and its own `Onboarding`, sharing the store.
fn replica(w: &World, backend: &Backend) -> Onboarding {
    Onboarding::builder(Cached::new(w.credential()), VAULT, SIGNED_IN)
        .clock(Arc::new(w.clock.clone()))
        .sleeper(Arc::new(w.clock.clone()))
        .store(shared(backend, keys("k1", 1)).onboarding_store())
        .build()
        .unwrap()
}

async fn a_callback_replayed_to_two_replicas_on_one_redis_is_accepted_once(backend: Backend) {
    let w = World::new().await;
    w.entra.add_redirect_uri(&w.app, SIGNED_IN);
    let (one, two) = (replica(&w, &backend), replica(&w, &backend));
    for round in 0..5 {
        let domain = format!("n{round}.example");
        let tenant = w.entra.add_tenant(&domain);
        let admin = w.entra.add_admin(&tenant, &format!("admin@{domain}"));
        w.entra.sign_in(&admin);
        let (authorize, pending) = one.sign_in(SignInTenant::Organizations).unwrap();
        let saved = serde_json::to_string(&pending).unwrap();
        let back = w.entra.follow(authorize.as_str()).await.unwrap();
        let answer = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&back.params)
            .finish();
        let copy: PendingSignIn = serde_json::from_str(&saved).unwrap();
        let (a, b) = tokio::join!(
            one.finish_sign_in(pending, &answer),
            two.finish_sign_in(copy, &answer)
        );
        let accepted = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(accepted, 1, "round {round}: {a:?} / {b:?}");
        let refused = if a.is_ok() { b } else { a };
        assert!(
            matches!(refused, Err(OnboardingError::Replayed)),
            "round {round}: {refused:?}"
        );
    }
}

async fn a_pending_flow_in_redis_is_sealed_and_expires_on_the_onboarding_clock(backend: Backend) {
    let store = shared(&backend, keys("k1", 1)).onboarding_store();
    let now = 1_000_000;
    let secretish = b"nonce=n-0123456789 verifier=v-abcdefghijklmnop";
    store.put("flow:a", secretish, now + 900).await.unwrap();
    assert_eq!(
        store.get("flow:a", now).await.unwrap().as_deref(),
        Some(&secretish[..])
    );

    // What Redis holds tells nothing, and bytes written there by anyone without the
    // sealing key (or moved from another key) are absent.
    let mut raw = backend.raw().await;
    let stored = raw
        .get("act:onboarding:flow:a")
        .await
        .expect("stored under its name");
    assert!(
        !stored
            .windows(8)
            .any(|w| secretish.windows(8).any(|s| s == w)),
        "the pending flow is readable in Redis"
    );
    raw.set("act:onboarding:flow:b", &stored).await;
    assert_eq!(
        store.get("flow:b", now).await.unwrap(),
        None,
        "a moved value opened"
    );
    raw.set("act:onboarding:flow:c", secretish).await;
    assert_eq!(
        store.take("flow:c", now).await.unwrap(),
        None,
        "a forged value opened"
    );
    let other = shared(&backend, keys("k2", 2)).onboarding_store();
    assert_eq!(other.get("flow:a", now).await.unwrap(), None);

    // Expiry is the onboarding's clock's, whatever Redis's TTL says.
    assert_eq!(store.get("flow:a", now + 901).await.unwrap(), None);
    assert!(
        store
            .insert_new("spent:s", b"", now + 60, now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .insert_new("spent:s", b"", now + 60, now + 30)
            .await
            .unwrap()
    );
    assert!(
        store
            .insert_new("spent:s", b"", now + 200, now + 61)
            .await
            .unwrap()
    );
    // Taken once.
    assert_eq!(
        store.take("flow:a", now).await.unwrap().as_deref(),
        Some(&secretish[..])
    );
    assert_eq!(store.take("flow:a", now).await.unwrap(), None);
}

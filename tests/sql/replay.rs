//! The onboarding's spent states in the shared store: one callback, two replicas, once.

use std::sync::Arc;
use std::time::Duration;

use azure_cross_tenant::{
    Cached, Onboarding, OnboardingError, PendingSignIn, SignInTenant, SqlRegistry,
};

use crate::Backend;
use crate::world::{VAULT, World};

const SIGNED_IN: &str = "https://saas.example/onboarding/signed-in";

/// A replica: its own connection pool to the database at `url`, its own `Onboarding`.
async fn replica(w: &World, url: &str) -> Onboarding {
    let registry = SqlRegistry::connect(url).await.unwrap();
    Onboarding::builder(Cached::new(w.credential()), VAULT, SIGNED_IN)
        .clock(Arc::new(w.clock.clone()))
        .sleeper(Arc::new(w.clock.clone()))
        .store(registry.onboarding_store())
        .build()
        .unwrap()
}

pub async fn a_callback_replayed_to_two_replicas_at_once_is_accepted_once(backend: Backend) {
    let w = World::new().await;
    w.entra.add_redirect_uri(&w.app, SIGNED_IN);
    let url = backend.fresh_url().await;
    let (one, two) = (replica(&w, &url).await, replica(&w, &url).await);
    for round in 0..5 {
        let (_, admin) = w.newcomer(&format!("n{round}.example"));
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

pub async fn expired_entries_are_purged(backend: Backend) {
    let w = World::new().await;
    let registry = SqlRegistry::connect(&backend.fresh_url().await)
        .await
        .unwrap();
    let store = registry.onboarding_store();
    let now = 1_000_000;
    store.put("flow:a", b"pending", now + 900).await.unwrap();
    assert!(
        store
            .insert_new("spent:b", b"", now + 60, now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .insert_new("spent:b", b"", now + 60, now)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get("flow:a", now).await.unwrap().as_deref(),
        Some(&b"pending"[..])
    );
    // Past its expiry an entry is gone to readers at once, and purged from the table.
    assert_eq!(store.get("spent:b", now + 61).await.unwrap(), None);
    assert!(
        store
            .insert_new("spent:b", b"", now + 200, now + 61)
            .await
            .unwrap()
    );
    assert_eq!(store.purge_expired(now + 901).await.unwrap(), 2);
    assert_eq!(store.purge_expired(now + 901).await.unwrap(), 0);
    assert_eq!(store.take("flow:a", now + 901).await.unwrap(), None);

    // The onboarding purges by itself as states are spent, at most once a minute.
    let onboarding = Onboarding::builder(Cached::new(w.credential()), VAULT, SIGNED_IN)
        .clock(Arc::new(w.clock.clone()))
        .store(store.clone())
        .max_age(Duration::from_secs(60))
        .build()
        .unwrap();
    let stale = azure_cross_tenant::Clock::now(&w.clock)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 10;
    store.put("flow:stale", b"x", stale).await.unwrap();
    let (_, pending) = onboarding.sign_in(SignInTenant::Organizations).unwrap();
    // A callback with the right state but an error: it spends the state (and purges).
    let state = serde_json::to_value(&pending).unwrap()["state"]
        .as_str()
        .unwrap()
        .to_owned();
    let _ = onboarding
        .finish_sign_in(pending, &format!("state={state}&code=c"))
        .await;
    assert_eq!(
        store.purge_expired(stale + 1).await.unwrap(),
        0,
        "already purged"
    );
}

//! Onboarding against the mock: admin sign-in proving the tenant, admin consent bound to
//! it (the tenant swap refused), proof that an admin acted (a directory role, or a fresh
//! consent; a forged callback from a non-admin refused), confirmation by a token
//! request, linking in the registry, and a daemon loop over the registry where one
//! failing tenant never stops the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::{VAULT, World};
use azure_cross_tenant::Clock as _;
use azure_cross_tenant::{
    AdminProof, Cached, ClientSecret, Error, InMemoryRegistry, LinkError, Onboarding,
    OnboardingError, OnboardingState, PendingConsent, PendingSignIn, Relink, ResponseMode,
    SignInTenant, SignedInAdmin, TenantId, TenantRecord, TenantRegistry, TokenValidator,
    ValidationError, for_each_active,
};
use mock_entra::{MockFault, MockRedirect, MockUser};

pub(crate) const SIGNED_IN: &str = "https://saas.example/onboarding/signed-in";
pub(crate) const CONSENTED: &str = "https://saas.example/onboarding/consented";

/// The provider's onboarding, on the world's clock, with both redirect URIs registered.
/// The app set up for onboarding, its id tokens naming the user's directory roles
/// (`wids`), so the admins of `newcomer` prove themselves by role.
pub(crate) fn onboarding(w: &World) -> Onboarding {
    set_up_app(w);
    onboarding_with(w, Cached::new(w.credential()))
}

/// The app's side in the mock: both redirect URIs registered, `wids` in its id tokens.
pub(crate) fn set_up_app(w: &World) {
    w.entra.add_redirect_uri(&w.app, SIGNED_IN);
    w.entra.add_redirect_uri(&w.app, CONSENTED);
    w.entra.emit_wids(&w.app, true);
}

pub(crate) fn onboarding_with(w: &World, credential: Cached<ClientSecret>) -> Onboarding {
    Onboarding::builder(credential, VAULT, SIGNED_IN)
        .consent_redirect_uri(CONSENTED)
        .clock(Arc::new(w.clock.clone()))
        .sleeper(Arc::new(w.clock.clone()))
        .build()
        .unwrap()
}

/// A new customer tenant with an admin signed in to the (mock) browser.
pub(crate) fn newcomer(w: &World, domain: &str) -> (TenantId, MockUser) {
    let tenant = w.entra.add_tenant(domain);
    let admin = w.entra.add_admin(&tenant, &format!("admin@{domain}"));
    (tenant, admin)
}

/// What the browser brings back, as the query string or form body the app receives.
pub(crate) fn callback(back: &MockRedirect) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&back.params)
        .finish()
}

/// Same callback with one parameter's value replaced (what an attacker edits).
pub(crate) fn edited(back: &MockRedirect, name: &str, value: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            back.params
                .iter()
                .map(|(k, v)| (k.as_str(), if k == name { value } else { v.as_str() })),
        )
        .finish()
}

/// Steps 1 and 2 through the mock: the signed-in admin follows the sign-in URL.
pub(crate) async fn sign_in(w: &World, onboarding: &Onboarding, admin: &MockUser) -> SignedInAdmin {
    w.entra.sign_in(admin);
    let (url, pending) = onboarding.sign_in(SignInTenant::Organizations).unwrap();
    let back = w.entra.follow(url.as_str()).await.unwrap();
    assert_eq!(back.target.as_str(), SIGNED_IN);
    onboarding
        .finish_sign_in(pending, &callback(&back))
        .await
        .unwrap()
}

/// Step 3 through the mock: the admin follows the consent URL; what comes back.
pub(crate) async fn consent(
    w: &World,
    onboarding: &Onboarding,
    admin: &SignedInAdmin,
) -> (PendingConsent, MockRedirect) {
    let (url, pending) = onboarding.consent(admin).await.unwrap();
    assert!(
        url.as_str().starts_with(&format!(
            "{}{}/v2.0/adminconsent?",
            w.entra.uri(),
            admin.tenant()
        )),
        "{url}"
    );
    let back = w.entra.follow(url.as_str()).await.unwrap();
    assert_eq!(back.target.as_str(), CONSENTED);
    (pending, back)
}

#[tokio::test]
async fn an_admin_signs_in_consents_and_the_proven_tenant_is_linked_to_their_account() {
    let w = World::new().await;
    let onboarding = onboarding(&w);
    let (x, x_admin) = newcomer(&w, "newcomer.example");

    let admin = sign_in(&w, &onboarding, &x_admin).await;
    assert_eq!(admin.tenant(), &x);
    assert_eq!(admin.object_id(), x_admin.object_id);
    assert_eq!(admin.username(), Some("admin@newcomer.example"));
    assert!(w.entra.service_principal_id(&x, &w.app).is_none());

    let (pending, back) = consent(&w, &onboarding, &admin).await;
    assert_eq!(pending.tenant(), &x);
    let onboarded = onboarding
        .finish_consent(pending, &callback(&back))
        .await
        .unwrap();
    assert_eq!(onboarded.tenant, x);
    assert_eq!(onboarded.admin_object_id, x_admin.object_id);
    assert_eq!(
        onboarded.service_principal_object_id,
        w.entra.service_principal_id(&x, &w.app)
    );
    assert_eq!(
        onboarded.proof,
        AdminProof::DirectoryRole("62e90394-69f5-4237-9190-012177145e10".into())
    );
    assert_eq!(
        w.entra.token_requests_for(&x),
        1,
        "the admin's role is the proof: one confirmation request"
    );

    let registry = InMemoryRegistry::new();
    let record = registry
        .link("acct-x", onboarded.record("Newcomer"), Relink::Refuse)
        .await
        .unwrap();
    assert_eq!(record.account.as_deref(), Some("acct-x"));
    assert_eq!(
        record.linked_by.as_deref(),
        Some(x_admin.object_id.as_str())
    );
    assert_eq!(record.state, OnboardingState::Active);
    // The same tenant for another account is refused, naming both.
    match registry
        .link("acct-z", onboarded.record("Newcomer"), Relink::Refuse)
        .await
    {
        Err(LinkError::LinkedElsewhere {
            tenant,
            linked_account,
            requested_account,
        }) => {
            assert_eq!(tenant, x);
            assert_eq!(linked_account, "acct-x");
            assert_eq!(requested_account, "acct-z");
        }
        other => panic!("{other:?}"),
    }
}

/// The tenant swap: X's admin completes their own flow, then edits `tenant=` in the
/// consent callback to Y, a customer who consented long ago. Y's consent exists, so a
/// token request in Y would succeed; the flow must refuse before asking.
#[tokio::test]
async fn an_edited_consent_callback_naming_another_consented_tenant_is_refused() {
    let w = World::new().await;
    let onboarding = onboarding(&w);
    let (_x, x_admin) = newcomer(&w, "newcomer.example");
    let y = w.customer.clone(); // consented long ago
    assert!(w.entra.service_principal_id(&y, &w.app).is_some());

    let admin = sign_in(&w, &onboarding, &x_admin).await;
    let (pending, back) = consent(&w, &onboarding, &admin).await;
    let swapped = edited(&back, "tenant", y.as_str());
    let err = onboarding
        .finish_consent(pending, &swapped)
        .await
        .unwrap_err();
    match &err {
        OnboardingError::TenantMismatch { proven, callback } => {
            assert_eq!(proven, admin.tenant());
            assert_eq!(callback, y.as_str());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.entra.token_requests_for(&y), 0, "Y was never asked");
}

#[tokio::test]
async fn a_declined_consent_is_refused_and_nothing_is_confirmed() {
    let w = World::new().await;
    let onboarding = onboarding(&w);
    let (x, x_admin) = newcomer(&w, "newcomer.example");
    let admin = sign_in(&w, &onboarding, &x_admin).await;
    w.entra.decline_next_admin_consent();
    let (pending, back) = consent(&w, &onboarding, &admin).await;
    let err = onboarding
        .finish_consent(pending, &callback(&back))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OnboardingError::Denied { error, .. } if error == "access_denied"),
        "{err:?}"
    );
    assert_eq!(
        w.entra.token_requests_for(&x),
        0,
        "no confirmation of a declined consent"
    );
}

#[tokio::test]
async fn a_replayed_state_is_refused_at_both_steps() {
    let w = World::new().await;
    // The admin's directory role (`onboarding` turns `wids` on) proves them after the
    // tenant has consented too.
    let onboarding = onboarding(&w);
    let (_x, x_admin) = newcomer(&w, "newcomer.example");

    // Sign-in: the same pending value and answer, twice (a session that was not cleared).
    w.entra.sign_in(&x_admin);
    let (url, pending) = onboarding.sign_in(SignInTenant::Organizations).unwrap();
    let saved = serde_json::to_string(&pending).unwrap();
    let back = w.entra.follow(url.as_str()).await.unwrap();
    let admin = onboarding
        .finish_sign_in(pending, &callback(&back))
        .await
        .unwrap();
    let again: PendingSignIn = serde_json::from_str(&saved).unwrap();
    assert!(matches!(
        onboarding.finish_sign_in(again, &callback(&back)).await,
        Err(OnboardingError::Replayed)
    ));

    // Consent: the same.
    let (pending, back) = consent(&w, &onboarding, &admin).await;
    let saved = serde_json::to_string(&pending).unwrap();
    onboarding
        .finish_consent(pending, &callback(&back))
        .await
        .unwrap();
    let again: PendingConsent = serde_json::from_str(&saved).unwrap();
    assert!(matches!(
        onboarding.finish_consent(again, &callback(&back)).await,
        Err(OnboardingError::Replayed)
    ));
    // Another session's state: refused.
    let (_, other) = onboarding.consent(&admin).await.unwrap();
    assert!(matches!(
        onboarding.finish_consent(other, &callback(&back)).await,
        Err(OnboardingError::StateMismatch)
    ));
}

#[tokio::test]
async fn an_id_token_carrying_another_nonce_is_refused() {
    let w = World::new().await;
    let onboarding = onboarding(&w);
    let (_x, x_admin) = newcomer(&w, "newcomer.example");
    w.entra.sign_in(&x_admin);
    let (url, pending) = onboarding.sign_in(SignInTenant::Organizations).unwrap();
    // The sign-in request reaches Entra with another nonce (injected or replayed).
    let mut tampered = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "nonce" {
                "attacker-nonce".into()
            } else {
                v
            };
            (k.into_owned(), v.into_owned())
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(&pairs);
    let back = w.entra.follow(tampered.as_str()).await.unwrap();
    let err = onboarding
        .finish_sign_in(pending, &callback(&back))
        .await
        .unwrap_err();
    match &err {
        OnboardingError::IdTokenRejected(e) => assert_eq!(**e, ValidationError::WrongNonce),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_code_for_another_app_or_verifier_is_refused_by_the_token_endpoint() {
    let w = World::new().await;
    let onboarding = onboarding(&w);
    let (_x, x_admin) = newcomer(&w, "newcomer.example");
    w.entra.sign_in(&x_admin);
    // A code issued for another app (the attacker's), pasted into our callback.
    let other_app = w.entra.register_app(&w.home, "attacker");
    let (url, pending) = onboarding.sign_in(SignInTenant::Organizations).unwrap();
    let mut tampered = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "client_id" {
                other_app.client_id().to_owned().into()
            } else {
                v
            };
            (k.into_owned(), v.into_owned())
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(&pairs);
    let back = w.entra.follow(tampered.as_str()).await.unwrap();
    let err = onboarding
        .finish_sign_in(pending, &callback(&back))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OnboardingError::CodeRefused { codes, .. } if codes.contains(&70000)),
        "{err:?}"
    );

    // A code from another sign-in of ours (its PKCE verifier is in another session).
    let (url_a, _pending_a) = onboarding.sign_in(SignInTenant::Organizations).unwrap();
    let (url_b, pending_b) = onboarding.sign_in(SignInTenant::Organizations).unwrap();
    let back_a = w.entra.follow(url_a.as_str()).await.unwrap();
    let state_b = url_b
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let injected = edited(&back_a, "state", &state_b);
    let err = onboarding
        .finish_sign_in(pending_b, &injected)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OnboardingError::CodeRefused { codes, .. } if codes.contains(&501481)),
        "{err:?}"
    );
}

/// A token endpoint that answers the code with an id_token issued to another app
/// (signed by the real keys: a mix-up, or a compromised network path), served from a
/// stand-in for the token endpoint while the keys come from the mock.
#[tokio::test]
async fn an_id_token_issued_to_another_app_is_refused() {
    let w = World::new().await;
    let (x, x_admin) = newcomer(&w, "newcomer.example");
    let other_app = w.entra.register_app(&w.home, "attacker");
    let now = w
        .clock
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let forged = w.entra.sign_token(
        &serde_json::json!({"alg": "RS256", "typ": "JWT"}),
        &serde_json::json!({
            "aud": other_app.client_id(), "iss": w.entra.issuer_v2(&x), "tid": x.as_str(),
            "oid": x_admin.object_id, "iat": now, "nbf": now, "exp": now + 3600,
            "ver": "2.0", "nonce": "whatever",
        }),
    );
    let stand_in = token_endpoint_answering(serde_json::json!({ "id_token": forged })).await;
    let credential = ClientSecret::new(w.app.client_id(), &w.secret)
        .authority_host(stand_in.parse().unwrap())
        .build()
        .unwrap();
    let validator = TokenValidator::builder(w.entra.cloud())
        .clock(Arc::new(w.clock.clone()))
        .build()
        .unwrap();
    let onboarding = Onboarding::builder(Cached::new(credential), VAULT, SIGNED_IN)
        .validator(validator)
        .clock(Arc::new(w.clock.clone()))
        .build()
        .unwrap();
    let (url, pending) = onboarding.sign_in(SignInTenant::Organizations).unwrap();
    let state = url.query_pairs().find(|(k, _)| k == "state").unwrap().1;
    let err = onboarding
        .finish_sign_in(pending, &format!("code=c0de&state={state}"))
        .await
        .unwrap_err();
    match &err {
        OnboardingError::IdTokenRejected(e) => {
            assert!(
                matches!(**e, ValidationError::WrongAudience { .. }),
                "{e:?}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// A loopback server whose every POST gets `answer` (a token endpoint stand-in).
async fn token_endpoint_answering(answer: serde_json::Value) -> String {
    let app = axum::Router::new().fallback(axum::routing::post(move || {
        let answer = answer.clone();
        async move {
            (
                [(http::header::CONTENT_TYPE, "application/json")],
                answer.to_string(),
            )
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

#[tokio::test]
async fn an_expired_pending_sign_in_is_refused() {
    let w = World::new().await;
    let onboarding = onboarding(&w);
    let (_x, x_admin) = newcomer(&w, "newcomer.example");
    w.entra.sign_in(&x_admin);
    let (url, pending) = onboarding.sign_in(SignInTenant::Organizations).unwrap();
    let back = w.entra.follow(url.as_str()).await.unwrap();
    w.clock.advance(Duration::from_secs(16 * 60));
    assert!(matches!(
        onboarding.finish_sign_in(pending, &callback(&back)).await,
        Err(OnboardingError::Expired { .. })
    ));
}

#[tokio::test]
async fn confirmation_waits_out_replication_with_bounded_retries() {
    let w = World::new().await;
    let onboarding = onboarding(&w);
    let (x, x_admin) = newcomer(&w, "newcomer.example");
    let admin = sign_in(&w, &onboarding, &x_admin).await;
    let (pending, back) = consent(&w, &onboarding, &admin).await;
    // The new service principal has not reached every replica yet: twice AADSTS700016.
    let not_yet = || {
        MockFault::entra_error(
            400,
            "unauthorized_client",
            700016,
            "Application with identifier was not found in the directory.",
        )
    };
    w.entra.inject_fault(&x, not_yet(), 2);
    let onboarded = onboarding
        .finish_consent(pending, &callback(&back))
        .await
        .unwrap();
    assert_eq!(onboarded.tenant, x);
    assert_eq!(
        w.clock.sleeps(),
        vec![Duration::from_secs(1), Duration::from_secs(2)]
    );

    // Never replicating: the configured attempts, then NotConfirmed with the cause.
    let (z, z_admin) = newcomer(&w, "late.example");
    let admin = sign_in(&w, &onboarding, &z_admin).await;
    let (pending, back) = consent(&w, &onboarding, &admin).await;
    w.entra.inject_fault(&z, not_yet(), 100);
    let before = w.entra.token_requests_for(&z);
    let err = onboarding
        .finish_consent(pending, &callback(&back))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OnboardingError::NotConfirmed { tenant, source } if *tenant == z && matches!(**source, Error::NotConsented { .. })),
        "{err:?}"
    );
    assert_eq!(w.entra.token_requests_for(&z) - before, 6);
}

#[tokio::test]
async fn redirect_uris_other_than_https_or_loopback_http_are_refused() {
    let w = World::new().await;
    for bad in [
        "javascript://localhost/%0Aalert(document.domain)",
        "data://localhost/x",
        "http://saas.example/cb",
        "http://localhost.attacker.example/cb",
    ] {
        let built = Onboarding::builder(Cached::new(w.credential()), VAULT, bad).build();
        assert!(built.is_err(), "{bad} was accepted");
        let built = Onboarding::builder(Cached::new(w.credential()), VAULT, SIGNED_IN)
            .consent_redirect_uri(bad)
            .build();
        assert!(built.is_err(), "{bad} was accepted as the consent redirect");
    }
    for good in ["http://localhost:8080/cb", "http://127.0.0.1/cb", SIGNED_IN] {
        Onboarding::builder(Cached::new(w.credential()), VAULT, good)
            .response_mode(ResponseMode::Query)
            .build()
            .unwrap();
    }
}

#[tokio::test]
async fn the_daemon_loop_serves_four_tenants_when_the_fifth_revoked_consent() {
    let w = World::new().await;
    let provider = Cached::new(w.credential());
    let registry = InMemoryRegistry::new();
    let mut tenants = Vec::new();
    for i in 0..5 {
        let t = w.entra.add_tenant(&format!("customer{i}.example"));
        w.entra.consent(&t, &w.app);
        registry
            .upsert(TenantRecord::new(
                t.clone(),
                format!("Customer {i}"),
                OnboardingState::Active,
            ))
            .await
            .unwrap();
        tenants.push(t);
    }
    let offboarded = w.entra.add_tenant("gone.example");
    registry
        .upsert(TenantRecord::new(
            offboarded.clone(),
            "Gone",
            OnboardingState::Revoked,
        ))
        .await
        .unwrap();
    // The fourth customer revoked consent in Entra; the registry does not know yet.
    w.entra.revoke_consent(&tenants[3], &w.app);

    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let results = for_each_active(&registry, 2, |record| {
        let (provider, in_flight, max_seen) =
            (provider.clone(), in_flight.clone(), max_seen.clone());
        async move {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            max_seen.fetch_max(now, Ordering::SeqCst);
            let result = provider.get_token(&record.tenant, &[VAULT]).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            result
        }
    })
    .await
    .unwrap();

    assert_eq!(
        results.len(),
        5,
        "revoked tenants in the registry are skipped"
    );
    assert!(max_seen.load(Ordering::SeqCst) <= 2);
    for (tenant, result) in &results {
        if *tenant == tenants[3] {
            assert!(
                matches!(result, Err(Error::NotConsented { .. })),
                "{result:?}"
            );
        } else {
            assert!(result.is_ok(), "{tenant}: {result:?}");
        }
    }
    assert_eq!(w.entra.token_requests_for(&offboarded), 0);

    // The operator marks it, and the next round skips it.
    registry
        .set_state(&tenants[3], OnboardingState::Revoked)
        .await
        .unwrap();
    let next = for_each_active(&registry, 4, |r| {
        let provider = provider.clone();
        async move { provider.get_token(&r.tenant, &[VAULT]).await }
    })
    .await
    .unwrap();
    assert_eq!(next.len(), 4);
    assert!(next.iter().all(|(_, r)| r.is_ok()));
}

/// The sign-in code is redeemed with the app's secret: a token endpoint that redirects
/// gets nothing through to the redirect's target, whatever HTTP client the credential
/// holds (here one that follows redirects), and the onboarding says so.
#[tokio::test]
async fn a_redirecting_token_endpoint_gets_no_secret_from_the_code_redemption() {
    for status in [307, 302] {
        let w = World::new().await;
        let target = crate::loopback::Loopback::answering(200, &[], "{}").await;
        let following =
            azure_cross_tenant::HttpClient::from_builder(reqwest::Client::builder()).unwrap();
        let credential = ClientSecret::new(w.app.client_id(), &w.secret)
            .authority_host(w.entra.uri())
            .http_client(following)
            .build()
            .unwrap();
        w.entra.add_redirect_uri(&w.app, SIGNED_IN);
        w.entra.add_redirect_uri(&w.app, CONSENTED);
        let onboarding = onboarding_with(&w, Cached::new(credential));
        let (_, admin) = newcomer(&w, "newcomer.example");
        w.entra.sign_in(&admin);
        let (url, pending) = onboarding.sign_in(SignInTenant::Organizations).unwrap();
        let back = w.entra.follow(url.as_str()).await.unwrap();

        w.entra.inject_fault_everywhere(
            MockFault::Redirect {
                status,
                location: target.url().to_string(),
            },
            1,
        );
        let err = onboarding
            .finish_sign_in(pending, &callback(&back))
            .await
            .unwrap_err();
        assert!(
            matches!(err, OnboardingError::Redirected { .. }),
            "{status}: {err:?}"
        );
        for request in target.requests() {
            assert!(
                !request.contains(&w.secret),
                "{status}: the secret reached {request}"
            );
            assert!(!request.contains("code_verifier"), "{status}: {request}");
        }
    }
}

/// The app asked for a tenant's token before its admin consented, and the cache
/// remembers that refusal; the onboarding that the consent finishes drops it, so the
/// app's next call succeeds at once, not a minute later.
#[tokio::test]
async fn an_onboarding_lets_the_apps_next_call_succeed_at_once() {
    let w = World::new().await;
    set_up_app(&w);
    let cached = Cached::with_options(
        w.credential(),
        azure_cross_tenant::CacheOptions::default().clock(Arc::new(w.clock.clone())),
    )
    .unwrap();
    let onboarding = onboarding_with(&w, cached.clone());
    let (x, x_admin) = newcomer(&w, "newcomer.example");
    for _ in 0..2 {
        let err = cached.get_token(&x, &[VAULT]).await.unwrap_err();
        assert!(matches!(err, Error::NotConsented { .. }), "{err:?}");
    }
    assert_eq!(
        w.entra.token_requests_for(&x),
        1,
        "the refusal is remembered"
    );

    let admin = sign_in(&w, &onboarding, &x_admin).await;
    let (pending, back) = consent(&w, &onboarding, &admin).await;
    onboarding
        .finish_consent(pending, &callback(&back))
        .await
        .unwrap();
    cached.get_token(&x, &[VAULT]).await.unwrap();
}

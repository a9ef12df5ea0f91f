//! Retries, throttling and broken answers, against the mock over real HTTP. Waits go
//! through the manual clock, so nothing here sleeps for real.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{VAULT, World};
use azure_cross_tenant::{
    CacheOptions, Cached, ClientSecret, Clock, Error, ManualClock, RetryPolicy,
    TenantCredentialProvider, TransportKind,
};
use mock_entra::MockFault;

#[tokio::test]
async fn a_5xx_is_retried_once_after_a_second_and_then_succeeds() {
    let w = World::new().await;
    w.entra
        .inject_fault(&w.customer, MockFault::ServerError { status: 503 }, 1);
    let token = w.credential().get_token(&w.customer, &[VAULT]).await;
    assert!(token.is_ok(), "{token:?}");
    assert_eq!(w.entra.token_requests_for(&w.customer), 2);
    assert_eq!(w.clock.sleeps(), vec![Duration::from_secs(1)]);
}

#[tokio::test]
async fn persistent_5xx_gives_up_after_the_bounded_retries_with_a_retryable_error() {
    let w = World::new().await;
    w.entra
        .inject_fault(&w.customer, MockFault::ServerError { status: 500 }, 10);
    let err = w
        .credential()
        .get_token(&w.customer, &[VAULT])
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.entra().unwrap().status, 500);
    assert_eq!(w.entra.token_requests_for(&w.customer), 2);

    // A custom policy: three retries with doubling waits.
    w.entra.clear_requests();
    let cred = ClientSecret::new(w.app.client_id(), &w.secret)
        .authority_host(w.entra.uri())
        .clock(Arc::new(w.clock.clone()))
        .sleeper(Arc::new(w.clock.clone()))
        .retry(
            RetryPolicy::default()
                .max_retries(3)
                .initial_delay(Duration::from_millis(500))
                .max_total(Duration::from_secs(30)),
        )
        .build()
        .unwrap();
    let before = w.clock.sleeps().len();
    cred.get_token(&w.customer, &[VAULT]).await.unwrap_err();
    assert_eq!(w.entra.token_requests_for(&w.customer), 4);
    assert_eq!(
        w.clock.sleeps()[before..],
        [
            Duration::from_millis(500),
            Duration::from_secs(1),
            Duration::from_secs(2)
        ]
    );
}

#[tokio::test]
async fn a_short_retry_after_is_waited_out_then_retried() {
    let w = World::new().await;
    w.entra.inject_fault(
        &w.customer,
        MockFault::Throttle {
            retry_after: Some(Duration::from_secs(2)),
        },
        1,
    );
    w.token(&w.customer).await;
    assert_eq!(w.clock.sleeps(), vec![Duration::from_secs(2)]);
    assert_eq!(w.entra.token_requests_for(&w.customer), 2);
}

#[tokio::test]
async fn a_long_retry_after_throttles_that_tenant_only_until_it_passes() {
    let w = World::new().await;
    let other_sp = w.entra.consent(&w.stranger, &w.app);
    assert!(!other_sp.is_empty());
    w.entra.inject_fault(
        &w.customer,
        MockFault::Throttle {
            retry_after: Some(Duration::from_secs(120)),
        },
        1,
    );
    let cred = w.credential();
    let err = cred.get_token(&w.customer, &[VAULT]).await.unwrap_err();
    assert!(matches!(err, Error::Throttled { .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert!(err.is_retryable());
    assert!(
        w.clock.sleeps().is_empty(),
        "a long wait is the caller's to make"
    );

    // The same (tenant, scope) fails fast without asking Entra...
    let again = cred.get_token(&w.customer, &[VAULT]).await.unwrap_err();
    assert!(matches!(again, Error::Throttled { .. }), "{again:?}");
    assert_eq!(w.entra.token_requests_for(&w.customer), 1);
    // ...while another tenant, and another scope, are not slowed down.
    cred.get_token(&w.stranger, &[VAULT]).await.unwrap();
    cred.get_token(&w.customer, &["https://storage.azure.com/.default"])
        .await
        .unwrap();

    w.clock.advance(Duration::from_secs(121));
    cred.get_token(&w.customer, &[VAULT]).await.unwrap();
}

#[tokio::test]
async fn retry_after_is_capped_at_an_hour() {
    let w = World::new().await;
    w.entra.inject_fault(
        &w.customer,
        MockFault::Throttle {
            retry_after: Some(Duration::from_secs(86_400)),
        },
        1,
    );
    let err = w
        .credential()
        .get_token(&w.customer, &[VAULT])
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
}

#[tokio::test]
async fn malformed_answers_are_malformed_response_never_a_panic() {
    for fault in [
        MockFault::Empty,
        MockFault::NotJson,
        MockFault::Truncated,
        MockFault::WrongTypes,
        MockFault::Oversized,
        MockFault::Body {
            status: 200,
            body: b"[]".to_vec(),
        },
        MockFault::Body {
            status: 400,
            body: b"<html>bad gateway</html>".to_vec(),
        },
    ] {
        let w = World::new().await;
        w.entra.inject_fault(&w.customer, fault.clone(), 1);
        let err = w
            .credential()
            .get_token(&w.customer, &[VAULT])
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::MalformedResponse { .. }),
            "{fault:?}: {err:?}"
        );
        assert!(!err.is_retryable(), "{fault:?}");
        assert_eq!(w.entra.token_requests_for(&w.customer), 1, "{fault:?}");
    }
}

/// The world's clock in Unix seconds.
fn unix_now(w: &World) -> u64 {
    w.clock
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Makes the customer's next token answer a 200 carrying a token the mock signs with
/// `claims`, said to last `expires_in` seconds; returns the token.
fn answer_next_with(w: &World, claims: serde_json::Value, expires_in: u64) -> String {
    let token = w
        .entra
        .sign_token(&serde_json::json!({"typ": "JWT", "alg": "RS256"}), &claims);
    let body = serde_json::json!({"token_type": "Bearer", "expires_in": expires_in, "access_token": token});
    w.entra.inject_fault(
        &w.customer,
        MockFault::Body {
            status: 200,
            body: body.to_string().into_bytes(),
        },
        1,
    );
    token
}

#[tokio::test]
async fn a_token_issued_for_another_tenant_or_app_is_discarded() {
    let w = World::new().await;
    let now = unix_now(&w);
    for (tid, appid, claim) in [
        (w.stranger.as_str(), w.app.client_id(), "tid"),
        (
            w.customer.as_str(),
            "99999999-9999-9999-9999-999999999999",
            "appid",
        ),
    ] {
        let forged = answer_next_with(
            &w,
            serde_json::json!({"tid": tid, "appid": appid, "aud": "https://vault.azure.net", "exp": now + 3600}),
            3599,
        );
        let err = w
            .credential()
            .get_token(&w.customer, &[VAULT])
            .await
            .unwrap_err();
        match &err {
            Error::UnexpectedToken { claim: c, .. } => assert_eq!(*c, claim),
            other => panic!("expected UnexpectedToken, got {other:?}"),
        }
        assert!(
            !err.to_string().contains(&forged),
            "the token is not echoed"
        );
    }
}

/// `expires_in` beside a token is nobody's signature; the token's own `exp` is what its
/// resource enforces. A token endpoint (or anything between) that says "valid for a day"
/// about a token expiring in ten minutes must not keep it cached, and handed out, for a day.
#[tokio::test]
async fn a_token_is_never_cached_past_its_own_exp_whatever_expires_in_says() {
    let w = World::new().await;
    let now = unix_now(&w);
    let base = serde_json::json!({"tid": w.customer.as_str(), "appid": w.app.client_id(),
        "aud": "https://vault.azure.net"});
    let with = |extra: serde_json::Value| {
        let mut claims = base.clone();
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        claims
    };
    // The lifetime is `exp - iat` from arrival; without `iat`, `exp` itself plus the
    // five minutes a host clock may be ahead of the issuer's.
    for (claims, most) in [
        (with(serde_json::json!({"iat": now, "exp": now + 600})), 600),
        (with(serde_json::json!({"exp": now + 600})), 900),
    ] {
        answer_next_with(&w, claims, 86_400);
        let token = w
            .credential()
            .get_token(&w.customer, &[VAULT])
            .await
            .unwrap();
        let left = token.expires_on().duration_since(w.clock.now()).unwrap();
        assert!(
            left <= Duration::from_secs(most) && left > Duration::from_secs(most - 2),
            "the expiry is the token's own, not a day: {left:?} left"
        );
    }
    // An issuer whose clock is four minutes behind ours (or ours ahead): the token still
    // lives the 599 s it was given here.
    let behind = now - 240;
    answer_next_with(
        &w,
        with(serde_json::json!({"iat": behind, "exp": behind + 600})),
        599,
    );
    let token = w
        .credential()
        .get_token(&w.customer, &[VAULT])
        .await
        .unwrap();
    assert_eq!(token.expires_on(), w.clock.now() + Duration::from_secs(599));
    // A stale token (expired an hour ago) replayed with a fresh `expires_in`: expired.
    let old = now - 7200;
    answer_next_with(
        &w,
        with(serde_json::json!({"iat": old, "exp": old + 3600})),
        3599,
    );
    let token = w
        .credential()
        .get_token(&w.customer, &[VAULT])
        .await
        .unwrap();
    assert!(
        token.expires_on() <= w.clock.now(),
        "{:?}",
        token.expires_on()
    );

    let cached = Cached::with_options(
        w.credential(),
        CacheOptions::default().clock(Arc::new(w.clock.clone())),
    )
    .unwrap();
    let short = answer_next_with(
        &w,
        with(serde_json::json!({"iat": now, "exp": now + 600})),
        86_400,
    );
    let first = cached.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(first.secret(), short);
    w.clock.advance(Duration::from_secs(601));
    let later = cached.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_ne!(later.secret(), short, "a token past its exp was served");
}

/// A token from the token endpoint that looks like a JWT but is not one this crate can
/// read strictly, or carries no `tid`, cannot be checked, so it is refused and not cached.
#[tokio::test]
async fn a_jwt_shaped_token_that_does_not_decode_or_names_no_tenant_is_refused_and_not_cached() {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let w = World::new().await;
    let b64url = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let good_claims = serde_json::json!({
        "tid": w.customer.as_str(), "appid": w.app.client_id(),
        "aud": "https://vault.azure.net", "note": "~~~???>>>",
    });
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256"});
    let standard = format!(
        "{}.{}.c2ln",
        STANDARD.encode(header.to_string()),
        STANDARD.encode(good_claims.to_string())
    );
    assert!(standard.contains(['+', '/', '=']), "{standard}");
    let cases = [
        (
            "header is a JSON array",
            format!(
                "{}.{}.c2ln",
                b64url(&serde_json::json!(["RS256", "kid", null])),
                b64url(&good_claims)
            ),
            "token",
        ),
        ("standard base64, not base64url", standard, "token"),
        (
            "payload is not an object",
            format!(
                "{}.{}.c2ln",
                b64url(&header),
                b64url(&serde_json::json!([1]))
            ),
            "token",
        ),
        (
            "no tid",
            w.entra.sign_token(
                &header,
                &serde_json::json!({"appid": w.app.client_id(), "aud": "https://vault.azure.net"}),
            ),
            "tid",
        ),
    ];
    for (case, token, claim) in cases {
        let body =
            serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "access_token": token});
        w.entra.inject_fault(
            &w.customer,
            MockFault::Body {
                status: 200,
                body: body.to_string().into_bytes(),
            },
            1,
        );
        let cached = Cached::new(w.credential());
        let err = cached.get_token(&w.customer, &[VAULT]).await.unwrap_err();
        match &err {
            Error::UnexpectedToken { claim: c, .. } => assert_eq!(*c, claim, "{case}"),
            other => panic!("{case}: expected UnexpectedToken, got {other:?}"),
        }
        assert!(
            !err.to_string().contains(&token),
            "{case}: the token is not echoed"
        );
        // Nothing was cached: the next call asks Entra again and gets a real token.
        let token = cached.get_token(&w.customer, &[VAULT]).await.unwrap();
        assert!(w.entra.signed_by_mock(token.secret()), "{case}");
        assert_eq!(cached.stats().misses, 2, "{case}");
    }
}

#[tokio::test]
async fn an_opaque_token_is_still_accepted() {
    let w = World::new().await;
    let body = serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "opaque-token-Zm9v"});
    w.entra.inject_fault(
        &w.customer,
        MockFault::Body {
            status: 200,
            body: body.to_string().into_bytes(),
        },
        1,
    );
    let token = w.token(&w.customer).await;
    assert_eq!(token.secret(), "opaque-token-Zm9v");
}

#[tokio::test]
async fn a_domain_tenant_whose_tokens_change_guid_is_caught() {
    let w = World::new().await;
    let cred = w.credential();
    let domain = "fabrikam.example".parse().unwrap();
    cred.get_token(&domain, &[VAULT]).await.unwrap();
    let forged = w.entra.sign_token(
        &serde_json::json!({"typ": "JWT", "alg": "RS256"}),
        &serde_json::json!({"tid": w.stranger.as_str(), "appid": w.app.client_id()}),
    );
    let body = serde_json::json!({"expires_in": 3599, "access_token": forged});
    w.entra.inject_fault(
        &w.customer,
        MockFault::Body {
            status: 200,
            body: body.to_string().into_bytes(),
        },
        1,
    );
    let err = cred.get_token(&domain, &[VAULT]).await.unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedToken { claim: "tid", .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_authority_is_a_connect_error_after_one_retry() {
    // Bind then drop a listener: its port is closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let clock = ManualClock::starting_now();
    let cred = ClientSecret::new("11111111-2222-3333-4444-555555555555", "s")
        .authority_host(format!("http://127.0.0.1:{port}/").parse().unwrap())
        .clock(Arc::new(clock.clone()))
        .sleeper(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let tenant = "contoso.com".parse().unwrap();
    let err = cred.get_token(&tenant, &[VAULT]).await.unwrap_err();
    match &err {
        Error::Transport { kind, .. } => assert_eq!(*kind, TransportKind::Connect),
        other => panic!("expected a transport error, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert_eq!(clock.sleeps().len(), 1, "retried once");
}

#[tokio::test]
async fn a_stuck_answer_is_a_timeout() {
    let w = World::new().await;
    w.entra.set_latency(Duration::from_secs(30));
    let cred = ClientSecret::new(w.app.client_id(), &w.secret)
        .authority_host(w.entra.uri())
        .timeout(Duration::from_millis(50))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = cred.get_token(&w.customer, &[VAULT]).await.unwrap_err();
    match &err {
        Error::Transport { kind, .. } => assert_eq!(*kind, TransportKind::Timeout),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

//! Secrets and assertions go only to the token endpoint asked: a redirect from it is
//! refused, whatever HTTP client the caller passed, and nothing carrying a credential
//! reaches the redirect's target. The authority and the target are small loopback
//! servers of the test's own (the mock never redirects).

use std::sync::Arc;

use azure_cross_tenant::{
    Assertion, ClientCertificate, ClientSecret, Error, FederatedAssertion, ManualClock,
    RetryPolicy, TenantCredentialProvider, TenantId, assertion_fn,
};

use crate::common::VAULT;
use crate::loopback::Loopback;

const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
const SECRET: &str = "the-client-secret-value";
const ASSERTION: &str = "federated.assertion.value";

/// What the redirect's target answers: a token, as an attacker would, to be taken.
async fn thief() -> Loopback {
    Loopback::answering(
        200,
        &[],
        r#"{"token_type":"Bearer","expires_in":3599,"access_token":"stolen"}"#,
    )
    .await
}

/// The three credentials, each sending through `reqwest::Client::new()`, which follows
/// redirects, to `authority`.
fn credentials(authority: &Loopback) -> Vec<(&'static str, Box<dyn TenantCredentialProvider>)> {
    let clock = ManualClock::starting_now();
    let cert = crate::certificate::make_cert(None);
    let common = |host: url::Url| (host, reqwest::Client::new(), Arc::new(clock.clone()));
    let (host, http, clock) = common(authority.url());
    let secret = ClientSecret::new(CLIENT_ID, SECRET)
        .authority_host(host.clone())
        .http_client(http.clone())
        .clock(clock.clone())
        .sleeper(clock.clone())
        .build()
        .unwrap();
    let certificate = ClientCertificate::from_pem(CLIENT_ID, &cert.cert_pem, &cert.key_pem)
        .authority_host(host.clone())
        .http_client(http.clone())
        .clock(clock.clone())
        .sleeper(clock.clone())
        .build()
        .unwrap();
    let federated = FederatedAssertion::new(
        CLIENT_ID,
        assertion_fn(|| async { Ok(Assertion::new(ASSERTION, None)) }),
    )
    .authority_host(host)
    .http_client(http)
    .clock(clock.clone())
    .sleeper(clock)
    .build()
    .unwrap();
    vec![
        ("secret", Box::new(secret)),
        ("certificate", Box::new(certificate)),
        ("federated", Box::new(federated)),
    ]
}

#[tokio::test]
async fn a_redirecting_token_endpoint_gets_no_credential_through_and_is_refused() {
    let tenant: TenantId = "contoso.com".parse().unwrap();
    for status in [307, 308, 302, 301, 303] {
        let target = thief().await;
        let authority =
            Loopback::redirecting(status, target.url().join("steal").unwrap().as_str()).await;
        for (kind, credential) in credentials(&authority) {
            let err = credential.get_token(&tenant, &[VAULT]).await.unwrap_err();
            match &err {
                // A client that follows 301-303 turns the POST into a bodiless GET; its
                // answer is refused all the same because it came from elsewhere.
                Error::Redirected { to, .. } => {
                    assert_eq!(
                        **to,
                        *target.url().origin().ascii_serialization(),
                        "{status} {kind}"
                    )
                }
                other => panic!("{status} {kind}: expected Redirected, got {other:?}"),
            }
            assert!(!err.is_retryable(), "{status} {kind}");
            assert!(!err.to_string().contains(SECRET), "{status} {kind}: {err}");
        }
        assert_eq!(
            authority.requests().len(),
            3,
            "{status}: one attempt each, no retry"
        );
        for request in target.requests() {
            for leak in [SECRET, ASSERTION, "client_secret", "client_assertion"] {
                assert!(
                    !request.contains(leak),
                    "{status}: the target received {leak}:\n{request}"
                );
            }
        }
    }
}

/// A `Retry-After` date far beyond any calendar is ignored (the usual back-off applies),
/// never an overflow.
#[tokio::test]
async fn a_retry_after_date_with_a_huge_year_is_ignored() {
    let authority = Loopback::answering(
        429,
        &["Retry-After: Sun, 06 Nov 9223372036854775807 08:49:37 GMT"],
        r#"{"error":"temporarily_unavailable","error_codes":[90055]}"#,
    )
    .await;
    let clock = ManualClock::starting_now();
    let credential = ClientSecret::new(CLIENT_ID, SECRET)
        .authority_host(authority.url())
        .clock(Arc::new(clock.clone()))
        .sleeper(Arc::new(clock.clone()))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let tenant: TenantId = "contoso.com".parse().unwrap();
    let err = credential.get_token(&tenant, &[VAULT]).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Throttled {
                retry_after: None,
                ..
            }
        ),
        "{err:?}"
    );
}

/// A plain-http authority (a mock on loopback, the only place http is allowed) is asked
/// directly, never through a proxy from the environment: the form, client secret
/// included, would reach the proxy in clear text. In a child process, for the
/// environment.
#[tokio::test]
async fn a_plain_http_authority_is_never_asked_through_a_proxy_from_the_environment() {
    if crate::common::child_part().is_some() {
        return child_secret_token_without_proxy().await;
    }
    let w = crate::common::World::new().await;
    let proxy = Loopback::answering(502, &[], "{}").await;
    let proxied = crate::common::proxy_env(proxy.url().as_str());
    let authority = w.entra.uri().to_string();
    let secret = w.secret.clone();
    let mut env: Vec<(&str, &str)> = proxied.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend([
        ("ACT_AUTHORITY", authority.as_str()),
        ("ACT_CLIENT_ID", w.app.client_id()),
        ("ACT_SECRET", secret.as_str()),
        ("ACT_TENANT", w.customer.as_str()),
    ]);
    crate::common::run_child(
        module_path!(),
        "a_plain_http_authority_is_never_asked_through_a_proxy_from_the_environment",
        "secret token",
        &env,
    )
    .await;
    assert_eq!(
        proxy.connections(),
        0,
        "the proxy saw: {:?}",
        proxy.requests()
    );
}

/// The child process's part: a token through the environment's proxy settings.
async fn child_secret_token_without_proxy() {
    let var = |k: &str| std::env::var(k).unwrap();
    let credential = ClientSecret::new(var("ACT_CLIENT_ID"), var("ACT_SECRET"))
        .authority_host(var("ACT_AUTHORITY").parse().unwrap())
        .build()
        .unwrap();
    let tenant: TenantId = var("ACT_TENANT").parse().unwrap();
    let token = credential.get_token(&tenant, &[VAULT]).await;
    assert!(token.is_ok(), "{token:?}");
}

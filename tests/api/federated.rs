//! `FederatedAssertion`: a managed identity of the provider's home tenant as the app's
//! credential in every customer tenant, against the mock's IMDS endpoint and federated
//! identity credential matching, over real HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::{VAULT, World, child_part, proxy_env, run_child};
use crate::loopback::Loopback;
use azure_core::http::ClientOptions;
use azure_cross_tenant::insecure::decode_unverified;
use azure_cross_tenant::{
    Assertion, Cached, Error, FederatedAssertion, FederationField, ManagedIdentity, RetryPolicy,
    TenantCredentialProvider, TenantId, TokenCredentialSource, TokenFile, assertion_fn,
};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use mock_entra::{MockEntra, MockManagedIdentity};

const EXCHANGE: &str = "api://AzureADTokenExchange";

/// azure_identity's real managed identity credential, pointed at the mock's IMDS.
fn imds_credential(entra: &MockEntra, mi: &MockManagedIdentity) -> Arc<ManagedIdentityCredential> {
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: Some(UserAssignedId::ClientId(mi.client_id.clone())),
        client_options: ClientOptions {
            transport: Some(entra.managed_identity_transport()),
            ..Default::default()
        },
    };
    ManagedIdentityCredential::new(Some(options)).unwrap()
}

fn federated(
    w: &World,
    source: impl azure_cross_tenant::AssertionSource + 'static,
) -> FederatedAssertion {
    FederatedAssertion::new(w.app.client_id(), source)
        .authority_host(w.entra.uri())
        .clock(Arc::new(w.clock.clone()))
        .sleeper(Arc::new(w.clock.clone()))
        .build()
        .unwrap()
}

/// A source minting the identity's token from the mock, counting calls.
fn counting_source(
    entra: &MockEntra,
    mi: &MockManagedIdentity,
    audience: &str,
) -> (
    impl azure_cross_tenant::AssertionSource + 'static,
    Arc<AtomicUsize>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let (entra, mi, audience, counter) = (
        entra.clone(),
        mi.clone(),
        audience.to_owned(),
        calls.clone(),
    );
    let source = assertion_fn(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        let token = entra.managed_identity_token(&mi, &audience);
        async move { Ok(Assertion::from_jwt(token)) }
    });
    (source, calls)
}

#[tokio::test]
async fn fifty_tenants_cost_one_managed_identity_request_and_fifty_token_requests() {
    let w = World::new().await;
    let mi = w.entra.add_managed_identity(&w.home, "saas-identity");
    w.entra.trust_managed_identity(&w.app, &mi);
    let mut tenants = Vec::new();
    for i in 0..50 {
        let t = w.entra.add_tenant(&format!("tenant{i}.example"));
        let sp = w.entra.consent(&t, &w.app);
        tenants.push((t, sp));
    }
    let source = TokenCredentialSource::new(imds_credential(&w.entra, &mi), EXCHANGE);
    let provider = Cached::new(federated(&w, source));
    for (t, sp) in &tenants {
        let token = provider.get_token(t, &[VAULT]).await.unwrap();
        let claims = decode_unverified(token.secret()).unwrap();
        assert_eq!(claims.tid.as_deref(), Some(t.as_str()));
        assert_eq!(claims.oid.as_deref(), Some(sp.as_str()));
        assert_eq!(claims.app_id(), Some(w.app.client_id()));
    }
    // Cached: asking again costs nothing.
    provider.get_token(&tenants[0].0, &[VAULT]).await.unwrap();
    assert_eq!(w.entra.managed_identity_requests(), 1);
    assert_eq!(w.entra.token_requests(), 50);
    assert!(
        w.entra
            .requests()
            .iter()
            .all(|r| r.credential == mock_entra::CredentialKind::Assertion)
    );
}

#[tokio::test]
async fn an_assertion_about_to_expire_is_replaced_before_it_is_used() {
    let w = World::new().await;
    let mi = w.entra.add_managed_identity(&w.home, "id");
    w.entra.trust_managed_identity(&w.app, &mi);
    w.entra
        .set_managed_identity_token_lifetime(Duration::from_secs(3600));
    w.entra.consent(&w.stranger, &w.app);
    let (source, calls) = counting_source(&w.entra, &mi, EXCHANGE);
    let cred = federated(&w, source);

    cred.get_token(&w.customer, &[VAULT]).await.unwrap();
    cred.get_token(&w.stranger, &[VAULT]).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one assertion for both tenants"
    );

    // Inside the 5-minute margin before the assertion's expiry: a new one is fetched
    // first, so Entra never sees an expired assertion.
    w.clock.advance(Duration::from_secs(3600 - 200));
    cred.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(w.entra.requests().iter().all(|r| r.status == 200));
}

#[tokio::test]
async fn an_assertion_entra_finds_expired_is_retried_once_with_a_fresh_one() {
    let w = World::new().await;
    let mi = w.entra.add_managed_identity(&w.home, "id");
    w.entra.trust_managed_identity(&w.app, &mi);
    w.entra
        .set_managed_identity_token_lifetime(Duration::from_secs(60));
    let stale = w.entra.managed_identity_token(&mi, EXCHANGE);
    w.clock.advance(Duration::from_secs(120));
    let calls = Arc::new(AtomicUsize::new(0));
    let (entra, mi2, counter) = (w.entra.clone(), mi.clone(), calls.clone());
    // The source does not know the expiry (as with an opaque token): the first is stale.
    let cred = federated(
        &w,
        assertion_fn(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let token = if n == 0 {
                stale.clone()
            } else {
                entra.managed_identity_token(&mi2, EXCHANGE)
            };
            async move { Ok(Assertion::new(token, None)) }
        }),
    );
    cred.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // AADSTS700024 is an invalid_client: 401, as Entra answers every invalid_client.
    let statuses: Vec<u16> = w.entra.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![401, 200]);
}

#[tokio::test]
async fn each_federation_mismatch_is_typed_and_names_what_the_assertion_carried() {
    let w = World::new().await;
    let mi = w.entra.add_managed_identity(&w.home, "id");
    let issuer = w.entra.issuer_v2(&w.home);

    // No FIC at all.
    let (source, _) = counting_source(&w.entra, &mi, EXCHANGE);
    let err = federated(&w, source)
        .get_token(&w.customer, &[VAULT])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoFederatedCredentials(_)), "{err:?}");

    // Issuer, subject, audience each wrong in turn.
    let cases = [
        (
            "https://token.actions.githubusercontent.com",
            mi.object_id.as_str(),
            EXCHANGE,
            FederationField::Issuer,
            issuer.as_str(),
        ),
        (
            issuer.as_str(),
            "someone-else",
            EXCHANGE,
            FederationField::Subject,
            mi.object_id.as_str(),
        ),
        (
            issuer.as_str(),
            mi.object_id.as_str(),
            "api://Other",
            FederationField::Audience,
            EXCHANGE,
        ),
    ];
    for (fic_issuer, fic_subject, fic_audience, field, carried) in cases {
        let app = w.entra.register_app(&w.home, "app");
        let secretless = w.entra.consent(&w.customer, &app);
        assert!(!secretless.is_empty());
        w.entra
            .add_federated_credential(&app, fic_issuer, fic_subject, fic_audience);
        let (source, _) = counting_source(&w.entra, &mi, EXCHANGE);
        let cred = FederatedAssertion::new(app.client_id(), source)
            .authority_host(w.entra.uri())
            .build()
            .unwrap();
        let err = cred.get_token(&w.customer, &[VAULT]).await.unwrap_err();
        match &err {
            Error::FederationMismatch { field: f, .. } => assert_eq!(*f, field),
            other => panic!("expected a {field} mismatch, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(carried), "{field}: {msg}");
        assert!(!err.is_retryable());
    }
}

#[tokio::test]
async fn an_identity_outside_the_apps_home_tenant_is_refused() {
    let w = World::new().await;
    let foreign = w.entra.add_managed_identity(&w.stranger, "elsewhere");
    w.entra.trust_managed_identity(&w.app, &foreign);
    let (source, _) = counting_source(&w.entra, &foreign, EXCHANGE);
    let err = federated(&w, source)
        .get_token(&w.customer, &[VAULT])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::FederatedIdentityInWrongTenant(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains("home tenant"));
}

#[tokio::test]
async fn a_new_fic_is_pending_until_it_replicates() {
    let w = World::new().await;
    let mi = w.entra.add_managed_identity(&w.home, "id");
    let issuer = w.entra.issuer_v2(&w.home);
    w.entra.add_federated_credential_pending(
        &w.app,
        &issuer,
        &mi.object_id,
        EXCHANGE,
        Duration::from_secs(120),
    );
    let (source, _) = counting_source(&w.entra, &mi, EXCHANGE);
    let cred = federated(&w, source);
    let err = cred.get_token(&w.customer, &[VAULT]).await.unwrap_err();
    assert!(matches!(err, Error::FederationPending(_)), "{err:?}");
    assert!(err.is_retryable());
    w.clock.advance(Duration::from_secs(121));
    cred.get_token(&w.customer, &[VAULT]).await.unwrap();
}

#[tokio::test]
async fn a_rotated_token_file_is_picked_up_on_the_next_exchange() {
    let w = World::new().await;
    let mi = w.entra.add_managed_identity(&w.home, "id");
    let other = w.entra.add_managed_identity(&w.home, "not-trusted");
    w.entra.trust_managed_identity(&w.app, &mi);
    let path = std::env::temp_dir().join(format!("act-token-{}", uuid::Uuid::new_v4()));
    let cred = federated(&w, TokenFile::new(&path));

    let err = cred.get_token(&w.customer, &[VAULT]).await.unwrap_err();
    assert!(matches!(err, Error::AssertionUnavailable { .. }), "{err:?}");

    std::fs::write(&path, w.entra.managed_identity_token(&mi, EXCHANGE)).unwrap();
    cred.get_token(&w.customer, &[VAULT]).await.unwrap();
    // kubelet replaces the file: the next exchange presents the new token.
    std::fs::write(&path, w.entra.managed_identity_token(&other, EXCHANGE)).unwrap();
    let err = cred.get_token(&w.customer, &[VAULT]).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::FederationMismatch {
                field: FederationField::Subject,
                ..
            }
        ),
        "{err:?}"
    );
    std::fs::write(&path, w.entra.managed_identity_token(&mi, EXCHANGE)).unwrap();
    cred.get_token(&w.customer, &[VAULT]).await.unwrap();
    let _ = std::fs::remove_file(&path);
}

/// A token file whose size the file system does not know (a pipe, a device, a file
/// still being written says 0) is read up to the cap and no further: a megabyte streamed
/// into it is refused as too large, and nothing reaches Entra.
#[tokio::test]
async fn a_token_file_streaming_past_the_cap_is_refused_whatever_its_metadata_says() {
    let w = World::new().await;
    let path = std::env::temp_dir().join(format!("act-fifo-{}", uuid::Uuid::new_v4()));
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let writer_path = path.clone();
    // Opening a pipe for writing waits for its reader; a reader that stops early makes
    // the write fail, which ends the thread.
    let writer = std::thread::spawn(move || {
        use std::io::Write as _;
        let mut pipe = std::fs::OpenOptions::new()
            .write(true)
            .open(&writer_path)
            .unwrap();
        let _ = pipe.write_all(&vec![b'a'; 1024 * 1024]);
    });
    let cred = federated(&w, TokenFile::new(&path));
    let err = cred.get_token(&w.customer, &[VAULT]).await.unwrap_err();
    match &err {
        Error::AssertionUnavailable { reason, .. } => {
            assert!(reason.contains("larger than"), "{reason}");
        }
        other => panic!("expected AssertionUnavailable, got {other:?}"),
    }
    assert_eq!(w.entra.token_requests(), 0, "nothing was sent");
    writer.join().unwrap();
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn an_unknown_identity_is_managed_identity_unavailable_and_nothing_reaches_entra() {
    let w = World::new().await;
    let ghost = MockManagedIdentity {
        client_id: "99999999-9999-9999-9999-999999999999".into(),
        object_id: "x".into(),
        resource_id: "x".into(),
        tenant: w.home.clone(),
    };
    let source = TokenCredentialSource::new(imds_credential(&w.entra, &ghost), EXCHANGE);
    let err = federated(&w, source)
        .get_token(&w.customer, &[VAULT])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ManagedIdentityUnavailable { .. }),
        "{err:?}"
    );
    assert_eq!(w.entra.token_requests(), 0);
}

/// `FederatedAssertion::managed_identity` itself, with azure_identity finding the mock
/// through App Service's environment variables. Those are process-wide, so this runs in a
/// child process (this test binary again), which the parent serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_builder_works_through_app_service_environment() {
    if child_part().is_some() {
        return child_app_service_flow().await;
    }
    let w = World::new().await;
    let mi = w.entra.add_managed_identity(&w.home, "id");
    w.entra.trust_managed_identity(&w.app, &mi);
    run_child(
        module_path!(),
        "managed_identity_builder_works_through_app_service_environment",
        "app service flow",
        &[
            ("IDENTITY_ENDPOINT", w.entra.app_service_endpoint().as_str()),
            ("IDENTITY_HEADER", &w.entra.identity_header()),
            ("ACT_MOCK_URI", w.entra.uri().as_str()),
            ("ACT_CLIENT_ID", w.app.client_id()),
            ("ACT_MI_CLIENT_ID", &mi.client_id),
            ("ACT_TENANT", w.customer.as_str()),
        ],
    )
    .await;
    assert_eq!(w.entra.managed_identity_requests(), 1);
    assert_eq!(w.entra.token_requests_for(&w.customer), 1);
}

/// The child process's part.
async fn child_app_service_flow() {
    let var = |k: &str| std::env::var(k).unwrap();
    let cred = FederatedAssertion::managed_identity(
        var("ACT_CLIENT_ID"),
        ManagedIdentity::UserAssigned {
            client_id: var("ACT_MI_CLIENT_ID"),
        },
    )
    .authority_host(var("ACT_MOCK_URI").parse().unwrap())
    .build()
    .unwrap();
    let tenant: TenantId = var("ACT_TENANT").parse().unwrap();
    let token = cred.get_token(&tenant, &[VAULT]).await.unwrap();
    let claims = decode_unverified(token.secret()).unwrap();
    assert_eq!(claims.tid.as_deref(), Some(tenant.as_str()));
}

#[tokio::test]
async fn the_secretless_flow_works_through_the_azure_core_adapter() {
    use azure_core::credentials::TokenCredential;
    use azure_cross_tenant::TenantCredentialExt;
    let w = World::new().await;
    let mi = w.entra.add_managed_identity(&w.home, "id");
    w.entra.trust_managed_identity(&w.app, &mi);
    let source = TokenCredentialSource::new(imds_credential(&w.entra, &mi), EXCHANGE);
    let provider = Cached::new(federated(&w, source));
    let token = provider
        .for_tenant(w.customer.clone())
        .get_token(&[VAULT], None)
        .await
        .unwrap();
    let claims = decode_unverified(token.token.secret()).unwrap();
    assert_eq!(claims.tid.as_deref(), Some(w.customer.as_str()));
    assert_eq!(claims.oid.as_deref(), Some(w.sp_object_id.as_str()));
}

/// `FederatedAssertion::workload_identity_from_env()` reads the variables the AKS webhook injects; those are
/// process-wide, so this runs in a child process (this test binary again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_from_env_reads_the_injected_variables() {
    if child_part().is_some() {
        return child_workload_identity_flow().await;
    }
    let w = World::new().await;
    let mi = w.entra.add_managed_identity(&w.home, "id");
    w.entra.trust_managed_identity(&w.app, &mi);
    let file = std::env::temp_dir().join(format!("act-wi-{}", uuid::Uuid::new_v4()));
    std::fs::write(&file, w.entra.managed_identity_token(&mi, EXCHANGE)).unwrap();
    run_child(
        module_path!(),
        "workload_identity_from_env_reads_the_injected_variables",
        "workload identity flow",
        &[
            ("AZURE_CLIENT_ID", w.app.client_id()),
            ("AZURE_TENANT_ID", w.home.as_str()),
            ("AZURE_FEDERATED_TOKEN_FILE", file.to_str().unwrap()),
            ("AZURE_AUTHORITY_HOST", w.entra.uri().as_str()),
            ("ACT_TENANT", w.customer.as_str()),
        ],
    )
    .await;
    assert_eq!(w.entra.token_requests_for(&w.customer), 1);
    let _ = std::fs::remove_file(&file);
}

/// The child process's part.
async fn child_workload_identity_flow() {
    let cred = FederatedAssertion::workload_identity_from_env()
        .unwrap()
        .build()
        .unwrap();
    let tenant: TenantId = std::env::var("ACT_TENANT").unwrap().parse().unwrap();
    cred.get_token(&tenant, &[VAULT]).await.unwrap();
}

#[tokio::test]
async fn the_mock_imds_answers_scripted_failures_and_checks_its_header() {
    let w = World::new().await;
    let mi = w.entra.add_managed_identity(&w.home, "id");
    let http = crate::common::plain_http();
    let url = format!(
        "{}?api-version=2018-02-01&resource={EXCHANGE}&client_id={}",
        w.entra.imds_endpoint(),
        mi.client_id
    );
    let no_header = http.get(&url).send().await.unwrap();
    assert_eq!(no_header.status(), 400, "IMDS requires Metadata: true");
    w.entra.inject_managed_identity_fault(410, 1);
    let gone = http
        .get(&url)
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 410);
    let ok = http
        .get(&url)
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = serde_json::from_slice(&ok.bytes().await.unwrap()).unwrap();
    assert!(
        body["expires_in"].is_string() && body["expires_on"].is_string(),
        "IMDS sends strings: {body}"
    );
    let claims = decode_unverified(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims.sub.as_deref(), Some(mi.object_id.as_str()));
    assert_eq!(claims.aud, vec![EXCHANGE]);

    // azure_identity retries a 500 from IMDS and then succeeds.
    w.entra.inject_managed_identity_fault(500, 1);
    let source = TokenCredentialSource::new(imds_credential(&w.entra, &mi), EXCHANGE);
    w.entra.trust_managed_identity(&w.app, &mi);
    federated(&w, source)
        .get_token(&w.customer, &[VAULT])
        .await
        .unwrap();
    assert_eq!(w.entra.managed_identity_requests(), 5);
}

/// The tenants and app of the tests that need no mock: nothing is ever sent for them.
const APP: &str = "11111111-2222-3333-4444-555555555555";

fn tenant(name: &str) -> TenantId {
    name.parse().unwrap()
}

/// Virtual time since `start`; under tokio's paused clock it moves only when the runtime
/// waits on a timer, so deadlines are checked without waiting for them.
#[allow(clippy::disallowed_methods)] // paused tokio time, in a test: no real time is read
fn since(start: tokio::time::Instant) -> Duration {
    tokio::time::Instant::now() - start
}

#[allow(clippy::disallowed_methods)] // paused tokio time, in a test: no real time is read
fn virtual_now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

#[allow(clippy::disallowed_methods)] // paused tokio time, in a test: this sleep takes no time
async fn virtual_sleep(d: Duration) {
    tokio::time::sleep(d).await
}

/// An assertion source that never answers (a hung identity endpoint, a stuck custom
/// source) costs each call its own timeout, no more: a call for another tenant waits on
/// the same fetch, not behind it, and the fetch is given up after its own timeout.
#[tokio::test(start_paused = true)]
async fn a_silent_assertion_source_costs_each_tenant_its_timeout_and_queues_no_one() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let source = assertion_fn(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<Result<Assertion, Error>>()
    });
    let cred = Arc::new(
        FederatedAssertion::new(APP, source)
            .authority_host("http://127.0.0.1:9/".parse().unwrap())
            .timeout(Duration::from_secs(1))
            .assertion_timeout(Duration::from_secs(3))
            .build()
            .unwrap(),
    );
    let call = |name: &'static str| {
        let cred = cred.clone();
        tokio::spawn(async move {
            let started = virtual_now();
            let result = cred.get_token(&tenant(name), &[VAULT]).await;
            (result, since(started))
        })
    };
    // Bounded: without deadlines these calls would never return.
    tokio::time::timeout(Duration::from_secs(60), async {
        let a = call("contoso.example");
        virtual_sleep(Duration::from_millis(500)).await;
        let b = call("fabrikam.example");
        for (name, handle) in [("A", a), ("B", b)] {
            let (result, took) = handle.await.unwrap();
            let err = result.unwrap_err();
            assert!(
                matches!(err, Error::AssertionTimedOut { after } if after == Duration::from_secs(1)),
                "{name}: {err:?}"
            );
            assert!(err.is_retryable());
            assert!(
                took >= Duration::from_secs(1) && took < Duration::from_millis(1100),
                "{name} waited its own timeout, not longer: {took:?}"
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "B waited on A's fetch");

        // Once the fetch has been given up (3 s), the next call starts a new one.
        virtual_sleep(Duration::from_secs(2)).await;
        let (result, _) = call("northwind.example").await.unwrap();
        assert!(matches!(result, Err(Error::AssertionTimedOut { .. })), "{result:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    })
    .await
    .expect("every call returned within its timeout");
}

/// A call that gives up on a slow fetch does not cancel it: the fetch finishes for the
/// calls after it, which get its assertion without asking the source again.
#[tokio::test(start_paused = true)]
async fn a_call_that_gives_up_leaves_the_assertion_fetch_running_for_the_next() {
    let authority = Loopback::answering(
        401,
        &[],
        r#"{"error":"invalid_client","error_codes":[700027],"error_description":"AADSTS700027: bad"}"#,
    )
    .await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let source = assertion_fn(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            virtual_sleep(Duration::from_secs(2)).await;
            Ok(Assertion::new("slow.but.good", None))
        }
    });
    let cred = FederatedAssertion::new(APP, source)
        .authority_host(authority.url())
        .timeout(Duration::from_secs(1))
        .assertion_timeout(Duration::from_secs(5))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = cred
        .get_token(&tenant("contoso.example"), &[VAULT])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AssertionTimedOut { .. }), "{err:?}");
    virtual_sleep(Duration::from_millis(1500)).await;

    // Real time from here: the token request goes over loopback.
    tokio::time::resume();
    let err = cred
        .get_token(&tenant("fabrikam.example"), &[VAULT])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidClientAssertion(_)), "{err:?}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the first fetch's assertion was kept"
    );
    let requests = authority.requests();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0].contains("client_assertion=slow.but.good"),
        "{}",
        requests[0]
    );
}

/// A source that panics poisons nothing: that call fails with a typed error, and the next
/// call fetches again.
#[tokio::test]
async fn a_panicking_assertion_source_fails_one_call_and_the_next_fetches_again() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let source = assertion_fn(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            assert!(
                n > 0,
                "the first fetch panics (this message is expected in the output)"
            );
            Ok(Assertion::new("second.fetch.assertion", None))
        }
    });
    let cred = FederatedAssertion::new(APP, source)
        .authority_host("http://127.0.0.1:9/".parse().unwrap())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = cred
        .get_token(&tenant("contoso.example"), &[VAULT])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AssertionUnavailable { .. }), "{err:?}");
    // The assertion comes this time; nothing listens at the authority, so the token
    // request itself fails to connect.
    let err = cred
        .get_token(&tenant("contoso.example"), &[VAULT])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// `FederatedAssertion::managed_identity` against an App Service identity endpoint that
/// accepts the connection and never answers: each call fails within its timeouts, with a
/// typed error, instead of azure_core's minute-long reads and retries. Runs in a child
/// process (the endpoint is found through process-wide environment variables).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_identity_endpoint_that_never_answers_costs_a_call_its_assertion_timeout() {
    if child_part().is_some() {
        return child_silent_identity_endpoint().await;
    }
    let silent = Loopback::silent().await;
    let endpoint = silent.url().join("msi/token").unwrap();
    run_child(
        module_path!(),
        "a_managed_identity_endpoint_that_never_answers_costs_a_call_its_assertion_timeout",
        "silent endpoint",
        &[
            ("IDENTITY_ENDPOINT", endpoint.as_str()),
            ("IDENTITY_HEADER", "identity-header-value"),
        ],
    )
    .await;
    assert!(silent.connections() >= 1, "the identity endpoint was asked");
    assert!(
        silent.requests().iter().any(|r| r.contains("/msi/token")),
        "{:?}",
        silent.requests()
    );
}

/// The child process's part.
#[allow(clippy::disallowed_methods)] // measures a real network wait, bounded below a second
async fn child_silent_identity_endpoint() {
    let cred = FederatedAssertion::managed_identity(
        APP,
        ManagedIdentity::UserAssigned {
            client_id: "22222222-3333-4444-5555-666666666666".into(),
        },
    )
    .authority_host("http://127.0.0.1:9/".parse().unwrap())
    .assertion_timeout(Duration::from_millis(300))
    .timeout(Duration::from_secs(2))
    .build()
    .unwrap();
    let (contoso, fabrikam) = (tenant("contoso.example"), tenant("fabrikam.example"));
    let started = std::time::Instant::now();
    let (a, b) = tokio::join!(
        cred.get_token(&contoso, &[VAULT]),
        cred.get_token(&fabrikam, &[VAULT]),
    );
    for result in [a, b] {
        let err = result.unwrap_err();
        assert!(
            matches!(err, Error::AssertionTimedOut { after } if after == Duration::from_millis(300)),
            "{err:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// Managed identity requests go straight to the identity endpoint, never to a proxy from
/// the environment: a proxy would see the App Service identity header and the identity's
/// token in clear text. Both sources, App Service and IMDS, each in a child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_requests_never_go_through_a_proxy() {
    match child_part().as_deref() {
        Some("app service") => return child_app_service_assertion_without_proxy().await,
        Some("imds") => return child_imds_without_proxy().await,
        _ => {}
    }
    let w = World::new().await;
    let mi = w.entra.add_managed_identity(&w.home, "id");
    let proxy = Loopback::answering(502, &[], "{}").await;
    let proxied = proxy_env(proxy.url().as_str());
    let mut env: Vec<(&str, &str)> = proxied.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("ACT_MI_CLIENT_ID", &mi.client_id));

    let endpoint = w.entra.app_service_endpoint();
    let header = w.entra.identity_header();
    let mut app_service = env.clone();
    app_service.extend([
        ("IDENTITY_ENDPOINT", endpoint.as_str()),
        ("IDENTITY_HEADER", &header),
    ]);
    run_child(
        module_path!(),
        "managed_identity_requests_never_go_through_a_proxy",
        "app service",
        &app_service,
    )
    .await;
    assert_eq!(
        w.entra.managed_identity_requests(),
        1,
        "the identity endpoint was asked directly"
    );

    run_child(
        module_path!(),
        "managed_identity_requests_never_go_through_a_proxy",
        "imds",
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

/// A child process's part.
async fn child_app_service_assertion_without_proxy() {
    let cred = FederatedAssertion::managed_identity(
        APP,
        ManagedIdentity::UserAssigned {
            client_id: std::env::var("ACT_MI_CLIENT_ID").unwrap(),
        },
    )
    .build()
    .unwrap();
    let assertion = tokio::time::timeout(Duration::from_secs(10), cred.source().assertion())
        .await
        .expect("the identity endpoint answered within 10 s")
        .unwrap();
    let claims = decode_unverified(assertion.secret()).unwrap();
    assert_eq!(claims.aud, vec![EXCHANGE]);
}

/// A child process's part.
async fn child_imds_without_proxy() {
    let cred = FederatedAssertion::managed_identity(
        APP,
        ManagedIdentity::UserAssigned {
            client_id: std::env::var("ACT_MI_CLIENT_ID").unwrap(),
        },
    )
    .authority_host("http://127.0.0.1:9/".parse().unwrap())
    .assertion_timeout(Duration::from_millis(500))
    .timeout(Duration::from_secs(2))
    .build()
    .unwrap();
    // No IMDS here: the direct request fails or times out. What matters is where it went.
    let err = cred
        .get_token(&tenant("contoso.example"), &[VAULT])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::AssertionTimedOut { .. } | Error::ManagedIdentityUnavailable { .. }
        ),
        "{err:?}"
    );
}

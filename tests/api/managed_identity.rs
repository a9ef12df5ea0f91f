//! `FederatedAssertion::managed_identity`'s answers from the identity endpoint: read up to
//! 1 MiB like every other answer, errors that keep a bounded, escaped excerpt of what the
//! endpoint said, and a token asked from the endpoint again after Entra found the last
//! one expired. azure_identity finds the endpoint through App Service's process-wide
//! environment variables, so each case runs in a child process (this test binary again)
//! that the parent serves.

use std::time::Duration;

use crate::common::{VAULT, World, child_part, run_child};
use crate::loopback::Loopback;
use azure_cross_tenant::{Error, FederatedAssertion, ManagedIdentity, TenantCredentialProvider};
use mock_entra::MockFault;

const APP: &str = "11111111-2222-3333-4444-555555555555";
const IDENTITY: &str = "22222222-3333-4444-5555-666666666666";

fn var(name: &str) -> String {
    std::env::var(name).unwrap()
}

/// The credential a child builds: the identity endpoint from the environment, the
/// authority from `ACT_MOCK_URI` (or a closed port), a generous assertion timeout, so a
/// fast failure is the code's doing and not the timeout's.
fn child_credential() -> FederatedAssertion {
    let authority = std::env::var("ACT_MOCK_URI").unwrap_or_else(|_| "http://127.0.0.1:9/".into());
    FederatedAssertion::managed_identity(
        std::env::var("ACT_CLIENT_ID").unwrap_or_else(|_| APP.into()),
        ManagedIdentity::UserAssigned {
            client_id: std::env::var("ACT_MI_CLIENT_ID").unwrap_or_else(|_| IDENTITY.into()),
        },
    )
    .authority_host(authority.parse().unwrap())
    .assertion_timeout(Duration::from_secs(30))
    .timeout(Duration::from_secs(40))
    .build()
    .unwrap()
}

/// Everything an error shows: its `Display`, its `Debug`, and each cause's both.
fn everything_shown(err: &Error) -> Vec<String> {
    let mut shown = vec![err.to_string(), format!("{err:?}")];
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        shown.push(c.to_string());
        shown.push(format!("{c:?}"));
        cause = c.source();
    }
    shown
}

/// An identity endpoint answering 200 with a body that never ends is read up to 1 MiB,
/// then refused: the call fails with `ManagedIdentityUnavailable` naming the cap, long
/// before its 30-second assertion timeout would have ended it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_answer_past_1_mib_is_refused_not_read_to_its_end() {
    if child_part().is_some() {
        return child_endless_identity_answer().await;
    }
    let endpoint = Loopback::endless(200, r#"{"access_token":""#).await;
    let url = endpoint.url().join("msi/token").unwrap();
    run_child(
        module_path!(),
        "an_identity_answer_past_1_mib_is_refused_not_read_to_its_end",
        "endless identity answer",
        &[
            ("IDENTITY_ENDPOINT", url.as_str()),
            ("IDENTITY_HEADER", "identity-header-value"),
        ],
    )
    .await;
    assert_eq!(endpoint.connections(), 1, "refused, not retried");
}

/// The child process's part.
async fn child_endless_identity_answer() {
    let err = child_credential()
        .get_token(&"contoso.example".parse().unwrap(), &[VAULT])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ManagedIdentityUnavailable { .. }),
        "{err:?}"
    );
    let shown = everything_shown(&err).join("\n");
    assert!(shown.contains("1 MiB"), "{shown}");
}

/// An identity endpoint refusing with a long body (403 with 512 KiB, under the cap, and
/// with control characters): the error keeps a short excerpt of it, escaped, in its
/// `Debug` and in every cause, not the body (which made `Debug` megabytes long). A body
/// over the cap (4 MiB) is not read at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_error_keeps_a_bounded_escaped_excerpt_of_the_answer() {
    if child_part().is_some() {
        return child_long_identity_error().await;
    }
    for size in [512 * 1024, 4 * 1024 * 1024] {
        let body = format!(
            "{{\"error\":\"forbidden\u{1b}[2J\",\"detail\":\"{}\"}}",
            "x".repeat(size)
        );
        let endpoint = Loopback::answering(403, &[], &body).await;
        let url = endpoint.url().join("msi/token").unwrap();
        run_child(
            module_path!(),
            "an_identity_error_keeps_a_bounded_escaped_excerpt_of_the_answer",
            "long identity error",
            &[
                ("IDENTITY_ENDPOINT", url.as_str()),
                ("IDENTITY_HEADER", "identity-header-value"),
            ],
        )
        .await;
    }
}

/// The child process's part.
async fn child_long_identity_error() {
    let err = child_credential()
        .get_token(&"contoso.example".parse().unwrap(), &[VAULT])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ManagedIdentityUnavailable { .. }),
        "{err:?}"
    );
    let shown = everything_shown(&err);
    let total: usize = shown.iter().map(String::len).sum();
    let start: String = shown[1].chars().take(400).collect();
    assert!(total < 16 * 1024, "{total} bytes: {start}");
    for text in &shown {
        let start: String = text.chars().take(400).collect();
        assert!(!text.chars().any(char::is_control), "{start:?}");
    }
    let all = shown.join("\n");
    assert!(all.contains("403"), "the status is kept: {all}");
}

/// When Entra finds the assertion expired (AADSTS700024), the one retry asks the
/// identity endpoint for a new token: azure_identity's own token cache would hand back
/// the same one, and the retry could not help.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_aadsts700024_the_identity_endpoint_is_asked_again() {
    if child_part().is_some() {
        return child_expired_assertion_is_replaced().await;
    }
    let w = World::new().await;
    let mi = w.entra.add_managed_identity(&w.home, "id");
    w.entra.trust_managed_identity(&w.app, &mi);
    w.entra.inject_fault(
        &w.customer,
        MockFault::entra_error(
            400,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ),
        1,
    );
    run_child(
        module_path!(),
        "after_aadsts700024_the_identity_endpoint_is_asked_again",
        "expired assertion is replaced",
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
    let statuses: Vec<u16> = w.entra.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![400, 200]);
    assert_eq!(
        w.entra.managed_identity_requests(),
        2,
        "the retry asked the identity endpoint for a new token"
    );
}

/// The child process's part.
async fn child_expired_assertion_is_replaced() {
    let tenant = var("ACT_TENANT").parse().unwrap();
    child_credential()
        .get_token(&tenant, &[VAULT])
        .await
        .unwrap();
}

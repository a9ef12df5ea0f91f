//! Every Entra error code of the cross-tenant table (the README's "Errors tell the
//! operator what to do") becomes the typed error that tells the operator what to do. Codes the mock models come from real mock state (no consent,
//! wrong secret...); the others are scripted as Entra's exact error answers.

use std::time::Duration;

use crate::common::{VAULT, World};
use azure_cross_tenant::{Error, FederationField, TenantCredentialProvider};
use mock_entra::MockFault;

fn assert_message(err: &Error, code: u32, advice: &str) {
    let msg = err.to_string();
    assert_eq!(err.aadsts_code(), Some(code), "{err:?}");
    assert!(msg.contains(&format!("AADSTS{code}")), "{msg}");
    assert!(msg.contains(advice), "expected {advice:?} in: {msg}");
    assert!(err.trace_id().is_some(), "trace id kept: {msg}");
    assert!(err.correlation_id().is_some(), "correlation id kept: {msg}");
}

#[tokio::test]
async fn no_consent_is_not_consented_with_the_admin_consent_url_and_is_not_retried() {
    let w = World::new().await;
    let err = w
        .credential()
        .get_token(&w.stranger, &[VAULT])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotConsented { .. }), "{err:?}");
    assert_message(&err, 700016, "grant admin consent");
    assert!(!err.is_retryable());
    let url = err.consent_url().unwrap();
    assert_eq!(
        url,
        format!(
            "{}{}/adminconsent?client_id={}",
            w.entra.uri(),
            w.stranger,
            w.app.client_id()
        )
    );
    assert_eq!(w.entra.token_requests_for(&w.stranger), 1, "never retried");
    // The correlation id in the error is the client-request-id this request sent.
    let sent = w.entra.requests()[0].client_request_id.clone();
    assert_eq!(err.correlation_id(), sent.as_deref());
}

#[tokio::test]
async fn an_unknown_tenant_is_tenant_not_found() {
    let w = World::new().await;
    let ghost = "00000000-0000-0000-0000-00000000dead".parse().unwrap();
    let err = w
        .credential()
        .get_token(&ghost, &[VAULT])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TenantNotFound(_)), "{err:?}");
    assert_message(&err, 90002, "fix the tenant id or the cloud");
}

#[tokio::test]
async fn a_wrong_secret_is_invalid_client_secret_and_never_retried() {
    let w = World::new().await;
    let err = w
        .credential_with("not-the-secret")
        .get_token(&w.customer, &[VAULT])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidClientSecret(_)), "{err:?}");
    assert_message(&err, 7000215, "not its id");
    assert_eq!(err.entra().unwrap().status, 401);
    assert_eq!(w.entra.token_requests(), 1);
}

#[tokio::test]
async fn an_expired_secret_is_client_secret_expired() {
    let w = World::new().await;
    let expired = w.entra.add_expired_secret(&w.app);
    let err = w
        .credential_with(&expired)
        .get_token(&w.customer, &[VAULT])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ClientSecretExpired(_)), "{err:?}");
    assert_message(&err, 7000222, "new secret");
}

#[tokio::test]
async fn a_secret_expiring_on_the_mock_clock_starts_failing_when_it_expires() {
    let w = World::new().await;
    let short = w
        .entra
        .add_secret_expiring_in(&w.app, Duration::from_secs(60));
    let cred = w.credential_with(&short);
    cred.get_token(&w.customer, &[VAULT]).await.unwrap();
    w.clock.advance(Duration::from_secs(61));
    let err = cred.get_token(&w.customer, &[VAULT]).await.unwrap_err();
    assert!(matches!(err, Error::ClientSecretExpired(_)), "{err:?}");
}

#[tokio::test]
async fn a_disabled_app_is_app_disabled() {
    let w = World::new().await;
    w.entra.set_app_enabled(&w.customer, &w.app, false);
    let err = w
        .credential()
        .get_token(&w.customer, &[VAULT])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AppDisabled(_)), "{err:?}");
    assert_message(&err, 7000112, "re-enable the enterprise application");
}

#[tokio::test]
async fn conditional_access_is_blocked_by_conditional_access() {
    let w = World::new().await;
    w.entra
        .set_blocked_by_conditional_access(&w.customer, &w.app, true);
    let err = w
        .credential()
        .get_token(&w.customer, &[VAULT])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::BlockedByConditionalAccess(_)),
        "{err:?}"
    );
    assert_message(&err, 53003, "review the policy");
}

#[tokio::test]
async fn an_unknown_resource_is_resource_not_found() {
    let w = World::new().await;
    let err = w
        .credential()
        .get_token(&w.customer, &["https://nothing.example/.default"])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ResourceNotFound(_)), "{err:?}");
    assert_message(&err, 500011, "check the scope");
}

#[tokio::test]
async fn common_and_several_resources_are_refused_by_the_mock_like_entra_and_before_sending_by_us()
{
    let w = World::new().await;
    let http = crate::common::plain_http();
    let post = |tenant: &str, scope: &str| {
        http.post(format!("{}{tenant}/oauth2/v2.0/token", w.entra.uri()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", w.app.client_id()),
                ("client_secret", w.secret.as_str()),
                ("scope", scope),
            ])
            .send()
    };
    let common = post("common", VAULT).await.unwrap();
    assert_eq!(common.status(), 400);
    let body: serde_json::Value = serde_json::from_slice(&common.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error_codes"][0], 9001023);
    let several = post(
        w.customer.as_str(),
        "https://vault.azure.net/.default https://storage.azure.com/.default",
    )
    .await
    .unwrap();
    assert_eq!(several.status(), 400);
    let body: serde_json::Value = serde_json::from_slice(&several.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"], "invalid_scope");
    assert_eq!(body["error_codes"][0], 70011);

    // Through the crate, neither request is ever sent.
    w.entra.clear_requests();
    assert!(
        "common"
            .parse::<azure_cross_tenant::TenantId>()
            .unwrap_err()
            .to_string()
            .contains("AADSTS9001023")
    );
    let err = w
        .credential()
        .get_token(&w.customer, &[VAULT, "https://storage.azure.com/.default"])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidScope { .. }), "{err:?}");
    assert!(err.to_string().contains("AADSTS70011"), "{err}");
    assert_eq!(w.entra.token_requests(), 0);
}

/// Codes the mock does not model by itself, answered exactly as Entra answers them.
#[tokio::test]
async fn every_other_code_of_the_table_maps_to_its_variant_and_advice() {
    type Check = fn(&Error) -> bool;
    let cases: &[(u16, &str, u32, Check, &str, bool)] = &[
        (
            400,
            "unauthorized_client",
            7000229,
            |e| matches!(e, Error::NotConsented { .. }),
            "grant admin consent",
            false,
        ),
        (
            400,
            "invalid_resource",
            650052,
            |e| matches!(e, Error::ResourceNotFound(_)),
            "enable the resource",
            false,
        ),
        (
            400,
            "invalid_request",
            900023,
            |e| matches!(e, Error::TenantNotFound(_)),
            "fix the tenant id",
            false,
        ),
        (
            401,
            "invalid_client",
            700027,
            |e| matches!(e, Error::InvalidClientAssertion(_)),
            "upload the certificate",
            false,
        ),
        (
            400,
            "invalid_client",
            70021,
            |e| matches!(e, Error::FederationPending(_)),
            "wait a few minutes",
            true,
        ),
        (
            400,
            "invalid_client",
            700211,
            |e| {
                matches!(
                    e,
                    Error::FederationMismatch {
                        field: FederationField::Issuer,
                        ..
                    }
                )
            },
            "issuer",
            false,
        ),
        (
            400,
            "invalid_client",
            700212,
            |e| {
                matches!(
                    e,
                    Error::FederationMismatch {
                        field: FederationField::Audience,
                        ..
                    }
                )
            },
            "audience",
            false,
        ),
        (
            400,
            "invalid_client",
            700213,
            |e| {
                matches!(
                    e,
                    Error::FederationMismatch {
                        field: FederationField::Subject,
                        ..
                    }
                )
            },
            "subject",
            false,
        ),
        (
            400,
            "invalid_client",
            70025,
            |e| matches!(e, Error::NoFederatedCredentials(_)),
            "add one",
            false,
        ),
        (
            400,
            "invalid_client",
            700236,
            |e| matches!(e, Error::FederatedIdentityInWrongTenant(_)),
            "home tenant",
            false,
        ),
        (
            400,
            "invalid_client",
            700227,
            |e| matches!(e, Error::AssertionRejected(_)),
            "token-exchange audience",
            false,
        ),
        (
            400,
            "invalid_client",
            700222,
            |e| matches!(e, Error::AssertionRejected(_)),
            "user-assigned managed identity",
            false,
        ),
        (
            400,
            "invalid_client",
            700226,
            |e| matches!(e, Error::AssertionRejected(_)),
            "user-assigned managed identity",
            false,
        ),
        (
            400,
            "unauthorized_client",
            70001,
            |e| matches!(e, Error::AppDisabled(_)),
            "re-enable",
            false,
        ),
        (
            400,
            "invalid_scope",
            700022,
            |e| matches!(e, Error::Authority(_)),
            "one `{resource}/.default`",
            false,
        ),
        (
            400,
            "invalid_request",
            9001023,
            |e| matches!(e, Error::Authority(_)),
            "not common",
            false,
        ),
        (
            400,
            "invalid_request",
            50196,
            |e| matches!(e, Error::Throttled { .. }),
            "cache tokens",
            true,
        ),
        (
            429,
            "temporarily_unavailable",
            90055,
            |e| matches!(e, Error::Throttled { .. }),
            "back off",
            true,
        ),
        (
            503,
            "temporarily_unavailable",
            90006,
            |e| matches!(e, Error::Authority(_)),
            "retry later",
            true,
        ),
        (
            400,
            "invalid_request",
            50087,
            |e| matches!(e, Error::Authority(_)),
            "retry later",
            true,
        ),
    ];
    for &(status, error, code, check, advice, retryable) in cases {
        let w = World::new().await;
        // Enough faults that retries of retryable codes meet the same answer.
        w.entra.inject_fault(
            &w.customer,
            MockFault::entra_error(status, error, code, "scripted"),
            5,
        );
        let err = w
            .credential()
            .get_token(&w.customer, &[VAULT])
            .await
            .unwrap_err();
        assert!(check(&err), "AADSTS{code}: got {err:?}");
        assert_message(&err, code, advice);
        assert_eq!(err.is_retryable(), retryable, "AADSTS{code}");
        let sent = w.entra.token_requests_for(&w.customer);
        if retryable {
            assert!(sent <= 2, "AADSTS{code}: at most one retry, sent {sent}");
        } else {
            assert_eq!(sent, 1, "AADSTS{code} must not be retried");
        }
    }
}

/// An answer full of control characters: a trace id carrying a newline and a forged log
/// line, a description with ESC sequences and CR (terminal escapes, overwriting a line),
/// and the other strings Entra's error JSON carries.
fn hostile_error_body(code: u32) -> Vec<u8> {
    serde_json::json!({
        "error": "invalid_request\u{7}",
        "error_description": format!(
            "AADSTS{code}: Something failed.\u{1b}[2J\r\u{1b}]0;owned\u{7} see above"
        ),
        "error_codes": [code],
        "trace_id": "0000-trace\n2030-01-01T00:00:00Z ERROR forged: all tenants revoked",
        "correlation_id": "c0rr\r\nX-Injected: 1",
        "timestamp": "2030-01-01 00:00:00Z\u{0}\u{85}\u{202e}",
    })
    .to_string()
    .into_bytes()
}

fn assert_printable(what: &str, text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() || c == '\u{202e}'),
        "{what} carries a control character: {text:?}"
    );
}

/// What a token endpoint says reaches no `Display`, field or log line with a control
/// character: each is escaped (`\n`, `\u{1b}`), so a log line cannot be forged nor a
/// terminal driven, and the text stays readable.
#[tokio::test]
async fn control_characters_in_an_entra_answer_reach_no_display_field_or_log_line() {
    let (logs, _guard) = crate::logs::Logs::capture();

    let w = World::new().await;
    for code in [12345, 700213] {
        w.entra.inject_fault(
            &w.customer,
            MockFault::Body {
                status: 400,
                body: hostile_error_body(code),
            },
            1,
        );
        let err = w
            .credential()
            .get_token(&w.customer, &[VAULT])
            .await
            .unwrap_err();
        let entra = err.entra().expect("Entra's answer is kept");
        assert_printable("Display", &err.to_string());
        assert_printable("error", &entra.error);
        assert_printable("description", &entra.description);
        assert_printable("trace id", err.trace_id().unwrap());
        assert_printable("correlation id", err.correlation_id().unwrap());
        assert_printable("timestamp", entra.timestamp.as_deref().unwrap());
        assert!(
            err.trace_id()
                .unwrap()
                .contains(r"\n2030-01-01T00:00:00Z ERROR forged"),
            "escaped, not dropped: {:?}",
            err.trace_id()
        );
    }
    let logs = logs.text();
    assert!(logs.contains("token request refused"), "{logs}");
    for line in logs.lines() {
        assert_printable("a log line", line);
        assert!(!line.starts_with("2030-01-01T00:00:00Z"), "forged: {line}");
    }
}

/// The same for the sign-in's code redemption: `OnboardingError::CodeRefused` shows
/// Entra's words escaped.
#[tokio::test]
async fn control_characters_in_a_code_refusal_reach_no_display_or_field() {
    use crate::onboarding::{callback, newcomer, onboarding};
    let w = World::new().await;
    let onboarding = onboarding(&w);
    let (_, admin) = newcomer(&w, "newcomer.example");
    w.entra.sign_in(&admin);
    let (url, pending) = onboarding
        .sign_in(azure_cross_tenant::SignInTenant::Organizations)
        .unwrap();
    let back = w.entra.follow(url.as_str()).await.unwrap();
    w.entra.inject_fault_everywhere(
        MockFault::Body {
            status: 400,
            body: hostile_error_body(70000),
        },
        1,
    );
    let err = onboarding
        .finish_sign_in(pending, &callback(&back))
        .await
        .unwrap_err();
    let azure_cross_tenant::OnboardingError::CodeRefused {
        error,
        description,
        trace_id,
        correlation_id,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_printable("Display", &err.to_string());
    assert_printable("error", error);
    assert_printable("description", description);
    assert_printable("trace id", trace_id.as_deref().unwrap());
    assert_printable("correlation id", correlation_id.as_deref().unwrap());
}

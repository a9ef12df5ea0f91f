//! The official Key Vault client (`azure_security_keyvault_secrets`) on our
//! `TenantCredential`, against a mock Key Vault per tenant that answers the SDK's 401
//! challenge and checks each bearer token's `tid`, `oid` and `aud`.

use std::sync::Arc;

use crate::common::{VAULT, World};
use crate::loopback::Loopback;
use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions};
use azure_cross_tenant::{Cached, ClientSecret, Error, TenantCredentialExt, TenantId};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use mock_entra::{MockResource, ResourceResponse};
use serde_json::json;

/// A Key Vault of one tenant: challenges anonymous calls, accepts only tokens issued by
/// its tenant for Key Vault, and answers with a secret naming the tenant.
async fn vault(w: &World, tenant: &TenantId) -> MockResource {
    let name = tenant.to_string();
    MockResource::start(
        &w.entra,
        tenant,
        "https://vault.azure.net",
        move |request, _| {
            ResourceResponse::new(200).set_body_json(json!({
                "value": format!("secret-of-{name}"),
                "id": format!("https://{}/secrets/db-password/0123", request.url.authority()),
                "attributes": {"enabled": true},
            }))
        },
    )
    .await
}

fn client(vault: &MockResource, credential: Arc<dyn TokenCredential>) -> SecretClient {
    client_retrying(vault, credential, RetryOptions::default())
}

fn client_retrying(
    vault: &MockResource,
    credential: Arc<dyn TokenCredential>,
    retry: RetryOptions,
) -> SecretClient {
    let endpoint = vault.https_uri();
    let options = SecretClientOptions {
        client_options: ClientOptions {
            transport: Some(mock_entra::loopback_transport()),
            retry,
            ..Default::default()
        },
        // The challenge names vault.azure.net; the mock's host is 127.0.0.1.
        verify_challenge_resource: Some(false),
        ..Default::default()
    };
    SecretClient::new(&endpoint, credential, Some(options)).unwrap()
}

#[tokio::test]
async fn one_cached_provider_serves_one_sdk_client_per_tenant_each_with_its_own_token() {
    let w = World::new().await;
    let contoso = w.entra.add_tenant("contoso.example");
    let contoso_sp = w.entra.consent(&contoso, &w.app);
    let provider = Cached::new(w.credential());

    let fabrikam_vault = vault(&w, &w.customer).await;
    let contoso_vault = vault(&w, &contoso).await;
    let fabrikam = client(&fabrikam_vault, provider.for_tenant(w.customer.clone()));
    let contoso_client = client(&contoso_vault, provider.for_tenant(contoso.clone()));

    for _ in 0..3 {
        let a = fabrikam
            .get_secret("db-password", None)
            .await
            .unwrap()
            .into_model()
            .unwrap();
        let b = contoso_client
            .get_secret("db-password", None)
            .await
            .unwrap()
            .into_model()
            .unwrap();
        assert_eq!(
            a.value.as_deref(),
            Some(format!("secret-of-{}", w.customer).as_str())
        );
        assert_eq!(
            b.value.as_deref(),
            Some(format!("secret-of-{contoso}").as_str())
        );
    }
    // Each vault saw three calls, each with its own tenant's service principal.
    let oids = |v: &MockResource| {
        v.accepted()
            .into_iter()
            .map(|c| c.oid.unwrap_or_default())
            .collect::<Vec<_>>()
    };
    assert_eq!(oids(&fabrikam_vault), vec![w.sp_object_id.clone(); 3]);
    assert_eq!(oids(&contoso_vault), vec![contoso_sp; 3]);
    // One token request per tenant: the cache, not the SDK, holds the tokens.
    assert_eq!(w.entra.token_requests_for(&w.customer), 1);
    assert_eq!(w.entra.token_requests_for(&contoso), 1);
    assert_eq!(provider.stats().misses, 2);
}

#[tokio::test]
async fn our_typed_error_survives_the_sdk() {
    let w = World::new().await;
    let provider = Cached::new(w.credential());
    let server = vault(&w, &w.stranger).await;
    let err = client(&server, provider.for_tenant(w.stranger.clone()))
        .get_secret("db-password", None)
        .await
        .unwrap_err();
    assert_eq!(*err.kind(), azure_core::error::ErrorKind::Credential);
    let ours = azure_cross_tenant::find_error(&err).expect("our error is reachable");
    assert!(matches!(ours, Error::NotConsented { .. }), "{ours:?}");
}

#[tokio::test]
async fn tokens_carry_their_expiry_into_azure_core() {
    let w = World::new().await;
    let provider = Cached::new(w.credential());
    let ours = provider.get_token_for_test(&w.customer).await;
    let theirs = provider
        .for_tenant(w.customer.clone())
        .get_token(&[VAULT], None)
        .await
        .unwrap();
    assert_eq!(theirs.token.secret(), ours.secret());
    assert_eq!(
        theirs.expires_on.unix_timestamp(),
        ours.expires_on()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    );
}

trait GetForTest {
    async fn get_token_for_test(&self, tenant: &TenantId) -> azure_cross_tenant::AccessToken;
}

impl<P: azure_cross_tenant::TenantCredentialProvider + 'static> GetForTest for Cached<P> {
    async fn get_token_for_test(&self, tenant: &TenantId) -> azure_cross_tenant::AccessToken {
        self.get_token(tenant, &[VAULT]).await.unwrap()
    }
}

/// An answer whose `expires_in` runs past the year 9999 (a broken proxy, a misbehaving
/// authority) reaches azure_core as a far expiry, never as a panic in the adapter:
/// `azure_core`'s time type cannot hold every `SystemTime` a token may carry.
#[tokio::test]
async fn a_lifetime_beyond_any_calendar_reaches_azure_core_without_a_panic() {
    let w = World::new().await;
    for expires_in in ["1000000000000", "9000000000000000000"] {
        w.entra.inject_fault(
            &w.customer,
            mock_entra::MockFault::Body {
                status: 200,
                body: format!(
                    r#"{{"token_type":"Bearer","expires_in":{expires_in},"access_token":"opaque-token"}}"#
                )
                .into_bytes(),
            },
            1,
        );
        let credential = Arc::new(w.credential()).for_tenant(w.customer.clone());
        let token = tokio::spawn(async move { credential.get_token(&[VAULT], None).await })
            .await
            .expect("the adapter does not panic")
            .expect("a token");
        assert_eq!(token.token.secret(), "opaque-token");
        assert!(
            token.expires_on.year() >= 9999,
            "{expires_in}: {:?}",
            token.expires_on
        );
    }
}

/// A token request that could not reach the authority was retried by the credential's
/// own policy already. It reaches the SDK as a credential error, as azure_identity's own
/// credentials fail: were it an I/O or connection error, the SDK's retry policy would
/// call the credential again up to eight times, each call with its own retries and
/// timeouts, and one SDK call would wait a minute on a dead authority.
#[tokio::test]
async fn a_token_request_that_cannot_reach_the_authority_is_not_retried_again_by_the_sdk() {
    let w = World::new().await;
    // Accepts each connection and hangs up without answering.
    let authority = Loopback::start(|_| Some(String::new())).await;
    let credential = ClientSecret::new(w.app.client_id(), &w.secret)
        .authority_host(authority.url())
        .clock(Arc::new(w.clock.clone()))
        .sleeper(Arc::new(w.clock.clone()))
        .build()
        .unwrap();
    let provider = Cached::new(credential);
    let server = vault(&w, &w.customer).await;
    let fast = RetryOptions::exponential(ExponentialRetryOptions {
        initial_delay: azure_core::time::Duration::milliseconds(1),
        max_delay: azure_core::time::Duration::milliseconds(5),
        max_retries: 3,
        ..Default::default()
    });
    let err = client_retrying(&server, provider.for_tenant(w.customer.clone()), fast)
        .get_secret("db-password", None)
        .await
        .unwrap_err();
    assert_eq!(
        *err.kind(),
        azure_core::error::ErrorKind::Credential,
        "{err}"
    );
    let ours = azure_cross_tenant::find_error(&err).expect("our error is reachable");
    assert!(matches!(ours, Error::Transport { .. }), "{ours:?}");
    assert_eq!(
        authority.connections(),
        2,
        "one attempt and the credential's one retry; the SDK added none"
    );
}

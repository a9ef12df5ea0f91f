//! The official Key Vault client (`azure_security_keyvault_secrets`) on our
//! `TenantCredential`, against a mock Key Vault per tenant that answers the SDK's 401
//! challenge and checks each bearer token's `tid`, `oid` and `aud`.

mod common;

use std::sync::{Arc, Mutex};

use azure_core::credentials::TokenCredential;
use azure_core::http::ClientOptions;
use azure_cross_tenant::testing::DropOnThread;
use azure_cross_tenant::{Cached, Error, TenantCredentialExt, TenantId, decode_unverified};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use common::{VAULT, World};
use serde_json::json;
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

/// A Key Vault of one tenant: challenges anonymous calls, then accepts only tokens
/// issued by its tenant for Key Vault, recording the `oid` of each caller.
struct Vault {
    authority: String,
    tenant: String,
    callers: Arc<Mutex<Vec<String>>>,
}

impl Respond for Vault {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let bearer = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some(token) = bearer else {
            let challenge = format!(
                r#"Bearer authorization="{}{}", resource="https://vault.azure.net""#,
                self.authority, self.tenant
            );
            return ResponseTemplate::new(401)
                .insert_header("www-authenticate", challenge.as_str());
        };
        let claims = decode_unverified(token).unwrap();
        if claims.tid.as_deref() != Some(self.tenant.as_str())
            || claims.aud != ["https://vault.azure.net"]
        {
            return ResponseTemplate::new(403)
                .set_body_json(json!({"error": {"code": "Forbidden"}}));
        }
        self.callers
            .lock()
            .unwrap()
            .push(claims.oid.unwrap_or_default());
        ResponseTemplate::new(200).set_body_json(json!({
            "value": format!("secret-of-{}", self.tenant),
            "id": format!("https://{}/secrets/db-password/0123", request.url.authority()),
            "attributes": {"enabled": true},
        }))
    }
}

async fn vault(
    w: &World,
    tenant: &TenantId,
) -> (DropOnThread<MockServer>, Arc<Mutex<Vec<String>>>) {
    let server = MockServer::start().await;
    let callers = Arc::new(Mutex::new(Vec::new()));
    Mock::given(wiremock::matchers::any())
        .respond_with(Vault {
            authority: w.entra.uri().to_string(),
            tenant: tenant.to_string(),
            callers: callers.clone(),
        })
        .mount(&server)
        .await;
    (DropOnThread::new(server), callers)
}

fn client(server: &MockServer, credential: Arc<dyn TokenCredential>) -> SecretClient {
    let endpoint = server.uri().replacen("http://", "https://", 1);
    let options = SecretClientOptions {
        client_options: ClientOptions {
            transport: Some(azure_cross_tenant::testing::loopback_transport()),
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

    let (fabrikam_vault, fabrikam_callers) = vault(&w, &w.customer).await;
    let (contoso_vault, contoso_callers) = vault(&w, &contoso).await;
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
    assert!(
        fabrikam_callers
            .lock()
            .unwrap()
            .iter()
            .all(|oid| *oid == w.sp_object_id)
    );
    assert!(
        contoso_callers
            .lock()
            .unwrap()
            .iter()
            .all(|oid| *oid == contoso_sp)
    );
    assert_eq!(fabrikam_callers.lock().unwrap().len(), 3);
    // One token request per tenant: the cache, not the SDK, holds the tokens.
    assert_eq!(w.entra.token_requests_for(&w.customer), 1);
    assert_eq!(w.entra.token_requests_for(&contoso), 1);
    assert_eq!(provider.stats().misses, 2);
}

#[tokio::test]
async fn our_typed_error_survives_the_sdk() {
    let w = World::new().await;
    let provider = Cached::new(w.credential());
    let (server, _) = vault(&w, &w.stranger).await;
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
        use azure_cross_tenant::TenantCredentialProvider;
        self.get_token(tenant, &[VAULT]).await.unwrap()
    }
}

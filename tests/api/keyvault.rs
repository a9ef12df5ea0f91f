//! A certificate whose key never leaves Key Vault (#23 item 3): `KeyVaultCertificate`
//! against mock-entra's fake Key Vault (`MockKeyVault`, which signs with a key the test
//! never sees and checks the caller's token and permissions) and `MockEntra` over real
//! HTTP. The vault is called with the app's own secret in its home tenant (through
//! `TenantCredential`); in production that is a managed identity.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{VAULT, World};
use azure_cross_tenant::{
    CacheOptions, Cached, CredentialSet, Error, KeyVaultCertificate, TenantCredential,
    TenantCredentialProvider,
};
use mock_entra::{MockKeyVault, VaultFault, VaultPermission};

const NAME: &str = "saas-signing";

/// The world, its vault with a certificate registered on the app, and the permissions
/// `grant`ed to the app's service principal in its home tenant.
async fn vault(w: &World, grant: &[VaultPermission]) -> (MockKeyVault, Vec<u8>) {
    let vault = MockKeyVault::start(&w.entra, &w.home).await;
    let cer = vault.create_certificate(NAME);
    w.entra.add_certificate(&w.app, &cer);
    let caller = w
        .entra
        .service_principal_id(&w.home, &w.app)
        .expect("the app has a service principal at home");
    for permission in grant {
        vault.grant(&caller, *permission);
    }
    (vault, cer)
}

fn credential(w: &World, vault: &MockKeyVault) -> KeyVaultCertificate {
    let caller = caller(w);
    KeyVaultCertificate::new(w.app.client_id(), vault.uri().as_str(), NAME, caller)
        .authority_host(w.entra.uri())
        .clock(Arc::new(w.clock.clone()))
        .sleeper(Arc::new(w.clock.clone()))
        .reload_interval(Duration::from_secs(86_400))
        .label("vault certificate")
        .build()
        .unwrap()
}

/// The app's own secret in its home tenant, as an `azure_core` credential for Key Vault.
fn caller(w: &World) -> Arc<TenantCredential> {
    TenantCredential::new(Arc::new(w.credential()), w.home.clone())
}

const BOTH: [VaultPermission; 2] = [VaultPermission::Sign, VaultPermission::GetCertificate];

#[tokio::test]
async fn key_vault_signs_each_assertion_and_tokens_are_cached_as_usual() {
    let w = World::new().await;
    let (vault, _) = vault(&w, &BOTH).await;
    let tenants = w.customers(5);
    let provider = Cached::with_options(
        credential(&w, &vault),
        CacheOptions::default().clock(Arc::new(w.clock.clone())),
    )
    .unwrap();
    for tenant in &tenants {
        provider.get_token(tenant, &[VAULT]).await.unwrap();
    }
    // One signature per token request (an assertion is bound to its tenant's endpoint and
    // used once), one certificate read for them all.
    assert_eq!(vault.sign_requests(), 5);
    assert_eq!(vault.certificate_reads(), 1);
    for tenant in &tenants {
        provider.get_token(tenant, &[VAULT]).await.unwrap();
    }
    assert_eq!(vault.sign_requests(), 5, "cached tokens need no signature");

    let stats = provider.credential_stats().unwrap();
    let status = &stats.credentials[0];
    assert_eq!(status.reloads, 0);
    assert_eq!(status.label, "vault certificate");
    assert_eq!(status.kind, "key vault certificate");
    assert!(status.days_left.is_some_and(|d| d > 300), "{status:?}");
}

#[tokio::test]
async fn a_new_version_in_the_vault_is_used_once_entra_refuses_the_old_one() {
    let w = World::new().await;
    let (vault, old) = vault(&w, &BOTH).await;
    let credential = credential(&w, &vault);
    credential.get_token(&w.customer, &[VAULT]).await.unwrap();

    // Rotated in Key Vault, registered on the app, the old one removed: the next call is
    // refused, reads the certificate again and succeeds with the new version.
    let new = vault.create_certificate(NAME);
    w.entra.add_certificate(&w.app, &new);
    assert!(w.entra.remove_certificate(&w.app, &old));
    credential.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(vault.certificate_reads(), 2);
    let status = &credential.credential_stats().unwrap().credentials[0];
    assert_eq!((status.reloads, status.rejections), (1, 1), "{status:?}");
}

#[tokio::test]
async fn without_the_sign_permission_the_error_names_the_role_and_a_set_falls_back() {
    let w = World::new().await;
    let (vault, _) = vault(&w, &[VaultPermission::GetCertificate]).await;
    let err = credential(&w, &vault)
        .get_token(&w.customer, &[VAULT])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::KeyVault {
                status: Some(403),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("Key Vault Crypto User"), "{err}");
    assert!(err.is_credential_error() && !err.is_retryable());

    // Moving to Key Vault with the old secret kept second: no caller sees the refusal.
    let set = CredentialSet::builder()
        .credential(credential(&w, &vault))
        .credential(w.credential())
        .build()
        .unwrap();
    set.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(set.in_use(), "client secret");
}

#[tokio::test]
async fn a_vault_that_hangs_or_fails_costs_a_call_its_timeout_and_is_reported() {
    let w = World::new().await;
    let (vault, _) = vault(&w, &BOTH).await;
    let caller = caller(&w);
    let credential =
        KeyVaultCertificate::new(w.app.client_id(), vault.uri().as_str(), NAME, caller)
            .authority_host(w.entra.uri())
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap();

    vault.set_fault(Some(VaultFault::Hang));
    // The outer bound only keeps a broken build from hanging the suite.
    let err = tokio::time::timeout(
        Duration::from_secs(60),
        credential.get_token(&w.customer, &[VAULT]),
    )
    .await
    .expect("the credential's timeout ends the call")
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::AssertionTimedOut { .. } | Error::KeyVault { status: None, .. }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable(), "{err:?}");

    vault.set_fault(Some(VaultFault::Status(503)));
    let err = credential
        .get_token(&w.customer, &[VAULT])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::KeyVault {
                status: Some(503),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());

    vault.set_fault(None);
    credential.get_token(&w.customer, &[VAULT]).await.unwrap();
}

#[tokio::test]
async fn the_vault_url_and_certificate_name_are_checked_at_build() {
    let w = World::new().await;
    let caller = || caller(&w);
    let err = KeyVaultCertificate::new(w.app.client_id(), "http://vault.example/", NAME, caller())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("plain http"), "{err}");
    let err = KeyVaultCertificate::new(
        w.app.client_id(),
        "https://v.vault.azure.net/",
        "a/b",
        caller(),
    )
    .build()
    .unwrap_err();
    assert!(err.to_string().contains("certificate name"), "{err}");
}

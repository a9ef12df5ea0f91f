//! Rotation without downtime (#23): a set of credentials with fallback, certificates
//! reloaded from their files, and the warning before a credential expires. Against
//! `MockEntra` over real HTTP; certificates are made at test time, files live in a
//! directory of the test's own.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use crate::certificate::{TestCert, make_cert};
use crate::common::{VAULT, World};
use crate::logs::Logs;
use azure_cross_tenant::{
    CacheOptions, Cached, ClientCertificate, ClientSecret, CredentialSet, Error,
    TenantCredentialProvider, TenantId,
};

fn certificate(w: &World, cert: &TestCert, label: &str) -> ClientCertificate {
    ClientCertificate::from_pem(w.app.client_id(), &cert.cert_pem, &cert.key_pem)
        .authority_host(w.entra.uri())
        .clock(Arc::new(w.clock.clone()))
        .sleeper(Arc::new(w.clock.clone()))
        .label(label)
        .build()
        .unwrap()
}

/// One Key Vault token from each tenant, all at once; every error is returned.
async fn round(provider: &impl TenantCredentialProvider, tenants: &[TenantId]) -> Vec<Error> {
    let calls = tenants.iter().map(|t| provider.get_token(t, &[VAULT]));
    futures_util::future::join_all(calls)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect()
}

#[tokio::test]
async fn a_certificate_rotated_mid_run_fails_no_call_in_any_tenant() {
    let w = World::new().await;
    let tenants = w.customers(20);
    let (old, new) = (make_cert(None), make_cert(None));
    // The app registration has the old certificate only; the new one is deployed first.
    w.entra.add_certificate(&w.app, old.cert_pem.as_bytes());
    let set = CredentialSet::builder()
        .credential(certificate(&w, &new, "2026 certificate"))
        .credential(certificate(&w, &old, "2025 certificate"))
        .build()
        .unwrap();
    let provider = Cached::with_options(
        set,
        CacheOptions::default().clock(Arc::new(w.clock.clone())),
    )
    .unwrap();
    let (logs, _guard) = Logs::capture();

    // The new certificate is refused everywhere (not registered yet): every call falls
    // back to the old one at once, and the set switches once.
    assert!(round(&provider, &tenants).await.is_empty());
    let stats = provider.credential_stats().unwrap();
    assert_eq!(stats.switches, 1);
    assert_eq!(stats.in_use().unwrap().label, "2025 certificate");
    assert_eq!(stats.credentials[0].rejections, 20);

    // Mid-run rotation: the new certificate is uploaded and the old one deleted. Tokens
    // expire; every tenant asks again with the old one, is refused, and gets its token
    // with the new one in the same call.
    w.entra.add_certificate(&w.app, new.cert_pem.as_bytes());
    assert!(w.entra.remove_certificate(&w.app, old.cert_pem.as_bytes()));
    w.clock.advance(Duration::from_secs(2 * 3600));
    assert!(round(&provider, &tenants).await.is_empty());
    let stats = provider.credential_stats().unwrap();
    assert_eq!(stats.switches, 2);
    assert_eq!(stats.in_use().unwrap().label, "2026 certificate");
    assert_eq!(stats.credentials[1].rejections, 20);

    // From now on the new one is used first: one token request per tenant, no refusal.
    let before: Vec<usize> = tenants
        .iter()
        .map(|t| w.entra.token_requests_for(t))
        .collect();
    w.clock.advance(Duration::from_secs(2 * 3600));
    assert!(round(&provider, &tenants).await.is_empty());
    for (tenant, before) in tenants.iter().zip(before) {
        assert_eq!(w.entra.token_requests_for(tenant), before + 1);
    }
    assert_eq!(provider.credential_stats().unwrap().switches, 2);

    // Each switch was logged once, naming both credentials by label.
    let switches = logs.lines_with("switched to the next one");
    assert_eq!(switches.len(), 2, "{switches:#?}");
    assert!(
        switches[0].contains("from=2026 certificate")
            && switches[0].contains("to=2025 certificate"),
        "{}",
        switches[0]
    );
    assert!(
        switches[1].contains("from=2025 certificate")
            && switches[1].contains("to=2026 certificate"),
        "{}",
        switches[1]
    );
    assert!(!logs.text().contains("PRIVATE KEY"));
}

#[tokio::test]
async fn a_refusal_about_the_tenant_never_switches_credentials() {
    let w = World::new().await;
    let cert = make_cert(None);
    w.entra.add_certificate(&w.app, cert.cert_pem.as_bytes());
    let set = CredentialSet::builder()
        .credential(w.credential())
        .credential(certificate(&w, &cert, "certificate"))
        .build()
        .unwrap();

    // Not consented, disabled, blocked by conditional access: the tenant's answer, as is,
    // after one request; the other credential is never tried.
    let disabled = w.entra.add_tenant("disabled.example");
    w.entra.consent(&disabled, &w.app);
    w.entra.set_app_enabled(&disabled, &w.app, false);
    let blocked = w.entra.add_tenant("blocked.example");
    w.entra.consent(&blocked, &w.app);
    w.entra
        .set_blocked_by_conditional_access(&blocked, &w.app, true);
    let err = set.get_token(&w.stranger, &[VAULT]).await.unwrap_err();
    assert!(matches!(err, Error::NotConsented { .. }), "{err:?}");
    let err = set.get_token(&disabled, &[VAULT]).await.unwrap_err();
    assert!(matches!(err, Error::AppDisabled(_)), "{err:?}");
    let err = set.get_token(&blocked, &[VAULT]).await.unwrap_err();
    assert!(
        matches!(err, Error::BlockedByConditionalAccess(_)),
        "{err:?}"
    );
    for tenant in [&w.stranger, &disabled, &blocked] {
        assert_eq!(w.entra.token_requests_for(tenant), 1);
    }
    let stats = set.credential_stats().unwrap();
    assert_eq!(stats.switches, 0);
    assert_eq!(set.in_use(), "client secret");
    assert!(stats.credentials.iter().all(|c| c.rejections == 0));

    // The secret expires (removed, then an expired one): the certificate takes over.
    w.entra.remove_secrets(&w.app);
    let expired = w.entra.add_expired_secret(&w.app);
    let set = CredentialSet::builder()
        .credential(w.credential_with(&expired))
        .credential(certificate(&w, &cert, "certificate"))
        .build()
        .unwrap();
    set.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(set.in_use(), "certificate");
    let stats = set.credential_stats().unwrap();
    assert_eq!(stats.credentials[0].rejections, 1);
    assert_eq!(stats.switches, 1);
}

#[tokio::test]
async fn when_every_credential_is_refused_the_error_of_the_one_in_use_is_returned() {
    let w = World::new().await;
    let unregistered = make_cert(None);
    let set = CredentialSet::builder()
        .credential(w.credential_with("not-the-secret-value-at-all"))
        .credential(certificate(&w, &unregistered, "certificate"))
        .build()
        .unwrap();
    let err = set.get_token(&w.customer, &[VAULT]).await.unwrap_err();
    assert!(matches!(err, Error::InvalidClientSecret(_)), "{err:?}");
    assert!(err.is_credential_error());
    let stats = set.credential_stats().unwrap();
    assert_eq!(stats.switches, 0);
    assert!(stats.credentials.iter().all(|c| c.rejections == 1));
}

#[test]
fn a_set_holds_credentials_of_one_app_with_distinct_labels() {
    let secret = |client_id: &str, label: &str| {
        ClientSecret::new(client_id, "app-secret-value")
            .label(label)
            .build()
            .unwrap()
    };
    let app = "11111111-2222-3333-4444-555555555555";
    let other = "99999999-2222-3333-4444-555555555555";
    let err = CredentialSet::builder().build().unwrap_err();
    assert!(err.to_string().contains("at least one"), "{err}");
    let err = CredentialSet::builder()
        .credential(secret(app, "a"))
        .credential(secret(other, "b"))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("one app"), "{err}");
    let err = CredentialSet::builder()
        .credential(secret(app, "same"))
        .credential(secret(app, "same"))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("labelled \"same\""), "{err}");
    let err = ClientSecret::new(app, "app-secret-value")
        .label(" ")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("label"), "{err}");
}

/// A directory of the test's own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("act-rotation-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `cert` to the two files: the certificate first, then the key (as a copy or a
/// deployment does, one file after the other).
fn deploy(cert: &TestCert, cert_path: &Path, key_path: &Path) {
    std::fs::write(cert_path, &cert.cert_pem).unwrap();
    std::fs::write(key_path, &cert.key_pem).unwrap();
}

fn thumbprint(cert: &TestCert) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        &cert.cert_der,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_files_replaced_while_tokens_are_requested_are_picked_up_without_a_failed_call()
{
    let w = World::new().await;
    let tenants = Arc::new(w.customers(8));
    let dir = TempDir::new();
    let (cert_path, key_path) = (dir.path("tls.crt"), dir.path("tls.key"));
    let (first, second, third) = (make_cert(None), make_cert(None), make_cert(None));
    w.entra.add_certificate(&w.app, first.cert_pem.as_bytes());
    deploy(&first, &cert_path, &key_path);
    let credential = Arc::new(
        ClientCertificate::from_pem_files(w.app.client_id(), &cert_path, &key_path)
            .authority_host(w.entra.uri())
            .clock(Arc::new(w.clock.clone()))
            .sleeper(Arc::new(w.clock.clone()))
            .reload_interval(Duration::from_secs(60))
            .build()
            .unwrap(),
    );
    assert_eq!(credential.thumbprint_sha256(), thumbprint(&first));

    // Callers ask for tokens all along, with no cache: every call is a token request.
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let (credential, tenants, stop) = (credential.clone(), tenants.clone(), stop.clone());
            tokio::spawn(async move {
                let mut calls = 0;
                while !stop.load(Ordering::Relaxed) || calls == 0 {
                    for tenant in tenants.iter() {
                        credential.get_token(tenant, &[VAULT]).await.unwrap();
                        calls += 1;
                    }
                }
                calls
            })
        })
        .collect();

    // The usual rotation: the successor is registered, deployed file by file (the half
    // way state, new certificate with the old key, does not parse and is not used), and
    // picked up at the next look; then the old one is deleted from the app.
    w.entra.add_certificate(&w.app, second.cert_pem.as_bytes());
    deploy(&second, &cert_path, &key_path);
    w.clock.advance(Duration::from_secs(61));
    while credential.thumbprint_sha256() != thumbprint(&second) {
        tokio::task::yield_now().await;
        credential.get_token(&tenants[0], &[VAULT]).await.unwrap();
    }
    w.entra
        .remove_certificate(&w.app, first.cert_pem.as_bytes());

    // A rotation this replica has not looked at yet: the files change and the app's
    // certificate is replaced at once. The next call is refused, looks at the files at
    // once, and gets its token with the new certificate.
    w.entra.add_certificate(&w.app, third.cert_pem.as_bytes());
    deploy(&third, &cert_path, &key_path);
    w.entra
        .remove_certificate(&w.app, second.cert_pem.as_bytes());
    credential.get_token(&tenants[0], &[VAULT]).await.unwrap();
    assert_eq!(credential.thumbprint_sha256(), thumbprint(&third));

    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        assert!(
            caller.await.unwrap() > 0,
            "a caller made calls (and none failed)"
        );
    }
    let stats = credential.credential_stats().unwrap();
    let status = &stats.credentials[0];
    assert_eq!(status.reloads, 2);
    assert!(status.label.starts_with("certificate "), "{}", status.label);

    // A file that does not parse keeps the certificate in use, and says why.
    let (logs, _guard) = Logs::capture();
    std::fs::write(
        &cert_path,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    w.clock.advance(Duration::from_secs(61));
    credential.get_token(&tenants[1], &[VAULT]).await.unwrap();
    assert_eq!(credential.thumbprint_sha256(), thumbprint(&third));
    let failures = credential.credential_stats().unwrap().credentials[0].reload_failures;
    assert!(failures >= 1, "{failures}");
    let warned = logs.lines_with("cannot be used");
    assert_eq!(warned.len(), 1, "{}", logs.text());
    assert!(warned[0].contains("malformed"), "{}", warned[0]);
    // Looked at again, the same broken file is not reported again.
    w.clock.advance(Duration::from_secs(61));
    credential.get_token(&tenants[1], &[VAULT]).await.unwrap();
    assert_eq!(logs.lines_with("cannot be used").len(), 1);
}

#[tokio::test]
async fn files_are_not_looked_at_on_every_call() {
    let w = World::new().await;
    let dir = TempDir::new();
    let (cert_path, key_path) = (dir.path("tls.crt"), dir.path("tls.key"));
    let (first, second) = (make_cert(None), make_cert(None));
    w.entra.add_certificate(&w.app, first.cert_pem.as_bytes());
    w.entra.add_certificate(&w.app, second.cert_pem.as_bytes());
    deploy(&first, &cert_path, &key_path);
    let credential = ClientCertificate::from_pem_files(w.app.client_id(), &cert_path, &key_path)
        .authority_host(w.entra.uri())
        .clock(Arc::new(w.clock.clone()))
        .reload_interval(Duration::from_secs(300))
        .build()
        .unwrap();
    deploy(&second, &cert_path, &key_path);
    // Both are registered: nothing is refused, so only the interval brings the look.
    credential.get_token(&w.customer, &[VAULT]).await.unwrap();
    w.clock.advance(Duration::from_secs(299));
    credential.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(credential.thumbprint_sha256(), thumbprint(&first));
    w.clock.advance(Duration::from_secs(1));
    credential.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(credential.thumbprint_sha256(), thumbprint(&second));
}

/// 2029-12-22 00:00 UTC: ten days before the test certificate's notAfter.
fn ten_days_before_2030() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_892_592_000)
}

#[tokio::test]
async fn a_credential_near_its_expiry_warns_once_a_day_and_reports_its_days_left() {
    let w = World::new().await;
    w.clock
        .set(ten_days_before_2030() + Duration::from_secs(3600));
    let cert = make_cert(Some((2025, 2030)));
    w.entra.add_certificate(&w.app, cert.cert_pem.as_bytes());
    let (logs, _guard) = Logs::capture();
    let provider = Cached::with_options(
        certificate(&w, &cert, "signing certificate"),
        CacheOptions::default().clock(Arc::new(w.clock.clone())),
    )
    .unwrap();
    let status = provider.credential_stats().unwrap().credentials[0].clone();
    assert_eq!(
        status.expires_on,
        Some(ten_days_before_2030() + Duration::from_secs(10 * 86_400))
    );
    assert_eq!(status.days_left, Some(9));

    // Built, then asked all day: one warning.
    for tenant in [&w.customer, &w.customer] {
        provider.get_token(tenant, &[VAULT]).await.unwrap();
        provider.invalidate(tenant, &[VAULT]).await;
        w.clock.advance(Duration::from_secs(6 * 3600));
    }
    let warned = logs.lines_with("expires soon");
    assert_eq!(warned.len(), 1, "{}", logs.text());
    assert!(
        warned[0].contains("WARN") && warned[0].contains("credential=signing certificate"),
        "{}",
        warned[0]
    );
    assert!(warned[0].contains("days_left=9"), "{}", warned[0]);

    // The next day, once more.
    w.clock.advance(Duration::from_secs(86_400));
    provider.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(logs.lines_with("expires soon").len(), 2);
    assert_eq!(
        provider.credential_stats().unwrap().credentials[0].days_left,
        Some(8)
    );

    // A secret's expiry, when given, is watched the same way; none given, nothing said.
    let fresh = w.entra.add_secret(&w.app);
    let secret = ClientSecret::new(w.app.client_id(), &fresh)
        .authority_host(w.entra.uri())
        .clock(Arc::new(w.clock.clone()))
        .expires_on(ten_days_before_2030() + Duration::from_secs(40 * 86_400))
        .expiry_warning(Duration::from_secs(60 * 86_400))
        .build()
        .unwrap();
    secret.get_token(&w.customer, &[VAULT]).await.unwrap();
    let soonest = secret.credential_stats().unwrap();
    let soonest = soonest.soonest_expiry().unwrap();
    assert_eq!(soonest.label, "client secret");
    assert_eq!(soonest.days_left, Some(38), "{soonest:?}");
    assert_eq!(logs.lines_with("credential=client secret").len(), 1);
    assert_eq!(
        w.credential().credential_stats().unwrap().credentials[0].expires_on,
        None
    );
}

#[cfg(feature = "pkcs12")]
fn pfx(cert: &TestCert, password: &str) -> Vec<u8> {
    let mut store = p12_keystore::KeyStore::new();
    let chain = p12_keystore::PrivateKeyChain::new(
        p12_keystore::LocalKeyId(vec![1u8; 20]),
        p12_keystore::PrivateKey::from_der(&cert.pkcs8_der).unwrap(),
        [p12_keystore::Certificate::from_der(&cert.cert_der).unwrap()],
    );
    store.add_entry("saas", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    store.writer(password).write().unwrap()
}

#[cfg(feature = "pkcs12")]
#[tokio::test]
async fn a_pkcs12_file_replaced_is_picked_up_and_one_under_another_password_is_not() {
    let w = World::new().await;
    let dir = TempDir::new();
    let path = dir.path("saas.pfx");
    let (first, second, third) = (make_cert(None), make_cert(None), make_cert(None));
    w.entra.add_certificate(&w.app, first.cert_pem.as_bytes());
    std::fs::write(&path, pfx(&first, "correct horse")).unwrap();
    let credential = ClientCertificate::from_pkcs12_file(w.app.client_id(), &path, "correct horse")
        .authority_host(w.entra.uri())
        .clock(Arc::new(w.clock.clone()))
        .reload_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    credential.get_token(&w.customer, &[VAULT]).await.unwrap();

    // Rotated in the app and in the file at once: the refusal brings a look, and the same
    // call gets its token with the new certificate.
    w.entra.add_certificate(&w.app, second.cert_pem.as_bytes());
    w.entra
        .remove_certificate(&w.app, first.cert_pem.as_bytes());
    std::fs::write(&path, pfx(&second, "correct horse")).unwrap();
    credential.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(credential.thumbprint_sha256(), thumbprint(&second));

    // A file sealed with another password cannot be opened: the certificate in use stays.
    w.entra.add_certificate(&w.app, third.cert_pem.as_bytes());
    std::fs::write(&path, pfx(&third, "another password")).unwrap();
    w.clock.advance(Duration::from_secs(61));
    credential.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(credential.thumbprint_sha256(), thumbprint(&second));
    let status = &credential.credential_stats().unwrap().credentials[0];
    assert_eq!((status.reloads, status.reload_failures), (1, 1));
}

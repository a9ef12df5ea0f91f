//! [`ClientCertificate`]: the app proves itself with a certificate, by signing a short-lived
//! client assertion for each request.

mod input;
mod reload;
mod signer;
pub(super) mod x509;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use url::Url;

use super::builder::{CredentialBuilder, Kind};
use super::status::{CredentialStats, Watch};
use crate::authority::{AuthSource, ClientAuth, TokenClient};
use crate::clock::SharedClock;
use crate::error::Error;
use crate::provider::TenantCredentialProvider;
use crate::tenant::TenantId;
use crate::token::{AccessToken, Secret};

use input::{MAX_INPUT, certificates_from_pem, key_from_pem};
use reload::{FileSource, Files};
pub use signer::AssertionAlgorithm;
use signer::{ASSERTION_LIFETIME, Signer};
use x509::bad;

/// Default interval between two looks at a certificate's files.
const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// A multitenant app authenticating with a certificate.
///
/// Each request carries a fresh client assertion whose `aud` is that tenant's token
/// endpoint, so an assertion captured in one tenant is worthless in another. No OpenSSL:
/// PEM (PKCS#8 or PKCS#1 keys) and, with feature `pkcs12`, PKCS#12 are read in Rust;
/// signing uses aws-lc-rs. The private key never appears in `Debug`, errors or logs, and
/// an assertion never follows a redirect.
///
/// Read from files ([`from_pem_files`](Self::from_pem_files),
/// [`from_pkcs12_file`](Self::from_pkcs12_file)), the certificate is reloaded when the
/// files change: they are looked at every
/// [`reload_interval`](CredentialBuilder::reload_interval) (5 minutes by default, on the
/// injected clock) and at once after Entra refuses the certificate, and a new
/// certificate is used for the next assertions (after a refusal, for that very call). A
/// file that does not parse, or a certificate not valid now, leaves the old one in use
/// and is logged with the reason.
///
/// ```no_run
/// use azure_cross_tenant::{ClientCertificate, TenantCredentialProvider, TenantId};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cert = std::fs::read("saas-app.crt.pem")?;
/// let key = std::fs::read("saas-app.key.pem")?;
/// let credential = ClientCertificate::from_pem("11111111-2222-3333-4444-555555555555", &cert, &key)
///     .send_x5c(true) // subject-name/issuer authentication
///     .build()?;
/// let tenant: TenantId = "contoso.onmicrosoft.com".parse()?;
/// let token = credential.get_token(&tenant, &["https://vault.azure.net/.default"]).await?;
/// # Ok(()) }
/// ```
pub struct ClientCertificate {
    client: TokenClient,
    auth: CertificateAuth,
}

/// What only a certificate credential's builder holds.
pub struct CertificateParts {
    parsed: Result<Signer, Error>,
    algorithm: AssertionAlgorithm,
    send_x5c: bool,
    files: Option<FileSource>,
    reload_interval: Duration,
}

impl fmt::Debug for CertificateParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateParts")
            .field("algorithm", &self.algorithm)
            .field("send_x5c", &self.send_x5c)
            .field("files", &self.files)
            .field("reload_interval", &self.reload_interval)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl Kind for ClientCertificate {
    type Parts = CertificateParts;
}

struct CertificateAuth {
    /// The certificate signing now; replaced whole when its files change. Never held
    /// across an await.
    signer: RwLock<Arc<Signer>>,
    files: Option<Files>,
    watch: Watch,
    client_id: Arc<str>,
    clock: SharedClock,
    algorithm: AssertionAlgorithm,
    send_x5c: bool,
}

impl CertificateAuth {
    fn signer(&self) -> Arc<Signer> {
        self.signer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn assertion(&self, endpoint: &Url) -> Result<String, Error> {
        self.signer().assertion(
            &self.client_id,
            endpoint,
            self.clock.now(),
            self.algorithm,
            self.send_x5c,
        )
    }

    /// Puts `signer` in use (the files held a new, valid certificate).
    fn replace(&self, signer: Signer) {
        let signer = Arc::new(signer);
        let old = std::mem::replace(
            &mut *self.signer.write().unwrap_or_else(|p| p.into_inner()),
            signer.clone(),
        );
        self.watch
            .reloaded(signer.not_after(), default_label(&signer));
        tracing::info!(
            client_id = %self.client_id,
            credential = %self.watch.label(),
            old_thumbprint = %old.x5t_s256(),
            new_thumbprint = %signer.x5t_s256(),
            "the client certificate's files changed: new assertions are signed with the new certificate"
        );
    }

    /// Looks at the files if a look is due (`after_rejection`: at once, waiting for a look
    /// in progress), and puts a new certificate found there in use.
    async fn reload(&self, after_rejection: bool) {
        let Some(files) = &self.files else {
            return;
        };
        let now = self.clock.now();
        match files
            .look(now, after_rejection, |signer| self.replace(signer))
            .await
        {
            reload::Looked::Replaced => {}
            reload::Looked::Unusable(why) => {
                self.watch.reload_failed();
                tracing::warn!(
                    client_id = %self.client_id,
                    credential = %self.watch.label(),
                    files = %files.source(),
                    reason = %why,
                    "the client certificate's files changed but cannot be used; the certificate loaded before stays in use"
                );
            }
            reload::Looked::Nothing => {}
        }
    }
}

/// The label of a certificate nobody named: the start of its SHA-256 thumbprint.
fn default_label(signer: &Signer) -> String {
    let thumbprint: String = signer.x5t_s256().chars().take(8).collect();
    format!("certificate {thumbprint}")
}

#[async_trait::async_trait]
impl AuthSource for CertificateAuth {
    async fn auth(&self, endpoint: &Url, _fresh: bool) -> Result<ClientAuth, Error> {
        Ok(ClientAuth::Assertion(Secret::new(
            self.assertion(endpoint)?,
        )))
    }
}

impl ClientCertificate {
    /// The token client and the app's client authentication, for grants other than
    /// client credentials (the onboarding redeems an admin's sign-in code with them,
    /// through [`TokenClient::send_grant`](crate::authority::TokenClient::send_grant)).
    pub(crate) fn token_client(&self) -> (&TokenClient, &dyn AuthSource) {
        (&self.client, &self.auth)
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let signer = self.auth.signer();
        f.debug_struct("ClientCertificate")
            .field("client_id", &self.client.client_id)
            .field(
                "authority_host",
                &self.client.cloud.authority_host().as_str(),
            )
            .field("label", &self.auth.watch.label())
            .field("x5t#S256", &signer.x5t_s256())
            .field("not_after", &signer.not_after())
            .field("files", &self.auth.files.as_ref().map(Files::source))
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl ClientCertificate {
    /// From a PEM certificate chain (leaf first) and a PEM private key (PKCS#8
    /// `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`; both may be in one file). Errors show
    /// at `build`.
    pub fn from_pem(
        client_id: impl Into<String>,
        cert_chain_pem: impl AsRef<[u8]>,
        private_key_pem: impl AsRef<[u8]>,
    ) -> CredentialBuilder<Self> {
        let parsed = parse_pem(cert_chain_pem.as_ref(), private_key_pem.as_ref());
        Self::builder(client_id, parsed, None)
    }

    /// From PEM files (a certificate chain, leaf first, and a private key; both paths may
    /// name one file holding both), reloaded when they change (see the type's docs). The
    /// files are read now; errors show at `build`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use azure_cross_tenant::ClientCertificate;
    ///
    /// let credential = ClientCertificate::from_pem_files(
    ///     "11111111-2222-3333-4444-555555555555",
    ///     "/etc/saas/tls.crt",
    ///     "/etc/saas/tls.key",
    /// )
    /// .reload_interval(Duration::from_secs(60))
    /// .build()?;
    /// # Ok::<(), azure_cross_tenant::Error>(())
    /// ```
    pub fn from_pem_files(
        client_id: impl Into<String>,
        cert_chain_path: impl Into<PathBuf>,
        private_key_path: impl Into<PathBuf>,
    ) -> CredentialBuilder<Self> {
        let source = FileSource::Pem {
            cert: cert_chain_path.into(),
            key: private_key_path.into(),
        };
        let parsed = source.read_now().and_then(|content| source.parse(&content));
        Self::builder(client_id, parsed, Some(source))
    }

    /// From a PKCS#12 (`.pfx`) file, as Key Vault and the portal export it. Errors (wrong
    /// password, no key) show at `build`. Feature `pkcs12`.
    #[cfg(feature = "pkcs12")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pkcs12")))]
    pub fn from_pkcs12(
        client_id: impl Into<String>,
        der: &[u8],
        password: &str,
    ) -> CredentialBuilder<Self> {
        let parsed = input::from_pkcs12(der, password)
            .and_then(|(key, chain)| Signer::from_parts(key, chain));
        Self::builder(client_id, parsed, None)
    }

    /// From a PKCS#12 (`.pfx`) file on disk, reloaded when it changes (see the type's
    /// docs); the same password opens every version. The file is read now; errors show at
    /// `build`. Feature `pkcs12`.
    #[cfg(feature = "pkcs12")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pkcs12")))]
    pub fn from_pkcs12_file(
        client_id: impl Into<String>,
        path: impl Into<PathBuf>,
        password: &str,
    ) -> CredentialBuilder<Self> {
        let source = FileSource::Pkcs12 {
            path: path.into(),
            password: Secret::new(password.to_owned()),
        };
        let parsed = source.read_now().and_then(|content| source.parse(&content));
        Self::builder(client_id, parsed, Some(source))
    }

    fn builder(
        client_id: impl Into<String>,
        parsed: Result<Signer, Error>,
        files: Option<FileSource>,
    ) -> CredentialBuilder<Self> {
        CredentialBuilder::new(
            client_id,
            CertificateParts {
                parsed,
                algorithm: AssertionAlgorithm::default(),
                send_x5c: false,
                files,
                reload_interval: DEFAULT_RELOAD_INTERVAL,
            },
        )
    }

    /// A signed client assertion for `tenant`'s token endpoint, as the next request would
    /// send (for other grants that take one, or to inspect it). `Debug` redacts it.
    pub fn client_assertion(&self, tenant: &TenantId) -> Result<crate::Assertion, Error> {
        let endpoint = self.client.cloud.token_endpoint(tenant);
        let now = self.client.clock.now();
        let text = self.auth.signer().assertion(
            &self.auth.client_id,
            &endpoint,
            now,
            self.auth.algorithm,
            self.auth.send_x5c,
        )?;
        Ok(crate::Assertion::new(text, Some(now + ASSERTION_LIFETIME)))
    }

    /// The SHA-256 thumbprint (base64url, as `x5t#S256` carries it) of the certificate in
    /// use now.
    pub fn thumbprint_sha256(&self) -> String {
        self.auth.signer().x5t_s256().to_owned()
    }

    /// When the certificate in use now expires.
    pub fn not_after(&self) -> SystemTime {
        self.auth.signer().not_after()
    }
}

/// A signer from a PEM certificate chain and key.
fn parse_pem(certs: &[u8], key: &[u8]) -> Result<Signer, Error> {
    if certs.len() > MAX_INPUT || key.len() > MAX_INPUT {
        return Err(bad("input larger than 1 MiB"));
    }
    certificates_from_pem(certs).and_then(|chain| Signer::from_parts(key_from_pem(key)?, chain))
}

/// The settings only a [`ClientCertificate`] has.
impl CredentialBuilder<ClientCertificate> {
    /// Sends the certificate chain (`x5c`) for subject-name/issuer authentication.
    /// Defaults to false.
    pub fn send_x5c(mut self, send: bool) -> Self {
        self.parts.send_x5c = send;
        self
    }

    /// The assertion's signature algorithm. Defaults to [`AssertionAlgorithm::Ps256`]
    /// (with `x5t#S256`).
    pub fn algorithm(mut self, algorithm: AssertionAlgorithm) -> Self {
        self.parts.algorithm = algorithm;
        self
    }

    /// For a certificate read from files: how often they are looked at for a new
    /// certificate (on the injected [`clock`](Self::clock); they are also looked at at
    /// once after Entra refuses the certificate). No call waits for a periodic look: the
    /// call that finds it due does it while the others go on with the certificate in use.
    /// Defaults to 5 minutes; at least a second.
    pub fn reload_interval(mut self, interval: Duration) -> Self {
        self.parts.reload_interval = interval;
        self
    }

    /// Checks everything (key matches certificate, certificate currently valid) and
    /// builds the credential. Nothing is sent yet.
    pub fn build(self) -> Result<ClientCertificate, Error> {
        let (client, parts, watch) = self.into_client()?;
        let signer = parts.parsed?;
        let now = client.clock.now();
        signer.check_validity(now)?;
        if parts.reload_interval < Duration::from_secs(1) {
            return Err(Error::InvalidConfiguration(
                "the certificate reload interval is under a second; use a minute or more".into(),
            ));
        }
        let watch = watch.watch(
            "certificate",
            || default_label(&signer),
            Some(signer.not_after()),
        );
        watch.check(now, &client.client_id);
        let files = parts
            .files
            .map(|source| Files::new(source, &signer, parts.reload_interval, now));
        let auth = CertificateAuth {
            signer: RwLock::new(Arc::new(signer)),
            files,
            watch,
            client_id: client.client_id.clone(),
            clock: client.clock.clone(),
            algorithm: parts.algorithm,
            send_x5c: parts.send_x5c,
        };
        Ok(ClientCertificate { client, auth })
    }
}

#[async_trait::async_trait]
impl TenantCredentialProvider for ClientCertificate {
    fn client_id(&self) -> &str {
        &self.client.client_id
    }

    async fn resolve_tenant(&self, tenant: &TenantId) -> Result<Option<TenantId>, Error> {
        self.client.resolve_tenant(tenant).await
    }

    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        self.auth.reload(false).await;
        let watch = &self.auth.watch;
        watch.check(self.client.clock.now(), &self.client.client_id);
        let (client, auth) = self.token_client();
        let mut used = self.auth.signer();
        let mut result = client.request(tenant, scopes, auth).await;
        // Refused for the certificate itself: its files may hold its successor already
        // (the old one was removed from the app registration before this replica looked).
        // Twice at most: a retry with the certificate another call had just put in use
        // may meet a rotation that happened meanwhile.
        for _ in 0..2 {
            if self.auth.files.is_none() || !result.as_ref().is_err_and(Error::is_credential_error)
            {
                break;
            }
            self.auth.reload(true).await;
            let now_in_use = self.auth.signer();
            if Arc::ptr_eq(&used, &now_in_use) {
                break;
            }
            watch.saw(&result);
            used = now_in_use;
            result = client.request(tenant, scopes, auth).await;
        }
        watch.saw(&result);
        result
    }

    fn authority_host(&self) -> &Url {
        self.client.cloud.authority_host()
    }

    fn credential_stats(&self) -> Option<CredentialStats> {
        Some(self.auth.watch.stats(self.client.clock.now()))
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary text as certificate and key: an error, never a panic.
        #[test]
        fn arbitrary_pem_never_panics(cert in ".{0,200}", key in ".{0,200}") {
            let body = format!("-----BEGIN CERTIFICATE-----\n{cert}\n-----END CERTIFICATE-----");
            let result = ClientCertificate::from_pem("11111111-2222-3333-4444-555555555555", &body, &key).build();
            prop_assert!(result.is_err());
        }

        /// Arbitrary bytes as a DER certificate: an error, never a panic.
        #[test]
        fn arbitrary_der_never_panics(der in proptest::collection::vec(any::<u8>(), 0..512)) {
            prop_assert!(x509::cert_facts(&der).is_err());
        }
    }
}

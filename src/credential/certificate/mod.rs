//! [`ClientCertificate`]: the app proves itself with a certificate, by signing a short-lived
//! client assertion for each request.

mod input;
mod signer;
mod x509;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use url::Url;

use super::builder::{CredentialBuilder, Kind};
use crate::authority::{AuthSource, ClientAuth, TokenClient};
use crate::clock::SharedClock;
use crate::error::Error;
use crate::provider::TenantCredentialProvider;
use crate::tenant::TenantId;
use crate::token::{AccessToken, Secret};

use input::{MAX_INPUT, certificates_from_pem, key_from_pem};
pub use signer::AssertionAlgorithm;
use signer::{ASSERTION_LIFETIME, Signer};
use x509::bad;

/// A certificate expiring sooner than this gets a warning when the credential is built.
const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);

/// A multitenant app authenticating with a certificate.
///
/// Each request carries a fresh client assertion whose `aud` is that tenant's token
/// endpoint, so an assertion captured in one tenant is worthless in another. No OpenSSL:
/// PEM (PKCS#8 or PKCS#1 keys) and, with feature `pkcs12`, PKCS#12 are read in Rust;
/// signing uses aws-lc-rs. The private key never appears in `Debug`, errors or logs, and
/// an assertion never follows a redirect.
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
}

impl fmt::Debug for CertificateParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateParts")
            .field("algorithm", &self.algorithm)
            .field("send_x5c", &self.send_x5c)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl Kind for ClientCertificate {
    type Parts = CertificateParts;
}

struct CertificateAuth {
    signer: Arc<Signer>,
    client_id: Arc<str>,
    clock: SharedClock,
    algorithm: AssertionAlgorithm,
    send_x5c: bool,
}

impl CertificateAuth {
    fn assertion(&self, endpoint: &Url) -> Result<String, Error> {
        self.signer.assertion(
            &self.client_id,
            endpoint,
            self.clock.now(),
            self.algorithm,
            self.send_x5c,
        )
    }
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
        f.debug_struct("ClientCertificate")
            .field("client_id", &self.client.client_id)
            .field(
                "authority_host",
                &self.client.cloud.authority_host().as_str(),
            )
            .field("x5t#S256", &self.auth.signer.x5t_s256())
            .field("not_after", &self.auth.signer.not_after())
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
        let (certs, key) = (cert_chain_pem.as_ref(), private_key_pem.as_ref());
        let parsed = if certs.len() > MAX_INPUT || key.len() > MAX_INPUT {
            Err(bad("input larger than 1 MiB"))
        } else {
            certificates_from_pem(certs)
                .and_then(|chain| Signer::from_parts(key_from_pem(key)?, chain))
        };
        Self::builder(client_id, parsed)
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
        Self::builder(client_id, parsed)
    }

    fn builder(
        client_id: impl Into<String>,
        parsed: Result<Signer, Error>,
    ) -> CredentialBuilder<Self> {
        CredentialBuilder::new(
            client_id,
            CertificateParts {
                parsed,
                algorithm: AssertionAlgorithm::default(),
                send_x5c: false,
            },
        )
    }

    /// A signed client assertion for `tenant`'s token endpoint, as the next request would
    /// send (for other grants that take one, or to inspect it). `Debug` redacts it.
    pub fn client_assertion(&self, tenant: &TenantId) -> Result<crate::Assertion, Error> {
        let endpoint = self.client.cloud.token_endpoint(tenant);
        let now = self.client.clock.now();
        let text = self.auth.signer.assertion(
            &self.auth.client_id,
            &endpoint,
            now,
            self.auth.algorithm,
            self.auth.send_x5c,
        )?;
        Ok(crate::Assertion::new(text, Some(now + ASSERTION_LIFETIME)))
    }

    /// The certificate's SHA-256 thumbprint (base64url), as `x5t#S256` carries it.
    pub fn thumbprint_sha256(&self) -> &str {
        self.auth.signer.x5t_s256()
    }

    /// When the certificate expires.
    pub fn not_after(&self) -> SystemTime {
        self.auth.signer.not_after()
    }
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

    /// Checks everything (key matches certificate, certificate currently valid) and
    /// builds the credential. Nothing is sent yet.
    pub fn build(self) -> Result<ClientCertificate, Error> {
        let (client, parts) = self.into_client()?;
        let signer = parts.parsed?;
        let now = client.clock.now();
        signer.check_validity(now)?;
        if signer.not_after().duration_since(now).unwrap_or_default() < EXPIRY_WARNING {
            tracing::warn!(
                client_id = %client.client_id,
                thumbprint = %signer.x5t_s256(),
                "the client certificate expires within 30 days; upload its successor to the app registration"
            );
        }
        let auth = CertificateAuth {
            signer: Arc::new(signer),
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
        let (client, auth) = self.token_client();
        client.request(tenant, scopes, auth).await
    }

    fn authority_host(&self) -> &Url {
        self.client.cloud.authority_host()
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

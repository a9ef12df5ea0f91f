//! A faithful multi-tenant fake of Microsoft Entra ID for tests: [`MockEntra`].
//!
//! It serves real HTTP (or https, [`MockEntraBuilder::tls`]) on loopback and answers like
//! Entra: the v2 and v1 token endpoints with Entra's checks, status codes, headers and error
//! JSON; client secrets in the body or HTTP Basic, certificate and federated assertions;
//! real RS256 tokens signed by its keys with `tid`, `oid`, `aud`, `appid`/`azp`, `roles`;
//! OpenID metadata, JWKS (with `x5c`) and instance discovery; sign-in (authorization code
//! with PKCE, `id_token`) and admin consent; managed identity endpoints; scripted faults;
//! key rollover; and a request log to count calls. Point any credential at it with
//! `.authority_host(mock.uri())`.
//!
//! It is an oracle independent of the `azure-cross-tenant` library it tests: it signs
//! tokens and verifies client assertions with `jsonwebtoken`, parses JWTs with its own
//! code and reads certificates with `x509-parser`. From the library it takes only public
//! value types (`TenantId`, `Cloud`, `Claims`) and the `Clock` trait, so one
//! `ManualClock` can drive both the code under test and the mock.
//!
//! The same mock runs standalone as the `mock-entra` binary for clients in any language,
//! scripted with a scenario file and the control API under `/_mock/` (see the crate's
//! `README.md`); [`MockEntra::control_url`] serves that API in process too.

#![forbid(unsafe_code)]

/// The Rust examples of `README.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod api;
mod builder;
mod clock;
mod control;
mod endpoints;
mod error;
mod faults;
mod hosts;
mod jose;
mod keys;
mod pages;
mod resource;
mod scenario;
mod server;
mod state;
mod tls;
#[cfg(feature = "azure-core")]
mod transport;
mod types;
mod vault;
mod wire;

pub use api::browser::MockRedirect;
pub use builder::MockEntraBuilder;
pub use error::MockError;
pub use faults::MockFault;
pub use resource::{MockResource, ResourceRequest, ResourceResponse};
#[cfg(feature = "azure-core")]
pub use transport::loopback_transport;
pub use types::{
    CredentialKind, DropOnThread, MockApp, MockEndpoint, MockManagedIdentity, MockUser,
    RecordedRequest, RotationMode,
};
pub use vault::{MockKeyVault, VaultFault, VaultPermission};

use std::sync::{Arc, MutexGuard};

use url::Url;

use azure_cross_tenant::{Cloud, TenantId};
use server::{Server, Shared};
use state::Directory;

/// A fake Entra with tenants, app registrations and consents, on a loopback port.
///
/// ```
/// use mock_entra::MockEntra;
/// use azure_cross_tenant::{ClientSecret, TenantCredentialProvider};
/// use azure_cross_tenant::insecure::decode_unverified;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let entra = MockEntra::start().await;
/// let home = entra.add_tenant("provider.example");
/// let customer = entra.add_tenant("customer.example");
/// let app = entra.register_app(&home, "saas-backend");
/// let secret = entra.add_secret(&app);
/// let sp_object_id = entra.consent(&customer, &app);
///
/// let credential = ClientSecret::new(app.client_id(), secret)
///     .authority_host(entra.uri())
///     .build()?;
/// let token = credential.get_token(&customer, &["https://vault.azure.net/.default"]).await?;
/// let claims = decode_unverified(token.secret())?;
/// assert_eq!(claims.tid.as_deref(), Some(customer.as_str()));
/// assert_eq!(claims.oid, Some(sp_object_id));
/// assert_eq!(entra.token_requests_for(&customer), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MockEntra {
    server: Arc<Server>,
    shared: Arc<Shared>,
    uri: Url,
    ca_pem: Option<Arc<str>>,
}

impl MockEntra {
    /// Starts a mock on a free loopback port, stamping tokens with the system clock.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// A builder: clock, listener, https, public URL, strictness, startup scenario.
    pub fn builder() -> MockEntraBuilder {
        MockEntraBuilder::default()
    }

    /// The authority host (`http://127.0.0.1:{port}/`, or `https://` with
    /// [`tls`](MockEntraBuilder::tls), or the public URL): pass it to `.authority_host(..)`.
    pub fn uri(&self) -> Url {
        self.uri.clone()
    }

    /// The control API's base URL (`{uri}_mock/`), the same one the binary prints.
    pub fn control_url(&self) -> Url {
        self.uri.join("_mock/").unwrap_or_else(|_| self.uri.clone())
    }

    /// The CA certificate (PEM) clients must trust, when serving https.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A `reqwest` client for this mock: trusts its CA (https) and no other, and never
    /// follows redirects, so a test sees the mock's 302s. A credential or validator takes an
    /// `azure_cross_tenant::HttpClient` instead, built from a `reqwest::ClientBuilder`
    /// that trusts [`ca_pem`](Self::ca_pem).
    pub fn http_client(&self) -> reqwest::Client {
        // Only the mock's CA, or none over http: the system's trust store is of no use
        // here, and reqwest would read and parse all of it for every client.
        let roots: Vec<reqwest::Certificate> = self
            .ca_pem()
            .and_then(|pem| reqwest::Certificate::from_pem(pem.as_bytes()).ok())
            .into_iter()
            .collect();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tls_certs_only(roots)
            .build()
            .unwrap_or_else(|e| panic!("MockEntra: a reqwest client could not be built: {e}"))
    }

    /// The mock as a [`Cloud`], with the public cloud's token-exchange audience.
    pub fn cloud(&self) -> Cloud {
        Cloud::Custom {
            authority_host: self.uri.clone(),
            token_exchange_audience: "api://AzureADTokenExchange".into(),
        }
    }

    /// The v2 issuer of `tenant`'s tokens: `{uri}{tid}/v2.0`.
    pub fn issuer_v2(&self, tenant: &TenantId) -> String {
        format!("{}{}/v2.0", self.uri, self.tenant_guid(tenant))
    }

    /// The v1 issuer of `tenant`'s tokens: `https://sts.windows.net/{tid}/`.
    pub fn issuer_v1(&self, tenant: &TenantId) -> String {
        format!("https://sts.windows.net/{}/", self.tenant_guid(tenant))
    }

    /// The address the server listens on.
    pub fn address(&self) -> std::net::SocketAddr {
        self.server.address
    }

    /// Stops serving, gracefully: new connections are refused from this call on, requests
    /// in flight are answered (idle connections close at once), and the future resolves
    /// once every connection has closed or `grace` has passed, with how many were still
    /// open at the deadline (`0`: a clean drain). The in-process API keeps working; HTTP
    /// clients get no more answers. The binary does this on SIGTERM and SIGINT.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mock_entra::MockEntra;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let entra = MockEntra::start().await;
    /// assert_eq!(entra.shutdown(Duration::from_secs(5)).await, 0);
    /// assert!(reqwest::get(entra.control_url().join("health").unwrap()).await.is_err());
    /// # }
    /// ```
    pub fn shutdown(
        &self,
        grace: std::time::Duration,
    ) -> impl Future<Output = usize> + Send + 'static {
        self.server.stop();
        let server = self.server.clone();
        async move { server.closed(grace).await }
    }

    fn lock(&self) -> MutexGuard<'_, Directory> {
        self.shared.dir()
    }
}

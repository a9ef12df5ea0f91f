//! [`FederatedAssertion`]: the app proves itself with a token from another identity
//! provider (workload identity federation), typically a user-assigned managed identity of
//! the app's home tenant. No secret or certificate exists anywhere.
//!
//! One assertion serves every customer tenant: it is fetched once at a time and reused
//! until shortly before it expires, unless its source says it must be re-read for each
//! exchange (a rotated token file).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::assertion::AssertionSource;
use super::builder::{CredentialBuilder, Kind};
use super::shared_assertion::SharedAssertion;
use super::sources::TokenFile;
use super::status::{CredentialStats, Watch};
use crate::authority::{AuthSource, TokenClient};
use crate::error::Error;
use crate::provider::TenantCredentialProvider;
use crate::tenant::TenantId;
use crate::token::AccessToken;

/// Default timeout of one assertion fetch. A managed identity endpoint answers in
/// milliseconds; one that hangs must not hold every tenant for long.
const DEFAULT_ASSERTION_TIMEOUT: Duration = Duration::from_secs(5);

/// A multitenant app authenticating with a federated assertion (workload identity
/// federation): the assertion from an [`AssertionSource`] is exchanged for an app token
/// in each customer tenant.
///
/// Every assertion fetch is bounded by its own timeout
/// ([`assertion_timeout`](CredentialBuilder::assertion_timeout)), and only one runs at a
/// time: tenants that need an assertion while one is being fetched wait for that fetch,
/// each no longer than its own attempt's [`timeout`](CredentialBuilder::timeout). A silent
/// identity endpoint therefore costs each call at most its timeout, never a queue.
///
/// ```no_run
/// use azure_cross_tenant::{Assertion, FederatedAssertion, TenantCredentialProvider, TenantId};
///
/// # async fn run() -> Result<(), azure_cross_tenant::Error> {
/// let credential = FederatedAssertion::new(
///     "11111111-2222-3333-4444-555555555555",
///     azure_cross_tenant::assertion_fn(|| async { Ok(Assertion::from_jwt("eyJ...")) }),
/// )
/// .build()?;
/// let tenant: TenantId = "contoso.onmicrosoft.com".parse()?;
/// let token = credential.get_token(&tenant, &["https://vault.azure.net/.default"]).await?;
/// # Ok(()) }
/// ```
pub struct FederatedAssertion {
    client: TokenClient,
    assertion: SharedAssertion,
    watch: Watch,
}

impl FederatedAssertion {
    /// The token client and the app's client authentication, for grants other than
    /// client credentials (the onboarding redeems an admin's sign-in code with them,
    /// through [`TokenClient::send_grant`](crate::authority::TokenClient::send_grant)).
    pub(crate) fn token_client(&self) -> (&TokenClient, &dyn AuthSource) {
        (&self.client, &self.assertion)
    }
}

impl fmt::Debug for FederatedAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FederatedAssertion")
            .field("client_id", &self.client.client_id)
            .field(
                "authority_host",
                &self.client.cloud.authority_host().as_str(),
            )
            .field("label", &self.watch.label())
            .field("assertion", &self.assertion)
            .finish()
    }
}

/// What only a federated credential's builder holds.
pub struct FederatedParts {
    source: SourceSpec,
    // Only a managed identity source asks for an audience.
    #[cfg_attr(not(feature = "azure-core"), allow(dead_code))]
    audience: Option<String>,
    assertion_timeout: Duration,
}

impl fmt::Debug for FederatedParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FederatedParts")
            .field("source", &self.source)
            .field("audience", &self.audience)
            .field("assertion_timeout", &self.assertion_timeout)
            .finish()
    }
}

impl Kind for FederatedAssertion {
    type Parts = FederatedParts;
}

#[derive(Debug)]
enum SourceSpec {
    Ready(Arc<dyn AssertionSource>),
    #[cfg(feature = "azure-core")]
    ManagedIdentity(super::sources::ManagedIdentity),
}

impl FederatedAssertion {
    /// Starts building a credential for `client_id` whose assertions come from `source`.
    #[allow(clippy::new_ret_no_self)] // the API contract: new(..) -> builder
    pub fn new(
        client_id: impl Into<String>,
        source: impl AssertionSource + 'static,
    ) -> CredentialBuilder<Self> {
        Self::builder(client_id, SourceSpec::Ready(Arc::new(source)))
    }

    /// The secretless SaaS pattern: a user-assigned managed identity of the app's home
    /// tenant gets a token for the cloud's token-exchange audience
    /// (`api://AzureADTokenExchange` in the public cloud), and that token is the assertion
    /// for every customer tenant. The app needs a federated identity credential with
    /// issuer `https://login.microsoftonline.com/{home tenant}/v2.0`, subject = the
    /// identity's object (principal) id, audience = the token-exchange audience.
    ///
    /// Built on `azure_identity::ManagedIdentityCredential` (IMDS, App Service, with their
    /// retry rules), over a connection of its own that never uses a proxy (the identity
    /// endpoint is on the host; `HTTP_PROXY` must not see its requests or the App Service
    /// identity header) and never follows a redirect. Feature `azure-core`.
    #[cfg(feature = "azure-core")]
    pub fn managed_identity(
        client_id: impl Into<String>,
        identity: super::sources::ManagedIdentity,
    ) -> CredentialBuilder<Self> {
        Self::builder(client_id, SourceSpec::ManagedIdentity(identity))
    }

    /// AKS workload identity, configured from the environment its webhook injects:
    /// `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE` (re-read for every exchange) and,
    /// if set, `AZURE_AUTHORITY_HOST`. `AZURE_TENANT_ID` names the app's home tenant and is
    /// not needed: each call names its customer tenant.
    ///
    /// ```no_run
    /// use azure_cross_tenant::{Cached, FederatedAssertion};
    ///
    /// let provider = Cached::new(FederatedAssertion::workload_identity_from_env()?.build()?);
    /// # Ok::<(), azure_cross_tenant::Error>(())
    /// ```
    pub fn workload_identity_from_env() -> Result<CredentialBuilder<Self>, Error> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| {
                Error::InvalidConfiguration(format!(
                    "{name} is not set; is the workload identity webhook enabled for this pod?"
                ))
            })
        };
        let client_id = var("AZURE_CLIENT_ID")?;
        let file = var("AZURE_FEDERATED_TOKEN_FILE")?;
        let mut builder = Self::new(client_id, TokenFile::new(file));
        if let Ok(host) = std::env::var("AZURE_AUTHORITY_HOST") {
            let url = Url::parse(&host).map_err(|e| {
                Error::InvalidConfiguration(format!("AZURE_AUTHORITY_HOST is not a URL: {e}"))
            })?;
            builder = builder.authority_host(url);
        }
        Ok(builder)
    }

    fn builder(client_id: impl Into<String>, source: SourceSpec) -> CredentialBuilder<Self> {
        CredentialBuilder::new(
            client_id,
            FederatedParts {
                source,
                audience: None,
                assertion_timeout: DEFAULT_ASSERTION_TIMEOUT,
            },
        )
    }

    /// The assertion's source.
    pub fn source(&self) -> &dyn AssertionSource {
        self.assertion.source()
    }
}

/// The settings only a [`FederatedAssertion`] has.
impl CredentialBuilder<FederatedAssertion> {
    /// The audience a managed identity token is asked for, overriding the cloud's
    /// token-exchange audience (e.g. `api://AzureADTokenExchangeUSNat`). Defaults to the
    /// cloud's.
    pub fn token_exchange_audience(mut self, audience: impl Into<String>) -> Self {
        self.parts.audience = Some(audience.into());
        self
    }

    /// How long one assertion fetch may take before it is given up (a managed identity
    /// endpoint that accepts the connection and never answers, a custom source that
    /// hangs). It bounds the fetch itself; each call's wait for it is bounded by the
    /// [`timeout`](Self::timeout) too, and a call that gives up leaves the fetch running
    /// for the others. Defaults to 5 s.
    pub fn assertion_timeout(mut self, timeout: Duration) -> Self {
        self.parts.assertion_timeout = timeout;
        self
    }

    /// Checks the configuration and builds the credential. Nothing is sent yet.
    pub fn build(self) -> Result<FederatedAssertion, Error> {
        let (client, parts, watch) = self.into_client()?;
        if parts.assertion_timeout.is_zero() {
            return Err(Error::InvalidConfiguration(
                "the assertion timeout is zero; use at least a second".into(),
            ));
        }
        #[cfg_attr(
            not(feature = "azure-core"),
            allow(clippy::infallible_destructuring_match)
        )]
        let source: Arc<dyn AssertionSource> = match parts.source {
            SourceSpec::Ready(source) => source,
            #[cfg(feature = "azure-core")]
            SourceSpec::ManagedIdentity(identity) => {
                let audience = parts
                    .audience
                    .unwrap_or_else(|| client.cloud.token_exchange_audience().to_owned());
                Arc::new(identity.into_source(&audience)?)
            }
        };
        let assertion = SharedAssertion::new(source, client.clock.clone(), parts.assertion_timeout);
        // An assertion's expiry is not the credential's: it is fetched anew before then.
        let watch = watch.watch("federated assertion", || "federated assertion".into(), None);
        Ok(FederatedAssertion {
            client,
            assertion,
            watch,
        })
    }
}

#[async_trait::async_trait]
impl TenantCredentialProvider for FederatedAssertion {
    fn client_id(&self) -> &str {
        &self.client.client_id
    }

    async fn resolve_tenant(&self, tenant: &TenantId) -> Result<Option<TenantId>, Error> {
        self.client.resolve_tenant(tenant).await
    }

    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        let (client, auth) = self.token_client();
        let result = client.request(tenant, scopes, auth).await;
        self.watch.saw(&result);
        result
    }

    fn authority_host(&self) -> &Url {
        self.client.cloud.authority_host()
    }

    fn credential_stats(&self) -> Option<CredentialStats> {
        Some(self.watch.stats(self.client.clock.now()))
    }
}

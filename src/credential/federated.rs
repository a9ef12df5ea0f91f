//! [`FederatedAssertion`]: the app proves itself with a token from another identity
//! provider (workload identity federation), typically a user-assigned managed identity of
//! the app's home tenant. No secret or certificate exists anywhere.
//!
//! One assertion serves every customer tenant: it is fetched once (single flight) and
//! reused until shortly before it expires, unless its source says it must be re-read for
//! each exchange (a rotated token file).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use url::Url;

use crate::authority::{AuthSource, ClientAuth, TokenClient};
use crate::clock::SharedClock;
use crate::credential::{CommonOptions, common_builder_methods};
use crate::error::Error;
use crate::provider::TenantCredentialProvider;
use crate::tenant::TenantId;
use crate::token::{AccessToken, Secret};

/// An assertion is not reused within this margin of its expiry: Entra must still find it
/// valid when the request arrives (AADSTS700024 otherwise).
const REUSE_MARGIN: Duration = Duration::from_secs(5 * 60);

/// A token from another identity provider, presented as the app's `client_assertion`.
///
/// `Debug` shows `<redacted>` for the token.
#[derive(Clone)]
pub struct Assertion {
    token: Secret,
    expires_on: Option<SystemTime>,
}

impl Assertion {
    /// An assertion expiring at `expires_on` (if known).
    pub fn new(token: impl Into<String>, expires_on: Option<SystemTime>) -> Self {
        Self {
            token: Secret::new(token.into()),
            expires_on,
        }
    }

    /// An assertion from a JWT, its expiry read from the `exp` claim (unverified: Entra
    /// verifies it).
    pub fn from_jwt(token: impl Into<String>) -> Self {
        let token = token.into();
        let expires_on = crate::jwt::peek_claims(&token)
            .and_then(|c| c.exp)
            .and_then(|exp| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(exp)));
        Self::new(token, expires_on)
    }

    /// When the assertion expires, if known.
    pub fn expires_on(&self) -> Option<SystemTime> {
        self.expires_on
    }

    pub(crate) fn secret(&self) -> &Secret {
        &self.token
    }
}

impl fmt::Debug for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Assertion")
            .field("token", &"<redacted>")
            .field("expires_on", &self.expires_on)
            .finish()
    }
}

/// Where federated assertions come from: a managed identity, a token file, a closure...
///
/// ```
/// use azure_cross_tenant::{Assertion, AssertionSource, Error};
///
/// #[derive(Debug)]
/// struct GitHubOidc;
///
/// #[async_trait::async_trait]
/// impl AssertionSource for GitHubOidc {
///     async fn assertion(&self) -> Result<Assertion, Error> {
///         // Ask the IdP for a token whose audience is the cloud's token-exchange audience.
///         Ok(Assertion::from_jwt("eyJ..."))
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait AssertionSource: Send + Sync + fmt::Debug {
    /// A current assertion.
    async fn assertion(&self) -> Result<Assertion, Error>;

    /// Whether one assertion may be reused for several exchanges until near its expiry
    /// (default true). A source whose token can be replaced under it at any time (a
    /// kubelet-rotated file) returns false, so it is read for every exchange.
    fn reusable(&self) -> bool {
        true
    }
}

/// Reuses one assertion across tenants, fetching a new one when it nears expiry or Entra
/// said it expired. The tokio mutex makes concurrent fetches one.
struct SharedAssertion {
    source: Arc<dyn AssertionSource>,
    current: tokio::sync::Mutex<Option<Assertion>>,
    clock: SharedClock,
}

impl fmt::Debug for SharedAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedAssertion")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl AuthSource for SharedAssertion {
    async fn auth(&self, _endpoint: &Url, fresh: bool) -> Result<ClientAuth, Error> {
        if !self.source.reusable() {
            let a = self.source.assertion().await?;
            return Ok(ClientAuth::Assertion(a.secret().clone()));
        }
        let mut current = self.current.lock().await;
        let now = self.clock.now();
        let usable = |a: &Assertion| a.expires_on().is_none_or(|exp| now + REUSE_MARGIN < exp);
        match current.as_ref() {
            Some(a) if !fresh && usable(a) => Ok(ClientAuth::Assertion(a.secret().clone())),
            _ => {
                tracing::debug!(source = ?self.source, fresh, "fetching a federated assertion");
                let a = self.source.assertion().await?;
                let auth = ClientAuth::Assertion(a.secret().clone());
                *current = Some(a);
                Ok(auth)
            }
        }
    }
}

/// A multitenant app authenticating with a federated assertion (workload identity
/// federation): the assertion from an [`AssertionSource`] is exchanged for an app token
/// in each customer tenant.
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
}

impl FederatedAssertion {
    /// The token client and client authentication, for grants other than client
    /// credentials (onboarding redeems the admin's sign-in code with them).
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
            .field("source", &self.assertion.source)
            .finish()
    }
}

impl FederatedAssertion {
    /// Starts building a credential for `client_id` whose assertions come from `source`.
    #[allow(clippy::new_ret_no_self)] // the DESIGN.md contract: new(..) -> builder
    pub fn new(
        client_id: impl Into<String>,
        source: impl AssertionSource + 'static,
    ) -> FederatedAssertionBuilder {
        FederatedAssertionBuilder {
            client_id: client_id.into(),
            source: SourceSpec::Ready(Arc::new(source)),
            audience: None,
            common: CommonOptions::default(),
        }
    }

    /// The secretless SaaS pattern: a user-assigned managed identity of the app's home
    /// tenant gets a token for the cloud's token-exchange audience
    /// (`api://AzureADTokenExchange` in the public cloud), and that token is the assertion
    /// for every customer tenant. The app needs a federated identity credential with
    /// issuer `https://login.microsoftonline.com/{home tenant}/v2.0`, subject = the
    /// identity's object (principal) id, audience = the token-exchange audience.
    ///
    /// Built on `azure_identity::ManagedIdentityCredential` (IMDS, App Service, with their
    /// retry rules). Feature `azure-core`.
    #[cfg(feature = "azure-core")]
    pub fn managed_identity(
        client_id: impl Into<String>,
        identity: crate::credential::sources::ManagedIdentity,
    ) -> FederatedAssertionBuilder {
        FederatedAssertionBuilder {
            client_id: client_id.into(),
            source: SourceSpec::ManagedIdentity(identity),
            audience: None,
            common: CommonOptions::default(),
        }
    }

    /// The assertion's source.
    pub fn source(&self) -> &dyn AssertionSource {
        &*self.assertion.source
    }
}

#[derive(Debug)]
enum SourceSpec {
    Ready(Arc<dyn AssertionSource>),
    #[cfg(feature = "azure-core")]
    ManagedIdentity(crate::credential::sources::ManagedIdentity),
}

/// Builds a [`FederatedAssertion`].
#[must_use = "a builder does nothing until `build()` (or `start()`)"]
pub struct FederatedAssertionBuilder {
    client_id: String,
    source: SourceSpec,
    audience: Option<String>,
    common: CommonOptions,
}

impl fmt::Debug for FederatedAssertionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FederatedAssertionBuilder")
            .field("client_id", &self.client_id)
            .field("source", &self.source)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl FederatedAssertionBuilder {
    common_builder_methods!();

    /// The audience a managed identity token is asked for, overriding the cloud's
    /// token-exchange audience (e.g. `api://AzureADTokenExchangeUSNat`).
    pub fn token_exchange_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Checks the configuration and builds the credential. Nothing is sent yet.
    pub fn build(self) -> Result<FederatedAssertion, Error> {
        let client = self.common.build(&self.client_id)?;
        let clock = client.clock.clone();
        let audience = self
            .audience
            .unwrap_or_else(|| client.cloud.token_exchange_audience().to_owned());
        #[cfg_attr(
            not(feature = "azure-core"),
            allow(clippy::infallible_destructuring_match)
        )]
        let source: Arc<dyn AssertionSource> = match self.source {
            SourceSpec::Ready(s) => s,
            #[cfg(feature = "azure-core")]
            SourceSpec::ManagedIdentity(identity) => Arc::new(identity.into_source(&audience)?),
        };
        let _ = audience;
        Ok(FederatedAssertion {
            client,
            assertion: SharedAssertion {
                source,
                current: tokio::sync::Mutex::new(None),
                clock,
            },
        })
    }
}

#[async_trait::async_trait]
impl TenantCredentialProvider for FederatedAssertion {
    fn client_id(&self) -> &str {
        &self.client.client_id
    }

    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        self.client.request(tenant, scopes, &self.assertion).await
    }

    fn authority_host(&self) -> &Url {
        self.client.cloud.authority_host()
    }
}

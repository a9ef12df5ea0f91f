//! [`ClientSecret`]: the app proves itself with a client secret.

use std::fmt;
use std::time::SystemTime;

use url::Url;

use super::builder::{CredentialBuilder, Kind};
use super::status::{CredentialStats, Watch};
use crate::authority::{AuthSource, ClientAuth, TokenClient};
use crate::error::Error;
use crate::provider::TenantCredentialProvider;
use crate::tenant::TenantId;
use crate::token::{AccessToken, Secret};

/// Longest secret accepted; Entra's are 40 characters.
const MAX_SECRET_LEN: usize = 1024;

/// A multitenant app authenticating with a client secret.
///
/// Each [`get_token`](TenantCredentialProvider::get_token) sends one client-credentials
/// request to `{authority}/{tenant}/oauth2/v2.0/token`; wrap it in
/// [`Cached`](crate::Cached) to reuse tokens. The secret never appears in `Debug`, errors
/// or logs, and never follows a redirect.
///
/// ```no_run
/// use azure_cross_tenant::{ClientSecret, TenantCredentialProvider, TenantId};
///
/// # async fn run() -> Result<(), azure_cross_tenant::Error> {
/// let credential = ClientSecret::new("11111111-2222-3333-4444-555555555555", "app-secret-value")
///     .build()?;
/// let tenant: TenantId = "contoso.onmicrosoft.com".parse()?;
/// let token = credential.get_token(&tenant, &["https://vault.azure.net/.default"]).await?;
/// println!("expires at {:?}", token.expires_on());
/// # Ok(()) }
/// ```
pub struct ClientSecret {
    client: TokenClient,
    secret: Secret,
    watch: Watch,
}

/// What only a client secret credential's builder holds: the secret and its expiry.
#[derive(Debug)]
pub struct SecretParts {
    secret: Secret,
    expires_on: Option<SystemTime>,
}

impl Kind for ClientSecret {
    type Parts = SecretParts;
}

impl ClientSecret {
    /// Starts building a credential for `client_id` (the app's Application ID, a GUID)
    /// with `secret` (the secret's *value*, not its id).
    #[allow(clippy::new_ret_no_self)] // the API contract: new(..) -> builder
    pub fn new(client_id: impl Into<String>, secret: impl Into<String>) -> CredentialBuilder<Self> {
        CredentialBuilder::new(
            client_id,
            SecretParts {
                secret: Secret::new(secret.into()),
                expires_on: None,
            },
        )
    }
}

impl ClientSecret {
    /// The token client and the app's client authentication, for grants other than
    /// client credentials (the onboarding redeems an admin's sign-in code with them,
    /// through [`TokenClient::send_grant`](crate::authority::TokenClient::send_grant)).
    pub(crate) fn token_client(&self) -> (&TokenClient, &dyn AuthSource) {
        (&self.client, &self.secret)
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecret")
            .field("client_id", &self.client.client_id)
            .field(
                "authority_host",
                &self.client.cloud.authority_host().as_str(),
            )
            .field("label", &self.watch.label())
            .field("secret", &self.secret)
            .finish()
    }
}

/// The settings only a [`ClientSecret`] has.
impl CredentialBuilder<ClientSecret> {
    /// When the secret expires (the app registration shows it; Entra does not tell a
    /// client): from [`expiry_warning`](Self::expiry_warning) before it (30 days by
    /// default) a warning is logged once a day, and
    /// [`CredentialStats`](crate::CredentialStats) reports the days left. Defaults to
    /// unknown.
    pub fn expires_on(mut self, expires_on: SystemTime) -> Self {
        self.parts.expires_on = Some(expires_on);
        self
    }

    /// Checks the configuration (client id is a GUID, secret is present, authority is
    /// https or loopback) and builds the credential. Nothing is sent yet.
    pub fn build(self) -> Result<ClientSecret, Error> {
        let secret = self.parts.secret.expose();
        if secret.is_empty() {
            return Err(Error::InvalidConfiguration(
                "the client secret is empty; set the secret's value from the app registration"
                    .into(),
            ));
        }
        if secret.len() > MAX_SECRET_LEN || secret.chars().any(char::is_control) {
            return Err(Error::InvalidConfiguration(
                "the client secret is not a secret value (too long, or holds control characters such as a newline)"
                    .into(),
            ));
        }
        let (client, parts, watch) = self.into_client()?;
        let watch = watch.watch("client secret", || "client secret".into(), parts.expires_on);
        watch.check(client.clock.now(), &client.client_id);
        Ok(ClientSecret {
            client,
            secret: parts.secret,
            watch,
        })
    }
}

#[async_trait::async_trait]
impl AuthSource for Secret {
    async fn auth(&self, _endpoint: &Url, _fresh: bool) -> Result<ClientAuth, Error> {
        Ok(ClientAuth::Secret(self.clone()))
    }
}

#[async_trait::async_trait]
impl TenantCredentialProvider for ClientSecret {
    fn client_id(&self) -> &str {
        &self.client.client_id
    }

    async fn resolve_tenant(&self, tenant: &TenantId) -> Result<Option<TenantId>, Error> {
        self.client.resolve_tenant(tenant).await
    }

    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        self.watch
            .check(self.client.clock.now(), &self.client.client_id);
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

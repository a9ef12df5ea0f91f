//! [`ClientSecret`]: the app proves itself with a client secret.

use std::fmt;

use url::Url;

use crate::authority::{AuthSource, ClientAuth, TokenClient};
use crate::credential::{CommonOptions, common_builder_methods};
use crate::error::Error;
use crate::provider::TenantCredentialProvider;
use crate::tenant::TenantId;
use crate::token::{AccessToken, Secret};

/// Longest secret accepted; Entra's are 40 characters.
const MAX_SECRET_LEN: usize = 1024;

/// A multitenant app authenticating with a client secret.
///
/// Each [`get_token`](TenantCredentialProvider::get_token) sends one client-credentials
/// request to `{authority}/{tenant}/oauth2/v2.0/token`. The secret never appears in
/// `Debug`, errors or logs.
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
}

impl ClientSecret {
    /// Starts building a credential for `client_id` (the app's Application ID, a GUID)
    /// with `secret` (the secret's *value*, not its id).
    #[allow(clippy::new_ret_no_self)] // the DESIGN.md contract: new(..) -> builder
    pub fn new(client_id: impl Into<String>, secret: impl Into<String>) -> ClientSecretBuilder {
        ClientSecretBuilder {
            client_id: client_id.into(),
            secret: Secret::new(secret.into()),
            common: CommonOptions::default(),
        }
    }
}

impl ClientSecret {
    /// The token client and client authentication, for grants other than client
    /// credentials (onboarding redeems the admin's sign-in code with them).
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
            .field("secret", &self.secret)
            .finish()
    }
}

/// Builds a [`ClientSecret`]; see [`ClientSecret::new`].
#[must_use = "a builder does nothing until `build()` (or `start()`)"]
pub struct ClientSecretBuilder {
    client_id: String,
    secret: Secret,
    common: CommonOptions,
}

impl fmt::Debug for ClientSecretBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecretBuilder")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret)
            .field("common", &self.common)
            .finish()
    }
}

impl ClientSecretBuilder {
    common_builder_methods!();

    /// Checks the configuration (client id is a GUID, secret is present, authority is
    /// https or loopback) and builds the credential. Nothing is sent yet.
    pub fn build(self) -> Result<ClientSecret, Error> {
        let secret = self.secret.expose();
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
        Ok(ClientSecret {
            client: self.common.build(&self.client_id)?,
            secret: self.secret,
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

    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        self.client.request(tenant, scopes, &self.secret).await
    }

    fn authority_host(&self) -> &Url {
        self.client.cloud.authority_host()
    }
}

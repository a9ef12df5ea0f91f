//! The small public types of the mock: handles to what it created, the request log's
//! entries, and [`DropOnThread`].

use serde::Serialize;

use azure_cross_tenant::TenantId;

/// An app registration in the mock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockApp {
    pub(crate) client_id: String,
    pub(crate) home_tenant: TenantId,
}

impl MockApp {
    /// The app's client id (a GUID).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The tenant the app is registered in.
    pub fn home_tenant(&self) -> &TenantId {
        &self.home_tenant
    }
}

/// A user-assigned managed identity in the mock, served by its IMDS and App Service
/// endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::exhaustive_structs)] // a plain record; tests build one the mock never heard of
pub struct MockManagedIdentity {
    /// Its client id.
    pub client_id: String,
    /// Its object (principal) id: the `sub` and `oid` of its tokens.
    pub object_id: String,
    /// Its Azure resource id.
    pub resource_id: String,
    /// The tenant it lives in.
    pub tenant: TenantId,
}

/// A user of a mock tenant, who can sign in (and consent for the tenant if an admin).
///
/// ```
/// use mock_entra::MockEntra;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let entra = MockEntra::start().await;
/// let customer = entra.add_tenant("customer.example");
/// let admin = entra.add_admin(&customer, "admin@customer.example");
/// assert!(admin.is_admin && admin.tenant == customer);
/// entra.sign_in(&admin); // sign-in and admin consent now act as this admin
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MockUser {
    /// The user's object id (the `oid` of their tokens).
    pub object_id: String,
    /// The user principal name (`preferred_username`).
    pub upn: String,
    /// The display name (`name`).
    pub display_name: String,
    /// The user's tenant (a GUID).
    pub tenant: TenantId,
    /// Whether the user may grant admin consent for the tenant.
    pub is_admin: bool,
    /// The directory role template ids the user holds (lower case); id tokens carry them
    /// as `wids` when the app asks (see [`MockEntra::emit_wids`](crate::MockEntra::emit_wids)).
    pub directory_roles: Vec<String>,
}

/// How a token request proved the app's identity.
///
/// ```
/// use mock_entra::{CredentialKind, MockEntra};
/// use azure_cross_tenant::{ClientSecret, TenantCredentialProvider};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let entra = MockEntra::start().await;
/// let home = entra.add_tenant("provider.example");
/// let app = entra.register_app(&home, "saas");
/// let secret = entra.add_secret(&app);
/// let credential = ClientSecret::new(app.client_id(), secret).authority_host(entra.uri()).build()?;
/// credential.get_token(&home, &["https://vault.azure.net/.default"]).await?;
/// assert_eq!(entra.requests()[0].credential, CredentialKind::Secret);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CredentialKind {
    /// `client_secret` in the body.
    Secret,
    /// `client_assertion`.
    Assertion,
    /// Neither.
    None,
    /// A client secret in HTTP Basic (`client_secret_basic`).
    SecretBasic,
}

/// The endpoint a logged request went to.
///
/// ```
/// use mock_entra::{MockEndpoint, MockEntra};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let entra = MockEntra::start().await;
/// let home = entra.add_tenant("provider.example");
/// reqwest::get(format!("{}{home}/discovery/v2.0/keys", entra.uri())).await?;
/// assert_eq!(entra.request_count(MockEndpoint::Keys), 1);
/// assert_eq!(entra.requests_to(MockEndpoint::Keys)[0].status, 200);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MockEndpoint {
    /// `POST /{tenant}/oauth2/v2.0/token`.
    Token,
    /// `POST /{tenant}/oauth2/token` (v1).
    TokenV1,
    /// `GET /{tenant}/oauth2/v2.0/authorize`.
    Authorize,
    /// `GET /{tenant}/v2.0/adminconsent` and `/{tenant}/adminconsent`.
    AdminConsent,
    /// OpenID metadata (v1 and v2).
    Metadata,
    /// JWKS (v1 and v2).
    Keys,
    /// Instance discovery.
    InstanceDiscovery,
    /// IMDS and App Service managed identity endpoints.
    ManagedIdentity,
}

impl MockEndpoint {
    /// A token endpoint (v1 or v2)?
    pub fn is_token(self) -> bool {
        matches!(self, Self::Token | Self::TokenV1)
    }
}

/// One request the mock received. Secrets and assertions are never kept: their values
/// show as `<redacted>` in [`form`](Self::form) and [`query`](Self::query).
///
/// ```
/// use mock_entra::MockEntra;
/// use azure_cross_tenant::{ClientSecret, TenantCredentialProvider};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let entra = MockEntra::start().await;
/// let home = entra.add_tenant("provider.example");
/// let app = entra.register_app(&home, "saas");
/// let secret = entra.add_secret(&app);
/// let credential = ClientSecret::new(app.client_id(), secret.clone()).authority_host(entra.uri()).build()?;
/// credential.get_token(&home, &["https://vault.azure.net/.default"]).await?;
/// let logged = &entra.requests()[0];
/// assert!(logged.form.contains(&("client_secret".into(), "<redacted>".into())));
/// assert!(!format!("{logged:?}").contains(&secret));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The endpoint.
    pub endpoint: MockEndpoint,
    /// The tenant segment of the path, as sent.
    pub tenant: String,
    /// The tenant's GUID, when the mock knows the tenant.
    pub tenant_id: Option<String>,
    /// `client_id` (from the body, the query or HTTP Basic).
    pub client_id: Option<String>,
    /// `scope` (or v1 `resource`).
    pub scope: Option<String>,
    /// `grant_type`.
    pub grant_type: Option<String>,
    /// The `client-request-id` (header, query or body).
    pub client_request_id: Option<String>,
    /// How the app authenticated.
    pub credential: CredentialKind,
    /// The status the mock answered.
    pub status: u16,
    /// The form fields, secrets redacted.
    pub form: Vec<(String, String)>,
    /// The query parameters, secrets redacted.
    pub query: Vec<(String, String)>,
}

/// How [`MockEntra::rotate_keys_with`](crate::MockEntra::rotate_keys_with) rotates.
///
/// ```
/// use mock_entra::{MockEntra, RotationMode};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let entra = MockEntra::start().await;
/// let before = entra.current_kid();
/// entra.rotate_keys_with(RotationMode::Emergency);
/// assert_ne!(entra.current_kid(), before, "signs with the new key at once");
/// assert!(entra.published_kids().contains(&before), "the old key stays published");
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RotationMode {
    /// As Entra rolls keys over: the new key is published now and signs only after the
    /// rollover delay (on the mock's clock) or [`promote_key`](crate::MockEntra::promote_key).
    #[default]
    Rollover,
    /// An emergency: the new key signs at once (the previous one stays published).
    Emergency,
}

/// Holds a value (typically a `wiremock::MockServer`) and drops it on a plain thread.
///
/// wiremock's `MockServer` runs `futures::executor::block_on` on a tokio lock when
/// dropped; inside a tokio task that has spent its cooperative budget (a test that awaited
/// many ready things), that lock answers `Pending` forever and the drop spins. A fresh
/// thread has no budget to exhaust. Wrap your own wiremock servers this way
/// ([`MockResource`](crate::MockResource) needs none: it serves with hyper, as the mock).
///
/// ```
/// use mock_entra::DropOnThread;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let vault = DropOnThread::new(wiremock::MockServer::start().await);
/// let uri = vault.uri(); // derefs to the server
/// # let _ = uri;
/// # }
/// ```
#[derive(Debug)]
pub struct DropOnThread<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> DropOnThread<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Self(Some(value))
    }
}

impl<T: Send + 'static> std::ops::Deref for DropOnThread<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // Only `drop` takes the value out.
        self.0.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<T: Send + 'static> Drop for DropOnThread<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            let _ = std::thread::spawn(move || drop(value)).join();
        }
    }
}

//! [`AssertionSource`]s: a token file (AKS workload identity), a closure, any `azure_core`
//! `TokenCredential`, and a user-assigned managed identity.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::AsyncReadExt as _;

use super::assertion::{Assertion, AssertionSource};
use crate::error::Error;

/// Longest assertion file read; a service-account token is a few KiB.
const MAX_FILE: u64 = 64 * 1024;

/// Reads the assertion from a file for every exchange (kubelet rotates it; a stale one
/// gives AADSTS700024).
///
/// ```
/// use azure_cross_tenant::{FederatedAssertion, TokenFile};
///
/// let credential = FederatedAssertion::new(
///     "11111111-2222-3333-4444-555555555555",
///     TokenFile::new("/var/run/secrets/azure/tokens/azure-identity-token"),
/// )
/// .build()?;
/// # Ok::<(), azure_cross_tenant::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TokenFile {
    path: PathBuf,
}

impl TokenFile {
    /// A source reading `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

#[async_trait::async_trait]
impl AssertionSource for TokenFile {
    async fn assertion(&self) -> Result<Assertion, Error> {
        let unreadable = |why: &str, source: Option<std::io::Error>| Error::AssertionUnavailable {
            reason: format!("federated token file {}: {why}", self.path.display()),
            source: source.map(|e| Arc::new(e) as _),
        };
        let too_large = || unreadable(&format!("larger than {MAX_FILE} bytes"), None);
        let file = tokio::fs::File::open(&self.path)
            .await
            .map_err(|e| unreadable("cannot be read", Some(e)))?;
        let meta = file
            .metadata()
            .await
            .map_err(|e| unreadable("cannot be read", Some(e)))?;
        if meta.len() > MAX_FILE {
            return Err(too_large());
        }
        // The size in the metadata is not a bound: a pipe, a device or a file still being
        // written says 0 and can stream without end. Read one byte past the cap at most.
        let mut bytes = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| unreadable("cannot be read", Some(e)))?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(too_large());
        }
        let text = String::from_utf8(bytes).map_err(|_| unreadable("not UTF-8 text", None))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(unreadable("empty", None));
        }
        Ok(Assertion::from_jwt(token))
    }

    fn reusable(&self) -> bool {
        false
    }
}

/// A source calling a closure (any other IdP: GitHub OIDC, another cloud...); made by
/// [`assertion_fn`].
pub struct FnSource<F> {
    f: F,
}

impl<F> fmt::Debug for FnSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnSource")
    }
}

/// An [`AssertionSource`] from a closure returning a future.
///
/// ```
/// use azure_cross_tenant::{Assertion, FederatedAssertion, assertion_fn};
///
/// let source = assertion_fn(|| async {
///     // e.g. read the CI system's OIDC token
///     Ok(Assertion::from_jwt("eyJ..."))
/// });
/// let credential = FederatedAssertion::new("11111111-2222-3333-4444-555555555555", source).build()?;
/// # Ok::<(), azure_cross_tenant::Error>(())
/// ```
pub fn assertion_fn<F, Fut>(f: F) -> FnSource<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<Assertion, Error>> + Send,
{
    FnSource { f }
}

#[async_trait::async_trait]
impl<F, Fut> AssertionSource for FnSource<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<Assertion, Error>> + Send,
{
    async fn assertion(&self) -> Result<Assertion, Error> {
        (self.f)().await
    }
}

#[cfg(feature = "azure-core")]
pub use managed::{ManagedIdentity, TokenCredentialSource};

#[cfg(feature = "azure-core")]
mod managed {
    use std::time::{Duration, SystemTime};

    use azure_core::credentials::TokenCredential;
    use azure_core::http::{ClientOptions, Transport};

    use super::*;

    /// Connect timeout of the managed identity transport: the endpoint is on the host.
    const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

    /// Any `azure_core` `TokenCredential` as an assertion source: asks it for
    /// `{audience}/.default` (the token-exchange audience). Feature `azure-core`.
    ///
    /// Its requests go over the credential's own transport: for a managed identity, prefer
    /// [`FederatedAssertion::managed_identity`](crate::FederatedAssertion::managed_identity),
    /// whose transport never uses a proxy nor follows a redirect.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use azure_cross_tenant::{FederatedAssertion, TokenCredentialSource};
    /// use azure_identity::ManagedIdentityCredential;
    ///
    /// let credential = ManagedIdentityCredential::new(None)?;
    /// let source = TokenCredentialSource::new(credential, "api://AzureADTokenExchange");
    /// let federated = FederatedAssertion::new("11111111-2222-3333-4444-555555555555", source).build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Clone)]
    pub struct TokenCredentialSource {
        credential: Arc<dyn TokenCredential>,
        scope: String,
    }

    impl fmt::Debug for TokenCredentialSource {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("TokenCredentialSource")
                .field("scope", &self.scope)
                .finish_non_exhaustive()
        }
    }

    impl TokenCredentialSource {
        /// Tokens from `credential` for `audience` (e.g. `api://AzureADTokenExchange`).
        pub fn new(credential: Arc<dyn TokenCredential>, audience: &str) -> Self {
            Self {
                credential,
                scope: format!("{}/.default", audience.trim_end_matches('/')),
            }
        }
    }

    #[async_trait::async_trait]
    impl AssertionSource for TokenCredentialSource {
        async fn assertion(&self) -> Result<Assertion, Error> {
            let token = self
                .credential
                .get_token(&[self.scope.as_str()], None)
                .await
                .map_err(|e| Error::ManagedIdentityUnavailable {
                    source: Arc::new(e),
                })?;
            let expires_on = u64::try_from(token.expires_on.unix_timestamp())
                .ok()
                .and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s)));
            Ok(Assertion::new(token.token.secret(), expires_on))
        }
    }

    /// Which user-assigned managed identity provides the assertion. Only a user-assigned
    /// identity in the app's home tenant can back a federated credential (AADSTS700236).
    ///
    /// ```
    /// use azure_cross_tenant::ManagedIdentity;
    ///
    /// let identity = ManagedIdentity::UserAssigned {
    ///     client_id: "22222222-3333-4444-5555-666666666666".into(),
    /// };
    /// # let _ = identity;
    /// ```
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub enum ManagedIdentity {
        /// By its client id.
        UserAssigned {
            /// The identity's client id.
            client_id: String,
        },
        /// By its object (principal) id.
        UserAssignedObjectId {
            /// The identity's object id.
            object_id: String,
        },
        /// By its Azure resource id.
        UserAssignedResourceId {
            /// The identity's resource id.
            resource_id: String,
        },
    }

    impl ManagedIdentity {
        pub(crate) fn into_source(self, audience: &str) -> Result<TokenCredentialSource, Error> {
            Ok(TokenCredentialSource::new(self.credential()?, audience))
        }

        /// azure_identity's managed identity credential for this identity, over a transport
        /// that never uses a proxy nor follows a redirect.
        pub(crate) fn credential(self) -> Result<Arc<dyn TokenCredential>, Error> {
            use azure_identity::{
                ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
            };
            let id = match self {
                Self::UserAssigned { client_id } => UserAssignedId::ClientId(client_id),
                Self::UserAssignedObjectId { object_id } => UserAssignedId::ObjectId(object_id),
                Self::UserAssignedResourceId { resource_id } => {
                    UserAssignedId::ResourceId(resource_id)
                }
            };
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: Some(id),
                client_options: ClientOptions {
                    transport: Some(direct_transport()?),
                    ..Default::default()
                },
            };
            let credential = ManagedIdentityCredential::new(Some(options)).map_err(|e| {
                Error::ManagedIdentityUnavailable {
                    source: Arc::new(e),
                }
            })?;
            Ok(credential)
        }
    }

    /// The transport of managed identity requests: straight to the endpoint, never
    /// through a proxy (IMDS and App Service's endpoint are on the host, and a proxy
    /// would see the App Service identity header and the token in clear text), and
    /// never following a redirect.
    fn direct_transport() -> Result<Transport, Error> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| {
                Error::InvalidConfiguration(format!(
                    "could not build the managed identity HTTP client: {e}"
                ))
            })?;
        Ok(Transport::new(Arc::new(client)))
    }
}

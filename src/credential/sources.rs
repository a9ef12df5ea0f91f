//! [`AssertionSource`]s: a token file (AKS workload identity), a closure, any `azure_core`
//! `TokenCredential`, and a user-assigned managed identity.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;

use crate::credential::federated::{
    Assertion, AssertionSource, FederatedAssertion, FederatedAssertionBuilder,
};
use crate::error::Error;

/// Longest assertion file read; a service-account token is a few KiB.
const MAX_FILE: u64 = 64 * 1024;

/// Reads the assertion from a file for every exchange (kubelet rotates it; a stale one
/// gives AADSTS700024).
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
        let unreadable = |why: String| {
            Error::AssertionUnavailable(format!(
                "federated token file {}: {why}",
                self.path.display()
            ))
        };
        let meta = tokio::fs::metadata(&self.path)
            .await
            .map_err(|e| unreadable(e.to_string()))?;
        if meta.len() > MAX_FILE {
            return Err(unreadable(format!("larger than {MAX_FILE} bytes")));
        }
        let text = tokio::fs::read_to_string(&self.path)
            .await
            .map_err(|e| unreadable(e.to_string()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(unreadable("empty".into()));
        }
        Ok(Assertion::from_jwt(token))
    }

    fn reusable(&self) -> bool {
        false
    }
}

/// AKS workload identity, configured from the environment the webhook injects.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct WorkloadIdentity;

impl WorkloadIdentity {
    /// A [`FederatedAssertion`] builder from `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE`
    /// and (optional) `AZURE_AUTHORITY_HOST`. `AZURE_TENANT_ID` names the app's home
    /// tenant and is not needed: each call names its customer tenant.
    pub fn from_env() -> Result<FederatedAssertionBuilder, Error> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| {
                Error::InvalidConfiguration(format!(
                    "{name} is not set; is the workload identity webhook enabled for this pod?"
                ))
            })
        };
        let client_id = var("AZURE_CLIENT_ID")?;
        let file = var("AZURE_FEDERATED_TOKEN_FILE")?;
        let mut builder = FederatedAssertion::new(client_id, TokenFile::new(file));
        if let Ok(host) = std::env::var("AZURE_AUTHORITY_HOST") {
            let url = url::Url::parse(&host).map_err(|e| {
                Error::InvalidConfiguration(format!("AZURE_AUTHORITY_HOST is not a URL: {e}"))
            })?;
            builder = builder.authority_host(url);
        }
        Ok(builder)
    }
}

/// A source calling a closure (any other IdP: GitHub OIDC, another cloud...).
pub struct FnSource<F> {
    f: F,
}

impl<F> fmt::Debug for FnSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnSource")
    }
}

/// An [`AssertionSource`] from a closure returning a future.
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
pub use azure::{ManagedIdentity, TokenCredentialSource};

#[cfg(feature = "azure-core")]
mod azure {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use azure_core::credentials::TokenCredential;

    use super::*;

    /// Any `azure_core` `TokenCredential` as an assertion source: asks it for
    /// `{audience}/.default` (the token-exchange audience). Feature `azure-core`.
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
                .map_err(|e| Error::ManagedIdentityUnavailable(format!("{e}")))?;
            let expires_on = u64::try_from(token.expires_on.unix_timestamp())
                .ok()
                .and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s)));
            Ok(Assertion::new(token.token.secret(), expires_on))
        }
    }

    /// Which user-assigned managed identity provides the assertion. Only a user-assigned
    /// identity in the app's home tenant can back a federated credential (AADSTS700236).
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
                ..Default::default()
            };
            let credential = ManagedIdentityCredential::new(Some(options))
                .map_err(|e| Error::ManagedIdentityUnavailable(format!("{e}")))?;
            Ok(TokenCredentialSource::new(credential, audience))
        }
    }
}

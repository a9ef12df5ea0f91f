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
    use std::sync::Mutex;
    use std::time::{Duration, SystemTime};

    use azure_core::credentials::TokenCredential;
    use azure_core::http::{AsyncRawResponse, ClientOptions, HttpClient, Request, Transport};

    use super::*;

    /// Connect timeout of the managed identity transport: the endpoint is on the host.
    const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

    /// Any `azure_core` `TokenCredential` as an assertion source: asks it for
    /// `{audience}/.default` (the token-exchange audience). Feature `azure-core`.
    ///
    /// Its requests go over the credential's own transport: for a managed identity, prefer
    /// [`FederatedAssertion::managed_identity`](crate::FederatedAssertion::managed_identity),
    /// whose transport never uses a proxy nor follows a redirect, reads at most 1 MiB of
    /// an answer, and which, after Entra refused an assertion as expired (AADSTS700024),
    /// asks the identity endpoint anew: a credential given here keeps its tokens (as
    /// azure_identity's do, until 5 minutes before their expiry) and may answer that retry
    /// with the same token.
    ///
    /// A failure is [`Error::ManagedIdentityUnavailable`] whose cause says what the
    /// credential said, escaped and cut to about 1 KiB (an endpoint's error page can be
    /// megabytes long).
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
        /// The credential asked; replaced by a new one after a fresh fetch (see `renew`).
        credential: Arc<Mutex<Arc<dyn TokenCredential>>>,
        /// Builds a new credential, with an empty token cache, for a fresh assertion.
        renew: Option<Arc<Renew>>,
        scope: String,
    }

    type Renew = dyn Fn() -> Result<Arc<dyn TokenCredential>, Error> + Send + Sync;

    impl fmt::Debug for TokenCredentialSource {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("TokenCredentialSource")
                .field("scope", &self.scope)
                .field("renewable", &self.renew.is_some())
                .finish_non_exhaustive()
        }
    }

    impl TokenCredentialSource {
        /// Tokens from `credential` for `audience` (e.g. `api://AzureADTokenExchange`).
        pub fn new(credential: Arc<dyn TokenCredential>, audience: &str) -> Self {
            Self {
                credential: Arc::new(Mutex::new(credential)),
                renew: None,
                scope: format!("{}/.default", audience.trim_end_matches('/')),
            }
        }

        /// A source whose fresh assertions come from a new credential built by `renew`
        /// (its token cache empty), which then replaces the one in use.
        fn renewable(renew: Arc<Renew>, audience: &str) -> Result<Self, Error> {
            let mut source = Self::new(renew()?, audience);
            source.renew = Some(renew);
            Ok(source)
        }

        fn current(&self) -> Arc<dyn TokenCredential> {
            self.credential
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        }

        async fn ask(&self, credential: &dyn TokenCredential) -> Result<Assertion, Error> {
            let token = credential
                .get_token(&[self.scope.as_str()], None)
                .await
                .map_err(|e| Error::ManagedIdentityUnavailable {
                    source: Arc::new(Unavailable::from_core(&e)),
                })?;
            let expires_on = u64::try_from(token.expires_on.unix_timestamp())
                .ok()
                .and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s)));
            Ok(Assertion::new(token.token.secret(), expires_on))
        }
    }

    #[async_trait::async_trait]
    impl AssertionSource for TokenCredentialSource {
        async fn assertion(&self) -> Result<Assertion, Error> {
            let credential = self.current();
            self.ask(&*credential).await
        }

        /// A new credential's first token (none kept to answer from) when this source can
        /// build one (a managed identity); otherwise the credential is asked again.
        async fn fresh_assertion(&self) -> Result<Assertion, Error> {
            let Some(renew) = &self.renew else {
                return self.assertion().await;
            };
            let credential = renew()?;
            let assertion = self.ask(&*credential).await?;
            *self.credential.lock().unwrap_or_else(|p| p.into_inner()) = credential;
            Ok(assertion)
        }
    }

    /// Longest excerpt of a credential's failure an error keeps.
    const MAX_EXCERPT: usize = 512;

    /// What a credential (or the identity endpoint through it) said when it gave no token:
    /// the HTTP status if there was one, and an escaped excerpt of its messages.
    /// It replaces azure_core's error, which carries the whole answer (twice, and a
    /// backtrace) and whose causes repeat it again.
    #[derive(Debug)]
    struct Unavailable {
        status: Option<u16>,
        excerpt: String,
    }

    impl Unavailable {
        fn from_core(e: &azure_core::Error) -> Self {
            let mut status = None;
            let mut excerpt = String::new();
            let mut level: Option<&(dyn std::error::Error + 'static)> = Some(e);
            // Bounded: a wrapping chain is a few levels deep.
            for _ in 0..8 {
                let Some(current) = level else { break };
                if let Some(core) = current.downcast_ref::<azure_core::Error>()
                    && let azure_core::error::ErrorKind::HttpResponse { status: s, .. } =
                        core.kind()
                {
                    status = status.or(Some(u16::from(*s)));
                }
                // Each level's own words, once: wrappers repeat what they wrap.
                let said = crate::error::echo_within(&current.to_string(), MAX_EXCERPT);
                let head: String = said.chars().take(64).collect();
                if !excerpt.contains(&head) {
                    if !excerpt.is_empty() {
                        excerpt.push_str(": ");
                    }
                    excerpt.push_str(&said);
                }
                level = current.source();
            }
            Self {
                status,
                excerpt: crate::error::echo_within(&excerpt, 2 * MAX_EXCERPT),
            }
        }
    }

    impl fmt::Display for Unavailable {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self.status {
                Some(status) => write!(f, "HTTP {status}: {}", self.excerpt),
                None => f.write_str(&self.excerpt),
            }
        }
    }

    impl std::error::Error for Unavailable {}

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
        /// The assertion source: this identity's credential, and a new one (its token cache
        /// empty) for a fresh assertion, all over one transport.
        pub(crate) fn into_source(self, audience: &str) -> Result<TokenCredentialSource, Error> {
            let (id, transport) = (self.user_assigned_id(), direct_transport()?);
            let renew = move || identity_credential(id.clone(), transport.clone());
            TokenCredentialSource::renewable(Arc::new(renew), audience)
        }

        /// azure_identity's managed identity credential for this identity, over a transport
        /// that never uses a proxy, never follows a redirect and reads at most 1 MiB of an
        /// answer (Redis's Entra authentication and `KeyVaultCertificate` use it).
        pub(crate) fn credential(self) -> Result<Arc<dyn TokenCredential>, Error> {
            identity_credential(self.user_assigned_id(), direct_transport()?)
        }

        fn user_assigned_id(self) -> azure_identity::UserAssignedId {
            use azure_identity::UserAssignedId;
            match self {
                Self::UserAssigned { client_id } => UserAssignedId::ClientId(client_id),
                Self::UserAssignedObjectId { object_id } => UserAssignedId::ObjectId(object_id),
                Self::UserAssignedResourceId { resource_id } => {
                    UserAssignedId::ResourceId(resource_id)
                }
            }
        }
    }

    fn identity_credential(
        id: azure_identity::UserAssignedId,
        transport: Transport,
    ) -> Result<Arc<dyn TokenCredential>, Error> {
        use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions};
        let options = ManagedIdentityCredentialOptions {
            user_assigned_id: Some(id),
            client_options: ClientOptions {
                transport: Some(transport),
                ..Default::default()
            },
        };
        ManagedIdentityCredential::new(Some(options))
            .map(|c| c as Arc<dyn TokenCredential>)
            .map_err(|e| Error::ManagedIdentityUnavailable {
                source: Arc::new(Unavailable::from_core(&e)),
            })
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
        Ok(Transport::new(Arc::new(Capped(client))))
    }

    /// An HTTP client that reads at most [`MAX_BODY`](crate::http::MAX_BODY) of an answer,
    /// as every other answer this crate reads: an identity endpoint answering without end
    /// is refused at the cap instead of read into memory until the assertion timeout.
    #[derive(Debug)]
    struct Capped(reqwest::Client);

    #[async_trait::async_trait]
    impl HttpClient for Capped {
        async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
            use futures_util::StreamExt as _;
            let max = crate::http::MAX_BODY;
            let (status, headers, mut body) = HttpClient::execute_request(&self.0, request)
                .await?
                .deconstruct();
            // Not `Io`: azure_core's retry policy would ask again, for the same answer.
            let too_large = || {
                azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Other,
                    format!(
                        "the managed identity endpoint answered HTTP {} with more than 1 MiB; it was refused",
                        u16::from(status)
                    ),
                )
            };
            let declared = headers
                .get_optional_str(&azure_core::http::headers::CONTENT_LENGTH)
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > max as u64) {
                return Err(too_large());
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                if bytes.len() + chunk.len() > max {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(AsyncRawResponse::from_bytes(status, headers, bytes))
        }
    }
}

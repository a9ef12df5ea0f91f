//! [`Assertion`] and [`AssertionSource`]: what a federated credential presents, and where
//! it comes from. The sources and the federated credential both build on these.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::token::Secret;

/// A token from another identity provider, presented as the app's `client_assertion`.
///
/// `Debug` shows `<redacted>` for the token.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use azure_cross_tenant::Assertion;
///
/// let expires = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let assertion = Assertion::new("eyJ...", Some(expires));
/// assert_eq!(assertion.expires_on(), Some(expires));
/// assert!(!format!("{assertion:?}").contains("eyJ"));
/// ```
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

    /// The assertion's text, for a `client_assertion` form field. Keep it out of logs.
    pub fn secret(&self) -> &str {
        self.token.expose()
    }

    pub(crate) fn shared_secret(&self) -> &Secret {
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
/// A source may hang (an identity endpoint that accepts a connection and never answers):
/// the federated credential bounds every fetch with its own timeout, so an implementation
/// need not, and one slow fetch is shared by every tenant waiting for it rather than
/// repeated.
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

    /// An assertion other than the last one given, asked for when Entra refused that one
    /// as expired (AADSTS700024). A source that keeps what it fetched (an `azure_core`
    /// credential keeps its tokens until near their expiry) must fetch anew here rather
    /// than answer from what it keeps; the default is [`assertion`](Self::assertion).
    async fn fresh_assertion(&self) -> Result<Assertion, Error> {
        self.assertion().await
    }

    /// Whether one assertion may be reused for several exchanges until near its expiry
    /// (default true). A source whose token can be replaced under it at any time (a
    /// kubelet-rotated file) returns false, so it is read for every exchange.
    fn reusable(&self) -> bool {
        true
    }
}

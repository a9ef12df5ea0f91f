//! [`MockError`]: why the mock refused a setup step (the control API answers it as a 400).

/// Why the mock refused to set something up, or a browser step failed.
///
/// The in-process API panics with this message (a test set itself up wrongly); the control
/// API answers it as HTTP 400 with `{"error": "...", "message": "..."}`.
///
/// ```
/// use azure_cross_tenant::testing::{MockEntra, MockError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let entra = MockEntra::start().await;
/// let err = entra.apply_scenario(&serde_json::json!({"tenants": {"a": {"domainz": []}}})).unwrap_err();
/// assert!(matches!(err, MockError::Invalid(_)));
/// assert!(err.to_string().contains("domainz"));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MockError {
    /// No tenant has this GUID or domain.
    #[error("unknown tenant {0:?}; add it first")]
    UnknownTenant(String),
    /// No app has this client id (or scenario name).
    #[error("unknown app {0:?}; register it first")]
    UnknownApp(String),
    /// No managed identity has this client id (or scenario name).
    #[error("unknown managed identity {0:?}")]
    UnknownManagedIdentity(String),
    /// No user has this object id or UPN.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// The app has no service principal in the tenant.
    #[error("app {client_id} is not consented in tenant {tenant}; consent first")]
    NotConsented {
        /// The tenant.
        tenant: String,
        /// The app.
        client_id: String,
    },
    /// Another tenant (or user) already has this name.
    #[error("{0} is taken")]
    Taken(String),
    /// The input is malformed or not allowed.
    #[error("{0}")]
    Invalid(String),
    /// A browser step ([`MockEntra::follow`](crate::testing::MockEntra::follow)) got an
    /// answer that sends the browser nowhere.
    #[error("the mock answered HTTP {status}: {body}")]
    Http {
        /// The status.
        status: u16,
        /// The body (Entra's error JSON).
        body: String,
    },
}

impl MockError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    /// The short code the control API puts in `error`.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::UnknownTenant(_) => "unknown_tenant",
            Self::UnknownApp(_) => "unknown_app",
            Self::UnknownManagedIdentity(_) => "unknown_managed_identity",
            Self::UnknownUser(_) => "unknown_user",
            Self::NotConsented { .. } => "not_consented",
            Self::Taken(_) => "conflict",
            Self::Invalid(_) => "invalid_request",
            Self::Http { .. } => "http",
        }
    }
}

/// Unwraps a setup step of the in-process API: its misuse is a bug in the test.
pub(crate) fn or_panic<T>(result: Result<T, MockError>) -> T {
    result.unwrap_or_else(|e| panic!("MockEntra: {e}"))
}

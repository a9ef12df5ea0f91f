//! [`MockError`]: why the mock refused a setup step (the control API answers it as a 400).

/// Why the mock refused to set something up, or a browser step failed.
///
/// The in-process API panics with this message (a test set itself up wrongly); the control
/// API answers it as HTTP 400 with `{"error": "...", "message": "..."}`.
///
/// ```
/// use mock_entra::{MockEntra, MockError};
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
    /// A browser step ([`MockEntra::follow`](crate::MockEntra::follow)) reached one of the
    /// mock's pages, where a person chooses: the sign-in page (nobody is signed in) or the
    /// consent page. Tests without a browser preset the user instead
    /// ([`MockEntra::sign_in`](crate::MockEntra::sign_in), or `login_hint`).
    #[error(
        "the mock shows its {page} page, where a person chooses; without a browser, preset the user first (MockEntra::sign_in, or login_hint in the URL)"
    )]
    Page {
        /// Which page: `sign-in` or `consent`.
        page: String,
        /// The page's HTML.
        body: String,
    },
    /// A browser step ([`MockEntra::follow`](crate::MockEntra::follow)) got an
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
            Self::Page { .. } => "page",
        }
    }
}

/// Unwraps a setup step of the in-process API: its misuse is a bug in the test.
pub(crate) fn or_panic<T>(result: Result<T, MockError>) -> T {
    result.unwrap_or_else(|e| panic!("MockEntra: {e}"))
}

/// Untrusted input as an error message may repeat it: at most 64 characters as `{:?}`
/// prints them (escapes count), then `…`, so a hostile request cannot grow a message.
pub(crate) fn echo(input: &str) -> String {
    const BUDGET: usize = 64;
    let mut used = 0;
    let mut out = String::new();
    for c in input.chars() {
        used += c.escape_debug().count();
        if used > BUDGET {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::echo;

    #[test]
    fn echo_cuts_long_and_escape_heavy_input() {
        assert_eq!(echo("tenant.example"), "tenant.example");
        let long = "a".repeat(100);
        assert_eq!(echo(&long), format!("{}…", "a".repeat(64)));
        // Each NUL prints as `\0` (two characters): 32 fit.
        let nuls = "\0".repeat(100);
        assert_eq!(echo(&nuls).chars().count(), 33);
    }
}

//! [`Error`]: every way getting a token can fail, classified by what the operator does next.
//!
//! Entra's answers are classified on `error_codes` (never on `error_description` text)
//! into variants a caller can branch on: [`Error::NotConsented`] means "mark the tenant
//! as needing consent and stop retrying it", [`Error::Throttled`] carries `Retry-After`,
//! and so on. Each `Display` is one line: what happened, what to do, and the ids Entra
//! support asks for (AADSTS code, trace id, correlation id). No error ever holds a
//! secret, an assertion or a token.

use std::sync::Arc;
use std::time::Duration;

use crate::tenant::TenantId;

mod detail;
mod echo;
mod entra;
mod tenant;
mod validation;

pub use detail::{FederationField, Mismatch, TransportKind};
pub(crate) use echo::{echo, echo_within};
pub use entra::EntraError;
pub(crate) use entra::is_transient_code;
pub use validation::{BearerError, ValidationError, ValidationErrorClass};

/// An error from getting or checking a token.
///
/// ```
/// use azure_cross_tenant::{Error, TenantId};
///
/// let err = "common".parse::<TenantId>().unwrap_err();
/// assert!(matches!(err, Error::InvalidTenant { .. }));
/// assert!(!err.is_retryable());
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The tenant id is not a GUID or DNS domain, or is a multi-tenant alias. Nothing was sent.
    #[error("invalid tenant id {input:?}: {reason}")]
    InvalidTenant {
        /// The rejected input (cut to 64 characters).
        input: String,
        /// Why it was rejected and what to pass instead.
        reason: &'static str,
    },

    /// The scopes are not one `{resource}/.default`. Nothing was sent.
    #[error("invalid scopes {scopes:?}: {reason}")]
    InvalidScope {
        /// The rejected scopes, space-separated (cut to 64 characters).
        scopes: String,
        /// Why they were rejected and what to pass instead.
        reason: Box<str>,
    },

    /// The credential or cache was configured wrongly (bad client id, plain-http authority,
    /// zero capacity...). Nothing was sent; fix the configuration.
    #[error("invalid configuration: {0}")]
    InvalidConfiguration(String),

    /// The app has no service principal in the tenant (AADSTS700016, 7000229): the customer
    /// has not consented, revoked consent, or the tenant or client id is wrong. Retrying does
    /// not help; mark the tenant as needing consent and send its admin to `consent_url`.
    /// Right after consent, replication can make this last a few minutes.
    #[error("app {} is not consented in tenant {}: a customer admin must grant admin consent at {consent_url} (or check the tenant id){}", .entra.client_id, .entra.tenant, .entra.context())]
    NotConsented {
        /// Entra's answer.
        entra: Box<EntraError>,
        /// The admin consent URL for this tenant and app.
        consent_url: String,
    },

    /// The client secret is wrong (AADSTS7000215); often the secret's *id* was pasted
    /// instead of its *value*.
    #[error("client secret of app {} was rejected by tenant {}: use the secret's value (not its id) or rotate it{}", .0.client_id, .0.tenant, .0.context())]
    InvalidClientSecret(Box<EntraError>),

    /// The client secret has expired (AADSTS7000222): rotate it.
    #[error("client secret of app {} has expired: create a new secret on the app registration and deploy it{}", .0.client_id, .0.context())]
    ClientSecretExpired(Box<EntraError>),

    /// The client assertion was refused: bad signature, or the certificate is not registered
    /// on the app (AADSTS700027).
    #[error("client assertion of app {} was rejected by tenant {}: upload the certificate to the app registration, or check the signing key{}", .0.client_id, .0.tenant, .0.context())]
    InvalidClientAssertion(Box<EntraError>),

    /// The assertion is outside its valid time window (AADSTS700024): the clock is off, or a
    /// federated token file was stale. One retry with a fresh assertion may succeed.
    #[error("client assertion of app {} is outside its validity window: check the clock, re-read the federated token{}", .0.client_id, .0.context())]
    AssertionExpired(Box<EntraError>),

    /// No federated identity credential matched yet (AADSTS70021). Right after a FIC is
    /// created this lasts minutes while it replicates; retry later, then check the FIC.
    #[error("no federated identity credential of app {} matches yet: if it was just created wait a few minutes, else check its issuer, subject and audience{}", .0.client_id, .0.context())]
    FederationPending(Box<EntraError>),

    /// A federated identity credential exists but does not match the assertion's `field`
    /// (AADSTS700211 issuer, 700212 audience, 700213 subject).
    #[error("no federated identity credential of app {} matches the assertion's {field} ({}): set the FIC's {field} to the exact value the assertion carries{}", .entra.client_id, .entra.description, .entra.context())]
    FederationMismatch {
        /// Which claim did not match.
        field: FederationField,
        /// Entra's answer (its description names the value the assertion carried).
        entra: Box<EntraError>,
    },

    /// The app has no federated identity credentials at all (AADSTS70025).
    #[error("app {} has no federated identity credential: add one that trusts the assertion's issuer and subject{}", .0.client_id, .0.context())]
    NoFederatedCredentials(Box<EntraError>),

    /// The assertion came from a managed identity outside the app's home tenant (AADSTS700236).
    #[error("the federated assertion for app {} comes from another tenant: use a user-assigned managed identity in the app's home tenant{}", .0.client_id, .0.context())]
    FederatedIdentityInWrongTenant(Box<EntraError>),

    /// The assertion's audience or issuer is not allowed for federation (AADSTS700227,
    /// 700222, 700226).
    #[error("the federated assertion for app {} was refused: {}{}", .0.client_id, .0.advice(), .0.context())]
    AssertionRejected(Box<EntraError>),

    /// No managed identity endpoint answered (not on Azure, identity not assigned to this
    /// resource, wrong client id) or it refused the token. The endpoint's answer is the
    /// [`source`](std::error::Error::source).
    #[error(
        "the managed identity gave no assertion: check that the user-assigned identity is assigned to this resource, that its id is right and that this runs on Azure (see the cause)"
    )]
    ManagedIdentityUnavailable {
        /// What the managed identity endpoint (or `azure_identity`) said.
        #[source]
        source: Cause,
    },

    /// The federated assertion could not be read (token file missing or empty, custom
    /// source failed).
    #[error("no federated assertion: {reason}")]
    AssertionUnavailable {
        /// What went wrong and where (a file path, a source's own words).
        reason: String,
        /// The underlying failure, if there was one.
        #[source]
        source: Option<Cause>,
    },

    /// The assertion source gave no assertion in time: the managed identity endpoint or a
    /// custom source hung. The fetch runs on, bounded by its own timeout, for the calls
    /// after this one; other tenants are not held up by it.
    #[error(
        "the federated assertion source gave no assertion within {} ms: check the managed identity endpoint (IMDS, App Service) or the custom source; other tenants are not held up", .after.as_millis()
    )]
    AssertionTimedOut {
        /// How long this call waited.
        after: Duration,
    },

    /// Key Vault gave no signature for the client assertion (a `KeyVaultCertificate`,
    /// feature `azure-core`):
    /// the identity has no permission (403), the vault or certificate does not exist
    /// (404), Key Vault throttles (429) or is down, or did not answer within the
    /// credential's timeout. `reason` says which and what to do.
    #[error("Key Vault gave no signature{}: {reason}", .status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    KeyVault {
        /// Key Vault's HTTP status, if it answered.
        status: Option<u16>,
        /// The vault (scheme, host and port) and certificate, what Key Vault said (its
        /// error code and message) and what to do.
        reason: Box<str>,
    },

    /// The tenant does not exist in this cloud (AADSTS90002, 900023): wrong id, wrong cloud,
    /// or deleted.
    #[error("tenant {} was not found: fix the tenant id or the cloud, or offboard the tenant if it was deleted{}", .0.tenant, .0.context())]
    TenantNotFound(Box<EntraError>),

    /// The resource asked for does not exist or is not provisioned in the tenant
    /// (AADSTS500011, 650052).
    #[error("the resource is not available to app {} in tenant {}: {}{}", .0.client_id, .0.tenant, .0.advice(), .0.context())]
    ResourceNotFound(Box<EntraError>),

    /// The app is disabled in the tenant (AADSTS7000112, 70001).
    #[error("app {} is disabled in tenant {}: a customer admin must re-enable the enterprise application{}", .0.client_id, .0.tenant, .0.context())]
    AppDisabled(Box<EntraError>),

    /// A Conditional Access policy for workload identities blocked the request (AADSTS53003).
    #[error("a conditional access policy in tenant {} blocked app {}: the customer admin must review the policy or allow the provider's egress IPs{}", .0.tenant, .0.client_id, .0.context())]
    BlockedByConditionalAccess(Box<EntraError>),

    /// Entra throttled this tenant and scope (HTTP 429, AADSTS90055, 50196). Requests for
    /// it fail fast until `retry_after` has passed; other tenants are not affected.
    #[error("tenant {} throttled app {}: {}; {}{}", .entra.tenant, .entra.client_id, .entra.advice(), retry_after_text(.retry_after), .entra.context())]
    Throttled {
        /// How long Entra asked to wait (capped at one hour), if it said.
        retry_after: Option<Duration>,
        /// Entra's answer.
        entra: Box<EntraError>,
    },

    /// Any other error Entra returned; `Display` carries the advice for its code.
    #[error("tenant {} refused a token to app {} ({}): {}{}", .0.tenant, .0.client_id, .0.summary(), .0.advice(), .0.context())]
    Authority(Box<EntraError>),

    /// The request did not reach Entra or its answer did not arrive (connect error, timeout).
    #[error(
        "could not reach the token endpoint of tenant {tenant} ({kind}): check network, proxy and DNS"
    )]
    Transport {
        /// The tenant asked.
        tenant: TenantId,
        /// What kind of failure.
        kind: TransportKind,
        /// The cause.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },

    /// The token endpoint answered something that is not Entra's JSON (non-JSON, truncated,
    /// oversized or wrongly typed). Often a proxy or a wrong authority host.
    #[error(
        "tenant {tenant} answered HTTP {status} with a malformed body ({reason}): check the authority host and any proxy in between"
    )]
    MalformedResponse {
        /// The tenant asked.
        tenant: TenantId,
        /// The HTTP status of the answer.
        status: u16,
        /// What was wrong with it.
        reason: Box<str>,
    },

    /// The token endpoint answered with a redirect, or its answer came from another URL
    /// than the one asked. A token endpoint never redirects: the authority host, or
    /// something in between, is wrong. The redirect was not followed with the request's
    /// credential, whatever HTTP client was configured.
    #[error(
        "the token endpoint of tenant {tenant} redirected to {to}; it was refused and no credential was sent there: check the authority host and any proxy in between"
    )]
    Redirected {
        /// The tenant asked.
        tenant: TenantId,
        /// Where it pointed: scheme, host and port only.
        to: Box<str>,
    },

    /// A token was issued, but not for what was asked: its `claim` names another tenant or
    /// client, is missing, or the token looks like a JWT and does not decode. It was
    /// discarded and not cached. Report it: it means a mix-up upstream.
    #[error(
        "a token asked from tenant {tenant} {}; it was discarded and not cached: report it, it means a mix-up upstream",
        .mismatch.describe(.claim)
    )]
    UnexpectedToken {
        /// The tenant asked.
        tenant: TenantId,
        /// The claim that did not match (`tid`, `appid`, `azp`), or `token` when the
        /// token has a JWT's three parts that do not decode.
        claim: &'static str,
        /// How it differed.
        mismatch: Box<Mismatch>,
    },

    /// A token was obtained but failed validation against the caller's
    /// [`Expectations`](crate::Expectations); it was discarded.
    #[error("the token from tenant {tenant} failed validation: {source}")]
    Validation {
        /// The tenant asked.
        tenant: TenantId,
        /// Which check failed.
        #[source]
        source: Box<ValidationError>,
    },

    /// A custom [`TenantCredentialProvider`](crate::TenantCredentialProvider) failed.
    #[error("credential provider failed for tenant {tenant}: {source}")]
    Provider {
        /// The tenant asked.
        tenant: TenantId,
        /// The cause.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },

    /// The database behind the tenant registry or the shared onboarding store failed
    /// (unreachable, timed out, a transaction that could not be serialized, a schema or
    /// permission problem). A write that failed left nothing half-written: each runs in
    /// one transaction. [`is_retryable`](Error::is_retryable) says whether trying again
    /// shortly may succeed (connection, timeout, lock or serialization failures).
    #[error("database failed to {operation}: {source}; {}", database_advice(*.retryable))]
    Database {
        /// What was being done, and in which store (`link a tenant in the tenant
        /// registry`, ...).
        operation: &'static str,
        /// Whether the failure is passing (connection, timeout, lock, serialization).
        retryable: bool,
        /// The driver's error.
        #[source]
        source: Cause,
    },

    /// A state this crate believes impossible. Please file a bug with the message.
    #[error("internal error: {0}; please file a bug")]
    Internal(&'static str),
}

fn database_advice(retryable: bool) -> &'static str {
    if retryable {
        "nothing was written; retry shortly, and check the database's availability if it repeats"
    } else {
        "nothing was written; check the database URL, its schema (migrations) and permissions"
    }
}

/// A foreign error kept as the cause of ours; an `Arc` so [`Error`] stays `Clone`.
pub(crate) type Cause = Arc<dyn std::error::Error + Send + Sync>;

fn retry_after_text(d: &Option<Duration>) -> String {
    match d {
        Some(d) => format!(
            "retry after {} s; other tenants are unaffected",
            d.as_secs()
        ),
        None => "back off before retrying; other tenants are unaffected".into(),
    }
}

impl Error {
    /// A token whose `claim` says `found` where `expected` was asked for.
    pub(crate) fn unexpected_claim(
        tenant: &TenantId,
        claim: &'static str,
        expected: &str,
        found: &str,
    ) -> Self {
        Self::UnexpectedToken {
            tenant: tenant.clone(),
            claim,
            mismatch: Box::new(Mismatch::Other {
                expected: expected.to_owned(),
                found: echo(found),
            }),
        }
    }
}

/// Entra's answer in `$error`, for the variants that carry one: one list for
/// [`Error::entra`] and its `&mut` twin, so a new variant cannot reach one and not the
/// other.
macro_rules! entra_of {
    ($error:expr) => {
        match $error {
            Error::NotConsented { entra, .. }
            | Error::FederationMismatch { entra, .. }
            | Error::Throttled { entra, .. } => Some(entra),
            Error::InvalidClientSecret(e)
            | Error::ClientSecretExpired(e)
            | Error::InvalidClientAssertion(e)
            | Error::AssertionExpired(e)
            | Error::FederationPending(e)
            | Error::NoFederatedCredentials(e)
            | Error::FederatedIdentityInWrongTenant(e)
            | Error::AssertionRejected(e)
            | Error::TenantNotFound(e)
            | Error::ResourceNotFound(e)
            | Error::AppDisabled(e)
            | Error::BlockedByConditionalAccess(e)
            | Error::Authority(e) => Some(e),
            _ => None,
        }
    };
}

impl Error {
    /// Entra's answer, for the variants that carry one.
    pub fn entra(&self) -> Option<&EntraError> {
        entra_of!(self)
    }

    /// The AADSTS code Entra answered with, if any.
    pub fn aadsts_code(&self) -> Option<u32> {
        self.entra().and_then(EntraError::code)
    }

    /// Entra's trace id, if any: quote it in a support request.
    pub fn trace_id(&self) -> Option<&str> {
        self.entra().and_then(|e| e.trace_id.as_deref())
    }

    /// When Entra gave this answer, if it was served from a cache's memory of it rather
    /// than just received: [`Cached`](crate::Cached) remembers a tenant's permanent
    /// refusal for a short window (see
    /// [`CacheOptions::negative_ttl`](crate::CacheOptions::negative_ttl)). `None` for an
    /// answer Entra just gave, and for every other error.
    ///
    /// ```
    /// use azure_cross_tenant::{Error, TenantId};
    ///
    /// let err = "common".parse::<TenantId>().unwrap_err();
    /// assert_eq!(err.remembered_at(), None);
    /// ```
    pub fn remembered_at(&self) -> Option<std::time::SystemTime> {
        self.entra().and_then(|e| e.remembered_at)
    }

    /// Whether this is a tenant's permanent answer about the app: not consented, tenant
    /// not found, app disabled in the tenant, resource not available there. Nothing but
    /// a person acting in that tenant changes it, and it says nothing about other
    /// tenants; [`Cached`](crate::Cached) remembers such answers for a short window.
    /// Throttling, 5xx, transport errors and the app's own credential problems are not.
    pub fn is_tenant_refusal(&self) -> bool {
        match self {
            Self::NotConsented { entra, .. } => entra.status < 500,
            Self::TenantNotFound(e) | Self::AppDisabled(e) | Self::ResourceNotFound(e) => {
                e.status < 500
            }
            _ => false,
        }
    }

    /// The same error, marked as remembered from an answer Entra gave at `at`.
    pub(crate) fn remembered(mut self, at: std::time::SystemTime) -> Self {
        if let Some(entra) = self.entra_mut() {
            entra.remembered_at = Some(at);
        }
        self
    }

    fn entra_mut(&mut self) -> Option<&mut EntraError> {
        entra_of!(self)
    }

    /// The correlation id (`client-request-id`) of the failed request, if known.
    pub fn correlation_id(&self) -> Option<&str> {
        self.entra().and_then(|e| e.correlation_id.as_deref())
    }

    /// The admin consent URL, for [`Error::NotConsented`].
    pub fn consent_url(&self) -> Option<&str> {
        match self {
            Self::NotConsented { consent_url, .. } => Some(consent_url),
            _ => None,
        }
    }

    /// How long to wait before asking again, for [`Error::Throttled`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether asking again later may succeed without anyone changing anything.
    ///
    /// True for throttling, timeouts and connection failures, Entra's 5xx and transient
    /// codes, and federation still replicating. False for everything a person must fix
    /// (consent, secrets, certificates, tenant ids, policies).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Throttled { .. }
            | Self::Transport { .. }
            | Self::FederationPending(_)
            | Self::ManagedIdentityUnavailable { .. }
            | Self::AssertionTimedOut { .. } => true,
            Self::AssertionExpired(_) => true,
            Self::KeyVault { status, .. } => status.is_none_or(|s| s == 429 || s >= 500),
            Self::Authority(e) => e.status >= 500 || e.code().is_some_and(is_transient_code),
            Self::MalformedResponse { status, .. } => *status >= 500,
            Self::Database { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// Whether the app's credential itself failed: Entra refused it (a wrong or expired
    /// secret, AADSTS7000215, 7000222; an unknown certificate or bad signature, 700027; an
    /// expired assertion, 700024; no matching federated credential, 70021, 700211-700213,
    /// 70025, 700236, 700227, 700222, 700226), or it could not be produced (the managed
    /// identity endpoint, the assertion source or Key Vault failed or timed out).
    ///
    /// Another credential of the same app may succeed where this one failed: a
    /// [`CredentialSet`](crate::CredentialSet) tries its next credential on exactly these.
    /// A refusal about the tenant (not consented, tenant not found, app disabled,
    /// conditional access, throttling) is not one: no other credential changes it.
    ///
    /// ```
    /// use azure_cross_tenant::{Error, TenantId};
    ///
    /// let err = "common".parse::<TenantId>().unwrap_err();
    /// assert!(!err.is_credential_error());
    /// ```
    pub fn is_credential_error(&self) -> bool {
        matches!(
            self,
            Self::InvalidClientSecret(_)
                | Self::ClientSecretExpired(_)
                | Self::InvalidClientAssertion(_)
                | Self::AssertionExpired(_)
                | Self::FederationPending(_)
                | Self::FederationMismatch { .. }
                | Self::NoFederatedCredentials(_)
                | Self::FederatedIdentityInWrongTenant(_)
                | Self::AssertionRejected(_)
                | Self::ManagedIdentityUnavailable { .. }
                | Self::AssertionUnavailable { .. }
                | Self::AssertionTimedOut { .. }
                | Self::KeyVault { .. }
        )
    }

    /// The error for an [`AssertionSource`](crate::AssertionSource) that could not produce
    /// an assertion: `reason` says what and where, in words for the operator, `source` is
    /// the underlying failure.
    ///
    /// ```
    /// use azure_cross_tenant::Error;
    ///
    /// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
    /// let err = Error::assertion_unavailable("OIDC token file /run/oidc/token", io);
    /// assert!(err.to_string().contains("/run/oidc/token"));
    /// assert!(std::error::Error::source(&err).is_some());
    /// ```
    pub fn assertion_unavailable(
        reason: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::AssertionUnavailable {
            reason: reason.into(),
            source: Some(Arc::from(source.into())),
        }
    }

    /// Wraps a custom provider's failure.
    pub fn provider(
        tenant: TenantId,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Provider {
            tenant,
            source: Arc::from(source.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entra(code: u32) -> Box<EntraError> {
        let mut e = EntraError::bare("contoso.com".parse().unwrap(), "client", 400);
        e.codes = vec![code];
        e.trace_id = Some("trace-1".into());
        Box::new(e)
    }

    #[test]
    fn error_stays_small() {
        // Errors travel in every `Result` on the hot path (a cache hit returns
        // `Result<AccessToken, Error>`): large payloads are boxed to keep this small.
        assert!(size_of::<Error>() <= 48, "{}", size_of::<Error>());
    }

    #[test]
    fn display_carries_code_and_trace_id() {
        let err = Error::ClientSecretExpired(entra(7000222));
        let msg = err.to_string();
        assert!(
            msg.contains("AADSTS7000222") && msg.contains("trace id trace-1"),
            "{msg}"
        );
        assert!(
            msg.contains("rotate") || msg.contains("new secret"),
            "{msg}"
        );
    }

    #[test]
    fn transient_authority_errors_are_retryable_and_others_are_not() {
        assert!(Error::Authority(entra(50033)).is_retryable());
        assert!(!Error::Authority(entra(70011)).is_retryable());
        assert!(!Error::AppDisabled(entra(7000112)).is_retryable());
    }

    #[test]
    fn credential_errors_are_the_credentials_own_and_never_the_tenants() {
        assert!(Error::InvalidClientSecret(entra(7000215)).is_credential_error());
        assert!(Error::InvalidClientAssertion(entra(700027)).is_credential_error());
        assert!(
            Error::FederationMismatch {
                field: FederationField::Subject,
                entra: entra(700213),
            }
            .is_credential_error()
        );
        let consent = Error::NotConsented {
            entra: entra(700016),
            consent_url: String::new(),
        };
        assert!(!consent.is_credential_error());
        assert!(!Error::TenantNotFound(entra(90002)).is_credential_error());
        assert!(!Error::BlockedByConditionalAccess(entra(53003)).is_credential_error());
        assert!(!Error::AppDisabled(entra(7000112)).is_credential_error());
    }
}

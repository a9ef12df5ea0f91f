//! [`ValidationError`]: why a token was refused, or why it could not be checked.

/// Why a token was refused. Says which check failed and with what values; never
/// repeats the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The text is not a JWT (three base64url parts holding JSON objects), or is too long.
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    /// The header names an algorithm other than RS256 (`none`, `HS256`, `rs256`...).
    #[error("the token's algorithm {0:?} is not allowed; only RS256 is")]
    DisallowedAlgorithm(String),
    /// The header carries `crit`: extensions this validator does not understand.
    #[error("the token's header carries critical extensions ({0}); refused")]
    CriticalHeader(String),
    /// No key of the tenant has this `kid`, even after refetching the keys.
    #[error("no signing key with kid {kid:?} is published for the tenant")]
    UnknownKey {
        /// The `kid` of the token's header.
        kid: String,
    },
    /// The signature does not verify with the tenant's key.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` has passed (beyond the allowed clock skew).
    #[error("the token expired at {exp} (unix seconds)")]
    Expired {
        /// The `exp` claim.
        exp: u64,
    },
    /// `nbf` has not come yet (beyond the allowed clock skew).
    #[error("the token is not valid before {nbf} (unix seconds)")]
    NotYetValid {
        /// The `nbf` claim.
        nbf: u64,
    },
    /// A claim the checks need is absent.
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    /// `tid` is not a GUID.
    #[error("the token's tid {0:?} is not a tenant GUID")]
    TenantNotGuid(String),
    /// `tid` is not the expected tenant (or not in the allowlist).
    #[error("the token was issued by tenant {found}, expected {expected}")]
    WrongTenant {
        /// The tenant(s) expected.
        expected: String,
        /// The token's `tid`.
        found: String,
    },
    /// `iss` is not the issuer the tenant's metadata names, or the key's own `issuer`.
    #[error("the token's issuer {found:?} is not the tenant's issuer {expected:?}")]
    IssuerMismatch {
        /// The issuer expected.
        expected: String,
        /// The token's `iss`.
        found: String,
    },
    /// `aud` is none of the accepted audiences.
    #[error("the token is for audience {found:?}, expected one of {expected:?}")]
    WrongAudience {
        /// Accepted audiences.
        expected: Vec<String>,
        /// The token's `aud`.
        found: Vec<String>,
    },
    /// `oid` is not the expected service principal.
    #[error("the token's oid {found:?} is not the expected service principal {expected}")]
    WrongObjectId {
        /// Expected object id.
        expected: String,
        /// The token's `oid`.
        found: Option<String>,
    },
    /// `appid`/`azp` is not the expected app.
    #[error("the token was issued to app {found:?}, expected {expected}")]
    WrongAppId {
        /// Expected client id.
        expected: String,
        /// The token's `appid` or `azp`.
        found: Option<String>,
    },
    /// A required app role is missing from `roles`.
    #[error("the token lacks the required role {0:?}; the customer admin must grant it")]
    MissingRole(String),
    /// `idtyp` says the token is not app-only.
    #[error("the token is not an app-only token (idtyp={0:?})")]
    NotAppOnly(String),
    /// The token's version (`ver`) is not accepted.
    #[error("token version {0:?} is not accepted")]
    VersionNotAccepted(String),
    /// The tenant's keys could not be fetched and none are cached.
    #[error("signing keys of tenant {tenant} are unavailable: {reason}")]
    KeysUnavailable {
        /// The tenant.
        tenant: String,
        /// What went wrong.
        reason: String,
    },
    /// The expectations cannot be checked (e.g. a domain where a tenant GUID is needed).
    #[error("invalid expectations: {0}")]
    InvalidExpectations(String),
}

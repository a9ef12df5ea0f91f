//! [`ValidationError`]: why a token was refused, or why it could not be checked; and
//! what a service answers its caller for each ([`ValidationErrorClass`], [`BearerError`]).

use std::fmt;

/// Why a token was refused, or why it could not be checked. Says which check failed and
/// with what values; never repeats the token.
///
/// A service answers by [`class`](Self::class): a rejected token is a 401 (or a 403 for
/// a valid token lacking a role) with [`bearer_error`](Self::bearer_error) in its
/// `WWW-Authenticate` header; a token that could not be checked is a 503 or 500, never a
/// 401, so callers do not throw away good tokens during a key outage.
///
/// ```
/// use azure_cross_tenant::{ValidationError, ValidationErrorClass};
///
/// let err = ValidationError::Expired { exp: 1_700_000_000 };
/// assert!(err.is_token_rejected());
/// assert_eq!(err.class(), ValidationErrorClass::InvalidToken);
/// assert_eq!(err.http_status(), 401);
/// let bearer = err.bearer_error().unwrap();
/// assert_eq!(bearer.error, "invalid_token");
/// assert_eq!(bearer.description, "the token has expired");
///
/// let missing = ValidationError::MissingRole("Commands.Send".into());
/// assert_eq!(missing.http_status(), 403);
/// assert_eq!(missing.bearer_error().unwrap().error, "insufficient_scope");
///
/// let down = ValidationError::KeysUnavailable { tenant: "t".into(), reason: "HTTP 503".into() };
/// assert!(!down.is_token_rejected());
/// assert_eq!(down.http_status(), 503);
/// assert!(down.bearer_error().is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The text is not a JWT (three unpadded base64url parts holding JSON objects), or
    /// is too long.
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
    /// `iat` is in the future (beyond the allowed clock skew): the issuer's clock or the
    /// token is wrong.
    #[error("the token claims to be issued at {iat} (unix seconds), in the future")]
    IssuedInFuture {
        /// The `iat` claim.
        iat: u64,
    },
    /// A claim the checks need (`exp`, `iss`, `tid`, `ver`, `nonce`, `oid`...) is absent.
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    /// `tid` is not a GUID.
    #[error("the token's tid {0:?} is not a tenant GUID")]
    TenantNotGuid(String),
    /// `tid` is not the expected tenant (or not an allowed one).
    #[error("the token was issued by tenant {found}, expected {expected}")]
    WrongTenant {
        /// The tenant(s) expected, or how they are decided.
        expected: String,
        /// The token's `tid`.
        found: String,
    },
    /// `iss` is not the issuer the tenant's metadata names (with `{tenantid}` filled from
    /// `tid` in multi-tenant mode), or not the key's own `issuer`.
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
    /// An id token's `nonce` is not the one sent with the sign-in request: a replayed or
    /// injected id token.
    #[error("the id token's nonce does not match the sign-in request's")]
    WrongNonce,
    /// A required app role is missing from `roles`. The token is otherwise valid: answer
    /// 403 `insufficient_scope`.
    #[error("the token lacks the required role {0:?}; the customer admin must grant it")]
    MissingRole(String),
    /// The token is a delegated (user) token where an app-only token is required:
    /// `idtyp` is not `app`, or it carries `scp`, `upn` or `unique_name`.
    #[error("the token is not an app-only token ({claim}={found:?})")]
    NotAppOnly {
        /// The claim that shows it (`idtyp`, `scp`, `upn`, `unique_name`).
        claim: &'static str,
        /// Its value (cut).
        found: String,
    },
    /// The token's version (`ver`) is not accepted.
    #[error("token version {0:?} is not accepted")]
    VersionNotAccepted(String),
    /// The tenant's keys could not be fetched, and the token's key is not among those
    /// cached. Not the token's fault: answer 503 and retry later.
    #[error("signing keys of tenant {tenant} are unavailable: {reason}")]
    KeysUnavailable {
        /// The tenant (or `organizations`/`common` in multi-tenant mode).
        tenant: String,
        /// What went wrong.
        reason: String,
    },
    /// The expectations cannot be checked (e.g. a domain where a tenant GUID is needed,
    /// no audience). A bug of the service, not of the token: answer 500.
    #[error("invalid expectations: {0}")]
    InvalidExpectations(String),
}

/// What a [`ValidationError`] means for the caller of a service, and so what to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationErrorClass {
    /// The token is bad (malformed, forged, expired, for another tenant, audience or
    /// app): 401 with `WWW-Authenticate: Bearer error="invalid_token"`.
    InvalidToken,
    /// The token is valid but lacks a required role: 403 with
    /// `error="insufficient_scope"`.
    InsufficientScope,
    /// The token could not be checked now (signing keys unreachable): 503; the caller
    /// retries with the same token.
    Unavailable,
    /// The service's expectations are wrong: 500; fix the configuration.
    Misconfigured,
}

impl ValidationErrorClass {
    /// The HTTP status a service answers with: 401, 403, 503 or 500.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidToken => 401,
            Self::InsufficientScope => 403,
            Self::Unavailable => 503,
            Self::Misconfigured => 500,
        }
    }
}

/// The RFC 6750 `error` and `error_description` for a `WWW-Authenticate: Bearer`
/// challenge.
///
/// The description is fixed text about the failed check (plus, for a missing role, the
/// role the service requires): it never repeats the token or its claims, and holds only
/// the characters RFC 6750 allows in a quoted `error_description`, so it can be put in
/// quotes as it is. [`Display`](fmt::Display) gives the challenge's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BearerError {
    /// `invalid_token` or `insufficient_scope`.
    pub error: &'static str,
    /// What was wrong, for a human.
    pub description: String,
}

impl fmt::Display for BearerError {
    /// `error="invalid_token", error_description="the token has expired"`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "error=\"{}\", error_description=\"{}\"",
            self.error, self.description
        )
    }
}

impl ValidationError {
    /// What this error means for the caller: a bad token, a missing role, keys that
    /// could not be fetched, or a misconfigured service.
    pub fn class(&self) -> ValidationErrorClass {
        match self {
            Self::MissingRole(_) => ValidationErrorClass::InsufficientScope,
            Self::KeysUnavailable { .. } => ValidationErrorClass::Unavailable,
            Self::InvalidExpectations(_) => ValidationErrorClass::Misconfigured,
            _ => ValidationErrorClass::InvalidToken,
        }
    }

    /// Whether the token itself was refused (401 or 403), as opposed to "could not be
    /// checked" (503, 500).
    pub fn is_token_rejected(&self) -> bool {
        matches!(
            self.class(),
            ValidationErrorClass::InvalidToken | ValidationErrorClass::InsufficientScope
        )
    }

    /// Whether the token is valid but lacks a required role (403).
    pub fn is_insufficient_scope(&self) -> bool {
        self.class() == ValidationErrorClass::InsufficientScope
    }

    /// The HTTP status a service answers with: 401, 403, 503 or 500.
    pub fn http_status(&self) -> u16 {
        self.class().http_status()
    }

    /// The RFC 6750 error for the `WWW-Authenticate` challenge of a rejected token;
    /// `None` when the token could not be checked (answer 503 or 500 without blaming it).
    pub fn bearer_error(&self) -> Option<BearerError> {
        let (error, description) = match self.class() {
            ValidationErrorClass::InvalidToken => ("invalid_token", self.description()),
            ValidationErrorClass::InsufficientScope => ("insufficient_scope", self.description()),
            ValidationErrorClass::Unavailable | ValidationErrorClass::Misconfigured => {
                return None;
            }
        };
        Some(BearerError { error, description })
    }

    /// Fixed text per check: nothing from the token, so nothing an attacker wrote is
    /// reflected to the caller.
    fn description(&self) -> String {
        let fixed = match self {
            Self::Malformed(_) => "the token is malformed",
            Self::DisallowedAlgorithm(_) => "the token's signing algorithm is not allowed",
            Self::CriticalHeader(_) => "the token carries critical header extensions",
            Self::UnknownKey { .. } => "the token is signed with an unknown key",
            Self::BadSignature => "the token's signature is invalid",
            Self::Expired { .. } => "the token has expired",
            Self::NotYetValid { .. } => "the token is not valid yet",
            Self::IssuedInFuture { .. } => "the token is issued in the future",
            Self::MissingClaim(claim) => return format!("the token lacks the {claim} claim"),
            Self::TenantNotGuid(_) => "the token's tenant is not a tenant id",
            Self::WrongTenant { .. } => "the token is from a tenant that is not accepted",
            Self::IssuerMismatch { .. } => "the token's issuer is not accepted",
            Self::WrongAudience { .. } => "the token is for another audience",
            Self::WrongObjectId { .. } => "the token's caller is not accepted",
            Self::WrongAppId { .. } => "the token was issued to another application",
            Self::WrongNonce => "the token's nonce does not match",
            Self::NotAppOnly { .. } => "the token is not an app-only token",
            Self::VersionNotAccepted(_) => "the token's version is not accepted",
            Self::MissingRole(role) => {
                return format!("the token lacks the required role {}", quotable(role));
            }
            Self::KeysUnavailable { .. } => "the signing keys are unavailable",
            Self::InvalidExpectations(_) => "the service is misconfigured",
        };
        fixed.to_owned()
    }
}

/// `text` with only the characters RFC 6750 allows inside a quoted `error_description`
/// (printable ASCII but `"` and `\`), cut to 64 characters.
fn quotable(text: &str) -> String {
    text.chars()
        .take(64)
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_with_quotes_cannot_break_out_of_the_challenge() {
        let err = ValidationError::MissingRole("a\"b\\c\nd".into());
        let bearer = err.bearer_error().unwrap();
        assert_eq!(
            bearer.description,
            "the token lacks the required role a?b?c?d"
        );
        assert_eq!(
            bearer.to_string(),
            "error=\"insufficient_scope\", error_description=\"the token lacks the required role a?b?c?d\""
        );
    }

    #[test]
    fn descriptions_never_repeat_what_the_token_said() {
        let said = "attacker-controlled-text";
        for err in [
            ValidationError::DisallowedAlgorithm(said.into()),
            ValidationError::TenantNotGuid(said.into()),
            ValidationError::UnknownKey { kid: said.into() },
            ValidationError::IssuerMismatch {
                expected: "x".into(),
                found: said.into(),
            },
            ValidationError::NotAppOnly {
                claim: "scp",
                found: said.into(),
            },
        ] {
            let bearer = err.bearer_error().unwrap();
            assert!(!bearer.description.contains(said), "{err:?}");
        }
    }
}

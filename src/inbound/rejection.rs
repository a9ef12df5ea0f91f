//! [`BearerRejection`]: how a request without an acceptable bearer token is answered.

use http::header::{HeaderValue, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

use crate::error::ValidationError;

/// Why a request was not let through, and the answer it gets: [`status`](Self::status)
/// and [`www_authenticate`](Self::www_authenticate) follow RFC 6750, the body is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BearerRejection {
    /// No `Authorization: Bearer` header: 401 with a bare `Bearer` challenge.
    Missing,
    /// The `Authorization` header is malformed: 400 `invalid_request`.
    InvalidRequest(&'static str),
    /// The token was refused (bad, expired, another tenant, audience, principal or app):
    /// 401 `invalid_token`.
    InvalidToken(ValidationError),
    /// The token is valid but lacks an app role: 403 `insufficient_scope`.
    InsufficientScope {
        /// The role required.
        role: String,
    },
    /// The token could not be checked: the signing keys are unreachable. 503, never a
    /// 401 (the caller's token may be fine).
    Unavailable(ValidationError),
    /// The expectations cannot be checked (a configuration mistake). 500.
    Misconfigured(String),
    /// [`ValidatedClaims`](crate::ValidatedClaims) was extracted on a route without
    /// [`ValidateBearerLayer`](crate::ValidateBearerLayer): a wiring mistake. 500, with a
    /// body naming the layer.
    LayerMissing,
}

impl BearerRejection {
    /// The verdict for a validation error: which errors reject the token (401), which
    /// lack a role (403), which mean "could not check" (503, 500).
    pub fn from_validation(error: ValidationError) -> Self {
        use ValidationError as V;
        match error {
            V::MissingRole(role) => Self::InsufficientScope { role },
            e @ V::KeysUnavailable { .. } => Self::Unavailable(e),
            V::InvalidExpectations(why) => Self::Misconfigured(why),
            e => Self::InvalidToken(e),
        }
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Missing | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Misconfigured(_) | Self::LayerMissing => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `WWW-Authenticate` value to send, if any.
    pub fn www_authenticate(&self) -> Option<String> {
        let challenge = |error: &str, description: &str| {
            format!("Bearer error=\"{error}\", error_description=\"{description}\"")
        };
        match self {
            Self::Missing => Some("Bearer".into()),
            Self::InvalidRequest(why) => Some(challenge("invalid_request", why)),
            Self::InvalidToken(e) => Some(challenge("invalid_token", describe(e))),
            Self::InsufficientScope { role } => Some(challenge(
                "insufficient_scope",
                &format!("the token lacks the app role {}", quotable(role)),
            )),
            Self::Unavailable(_) | Self::Misconfigured(_) | Self::LayerMissing => None,
        }
    }

    /// The response: the status, the challenge, an empty body. Logs what the operator
    /// must act on (keys unreachable, misconfiguration) at `error`, the rest at `debug`.
    pub fn into_http<B: Default>(self) -> Response<B> {
        self.log();
        let mut response = Response::new(B::default());
        *response.status_mut() = self.status();
        if let Some(value) = self
            .www_authenticate()
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        response
    }

    fn log(&self) {
        match self {
            Self::Unavailable(e) => tracing::error!(
                target: "azure_cross_tenant::inbound",
                error = %e,
                "bearer token could not be checked: signing keys unavailable; answering 503"
            ),
            Self::Misconfigured(why) => tracing::error!(
                target: "azure_cross_tenant::inbound",
                reason = %why,
                "bearer token check misconfigured; answering 500"
            ),
            Self::LayerMissing => tracing::error!(
                target: "azure_cross_tenant::inbound",
                "{LAYER_MISSING}; answering 500"
            ),
            other => tracing::debug!(
                target: "azure_cross_tenant::inbound",
                status = other.status().as_u16(),
                rejection = ?other,
                "bearer token refused"
            ),
        }
    }
}

impl std::fmt::Display for BearerRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("no bearer token"),
            Self::InvalidRequest(why) => write!(f, "malformed Authorization header: {why}"),
            Self::InvalidToken(e) => write!(f, "bearer token refused: {e}"),
            Self::InsufficientScope { role } => write!(f, "the token lacks the app role {role}"),
            Self::Unavailable(e) => write!(f, "bearer token could not be checked: {e}"),
            Self::Misconfigured(why) => write!(f, "bearer token check misconfigured: {why}"),
            Self::LayerMissing => f.write_str(LAYER_MISSING),
        }
    }
}

impl std::error::Error for BearerRejection {}

impl axum_core::response::IntoResponse for BearerRejection {
    fn into_response(self) -> axum_core::response::Response {
        let missing = self == Self::LayerMissing;
        let mut response: axum_core::response::Response = self.into_http();
        if missing {
            // A wiring bug of the service, not the caller's: say which layer is missing.
            *response.body_mut() = LAYER_MISSING.into();
        }
        response
    }
}

const LAYER_MISSING: &str =
    "ValidatedClaims was extracted on a route without ValidateBearerLayer; add the layer to the route";

/// A fixed phrase per refusal: the caller learns which check failed, never a value from
/// the token.
fn describe(e: &ValidationError) -> &'static str {
    use ValidationError as V;
    match e {
        V::Malformed(_) => "the token is malformed",
        V::DisallowedAlgorithm(_) => "the token's signing algorithm is not allowed",
        V::CriticalHeader(_) => "the token carries critical header extensions",
        V::UnknownKey { .. } => "the token is signed by an unknown key",
        V::BadSignature => "the token's signature is invalid",
        V::Expired { .. } => "the token has expired",
        V::NotYetValid { .. } => "the token is not valid yet",
        V::MissingClaim(_) => "the token lacks a required claim",
        V::TenantNotGuid(_) | V::WrongTenant { .. } => "the token was issued by another tenant",
        V::IssuerMismatch { .. } => "the token's issuer is not accepted",
        V::WrongAudience { .. } => "the token is for another audience",
        V::WrongObjectId { .. } => "the token was issued to another principal",
        V::WrongAppId { .. } => "the token was issued to another app",
        V::NotAppOnly(_) => "the token is not an app-only token",
        V::VersionNotAccepted(_) => "the token's version is not accepted",
        V::MissingRole(_) => "the token lacks a required app role",
        V::KeysUnavailable { .. } | V::InvalidExpectations(_) => "the token could not be checked",
    }
}

/// A role name as it may appear inside a quoted header parameter: visible ASCII without
/// quotes or backslashes (roles are the service's own configuration, but a header must
/// never break).
fn quotable(role: &str) -> String {
    role.chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\' || *c == ' ')
        .take(64)
        .collect()
}

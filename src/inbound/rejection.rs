//! [`BearerRejection`]: how a request without an acceptable bearer token is answered.

use http::header::{HeaderValue, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

use crate::error::{ValidationError, ValidationErrorClass};

/// Why a request was not let through, and the answer it gets: [`status`](Self::status)
/// and [`www_authenticate`](Self::www_authenticate) follow RFC 6750, the body is empty
/// (except for [`LayerMissing`](Self::LayerMissing), whose body names the layer).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BearerRejection {
    /// No `Authorization: Bearer` header: 401 with a bare `Bearer` challenge.
    Missing,
    /// The `Authorization` header is malformed: 400 `invalid_request`.
    InvalidRequest(&'static str),
    /// Validation failed. The error's [`class`](ValidationError::class) decides: a bad
    /// token is a 401 `invalid_token`, a missing role a 403 `insufficient_scope`,
    /// unreachable keys a 503 (never a 401: the caller's token may be fine), invalid
    /// expectations a 500.
    Token(ValidationError),
    /// [`ValidatedClaims`](crate::ValidatedClaims) was extracted on a route without
    /// [`ValidateBearerLayer`](crate::ValidateBearerLayer): a wiring mistake of the
    /// service. 500.
    LayerMissing,
}

const LAYER_MISSING: &str = "ValidatedClaims was extracted on a route without ValidateBearerLayer; add the layer to the route";

impl BearerRejection {
    /// The HTTP status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Missing => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::Token(e) => {
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Self::LayerMissing => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `WWW-Authenticate` value to send, if any. Its description is fixed text per
    /// failed check: never the token, never a claim from it.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            Self::Missing => Some("Bearer".into()),
            Self::InvalidRequest(why) => Some(format!(
                "Bearer error=\"invalid_request\", error_description=\"{why}\""
            )),
            Self::Token(e) => e.bearer_error().map(|b| format!("Bearer {b}")),
            Self::LayerMissing => None,
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
        let class = match self {
            Self::Token(e) => Some(e.class()),
            _ => None,
        };
        match (self, class) {
            (_, Some(ValidationErrorClass::Unavailable)) => tracing::error!(
                target: "azure_cross_tenant::inbound",
                error = %self,
                "bearer token could not be checked; answering 503"
            ),
            (Self::LayerMissing, _) | (_, Some(ValidationErrorClass::Misconfigured)) => {
                tracing::error!(
                    target: "azure_cross_tenant::inbound",
                    error = %self,
                    "bearer token check misconfigured; answering 500"
                )
            }
            _ => tracing::debug!(
                target: "azure_cross_tenant::inbound",
                status = self.status().as_u16(),
                error = %self,
                "bearer token refused"
            ),
        }
    }
}

impl From<ValidationError> for BearerRejection {
    fn from(e: ValidationError) -> Self {
        Self::Token(e)
    }
}

impl std::fmt::Display for BearerRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("no bearer token"),
            Self::InvalidRequest(why) => write!(f, "malformed Authorization header: {why}"),
            Self::Token(e) => write!(f, "bearer token not accepted: {e}"),
            Self::LayerMissing => f.write_str(LAYER_MISSING),
        }
    }
}

impl std::error::Error for BearerRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Token(e) => Some(e),
            _ => None,
        }
    }
}

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

//! [`ValidatedClaims`]: the claims [`ValidateBearerLayer`](crate::ValidateBearerLayer)
//! validated, as a request extension and as an axum extractor.

use std::ops::Deref;
use std::sync::Arc;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;

use super::rejection::BearerRejection;
use crate::error::ValidationError;
use crate::jwt::Claims;

/// Set on every request the layer let through, so the extractor can tell "no token"
/// (optional mode) from "no layer on this route".
#[derive(Debug, Clone, Copy)]
pub(super) struct Checked;

/// The claims of a bearer token that [`ValidateBearerLayer`](crate::ValidateBearerLayer)
/// validated. The layer puts it in the request's extensions (read it there from hyper or
/// tonic); in axum, extract it:
///
/// - `ValidatedClaims`: the request must carry a valid token (the layer made sure, unless
///   it is [`optional`](crate::ValidateBearerLayer::optional): then no token is a 401).
/// - `Option<ValidatedClaims>`: `None` when an optional layer let a request without a
///   token through.
///
/// On a route without the layer both are a 500 naming the layer: a wiring mistake, not
/// the caller's. Cloning is a reference-count bump.
///
/// ```
/// use azure_cross_tenant::{BearerRejection, ValidatedClaims};
///
/// async fn handler(claims: ValidatedClaims) -> Result<String, BearerRejection> {
///     claims.require_role("Commands.Send")?; // 403 insufficient_scope without it
///     Ok(format!("hello, {}", claims.oid.as_deref().unwrap_or("?")))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct ValidatedClaims(Arc<Claims>);

impl ValidatedClaims {
    pub(super) fn new(claims: Claims) -> Self {
        Self(Arc::new(claims))
    }

    /// Whether the token carries the app role `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.0.roles.iter().any(|r| r == role)
    }

    /// `Ok` if the token carries the app role `role`, else the 403 `insufficient_scope`
    /// rejection to return.
    pub fn require_role(&self, role: &str) -> Result<(), BearerRejection> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(BearerRejection::Token(ValidationError::MissingRole(
                role.into(),
            )))
        }
    }

    /// The claims.
    pub fn claims(&self) -> &Claims {
        &self.0
    }
}

impl Deref for ValidatedClaims {
    type Target = Claims;

    fn deref(&self) -> &Claims {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ValidatedClaims {
    type Rejection = BearerRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match (
            parts.extensions.get::<ValidatedClaims>(),
            parts.extensions.get::<Checked>(),
        ) {
            (Some(claims), _) => Ok(claims.clone()),
            (None, Some(_)) => Err(BearerRejection::Missing),
            (None, None) => Err(BearerRejection::LayerMissing),
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for ValidatedClaims {
    type Rejection = BearerRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match (
            parts.extensions.get::<ValidatedClaims>(),
            parts.extensions.get::<Checked>(),
        ) {
            (Some(claims), _) => Ok(Some(claims.clone())),
            (None, Some(_)) => Ok(None),
            (None, None) => Err(BearerRejection::LayerMissing),
        }
    }
}

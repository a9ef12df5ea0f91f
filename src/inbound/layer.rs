//! [`ValidateBearerLayer`] and its service [`ValidateBearer`]: validate the bearer token,
//! then call the inner service with the claims in the request's extensions, or answer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::request::Parts;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::extract::{Checked, ValidatedClaims};
use super::rejection::BearerRejection;
use crate::validate::{Expectations, TokenValidator};

type ExpectationsFn = dyn Fn(&Parts) -> Arc<Expectations> + Send + Sync;

/// What a request's token must satisfy.
#[derive(Clone)]
enum Expect {
    Fixed(Arc<Expectations>),
    PerRequest(Arc<ExpectationsFn>),
}

#[derive(Clone)]
struct Shared {
    validator: TokenValidator,
    expect: Expect,
    optional: bool,
}

/// A `tower` layer that validates `Authorization: Bearer` tokens before the inner
/// service runs; use it from axum (`Router::layer`), hyper or tonic alike. Shaped like
/// tower-http's `AsyncRequireAuthorization`.
///
/// It validates the token with a [`TokenValidator`] against [`Expectations`] (fixed, or
/// chosen per request), and either passes the request on with the
/// [`ValidatedClaims`](crate::ValidatedClaims) in its extensions or answers itself, as
/// RFC 6750 says:
///
/// | Situation | Status | `WWW-Authenticate` |
/// |---|---|---|
/// | no bearer token | 401 | `Bearer` |
/// | malformed `Authorization` header (repeated, not ASCII, empty token) | 400 | `Bearer error="invalid_request", error_description="..."` |
/// | bad, expired, wrong tenant, audience, `oid` or app | 401 | `Bearer error="invalid_token", error_description="..."` |
/// | valid, but lacks a required app role | 403 | `Bearer error="insufficient_scope", error_description="..."` |
/// | signing keys cannot be fetched | 503 | none (logged at `error`; never a 401) |
/// | the expectations cannot be checked (configuration) | 500 | none (logged at `error`) |
///
/// Bodies are empty, and descriptions are fixed phrases: no token text and no claim value
/// is sent back. Details go to `tracing` at `debug` (target
/// `azure_cross_tenant::inbound`). The `Authorization` header is marked sensitive, so a
/// logging layer inside this one does not print it.
///
/// ```
/// use axum::{Router, routing::post};
/// use azure_cross_tenant::{BearerRejection, Cloud, Expectations, TenantId, TokenValidator, ValidateBearerLayer, ValidatedClaims};
///
/// async fn send_command(claims: ValidatedClaims) -> Result<&'static str, BearerRejection> {
///     claims.require_role("Commands.Send")?;
///     Ok("accepted")
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let customer: TenantId = "72f988bf-86f1-41af-91ab-2d7cd011db47".parse()?;
/// let expect = Expectations::new(customer)
///     .audience("api://customer-commands")
///     .object_id("the provider app's service principal object id in this tenant");
/// let app: Router = Router::new()
///     .route("/commands", post(send_command))
///     .layer(ValidateBearerLayer::new(TokenValidator::new(Cloud::Public)?, expect));
/// # let _ = app; Ok(()) }
/// ```
///
/// Several APIs in one service: one layer per route (or per nested router), each with
/// its own expectations. The route decides which audience a token must carry; nothing
/// the caller sends does.
///
/// ```
/// use axum::{Router, routing::get};
/// use azure_cross_tenant::{Cloud, Expectations, TokenValidator, ValidateBearerLayer, ValidatedClaims};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// let validator = TokenValidator::new(Cloud::Public)?; // clones share keys and caches
/// let orders = Router::new()
///     .route("/orders", get(|_: ValidatedClaims| async { "orders" }))
///     .route_layer(ValidateBearerLayer::new(
///         validator.clone(),
///         Expectations::new(tenant.parse()?).audience("api://orders"),
///     ));
/// let billing = Router::new()
///     .route("/invoices", get(|_: ValidatedClaims| async { "invoices" }))
///     .route_layer(ValidateBearerLayer::new(
///         validator,
///         Expectations::new(tenant.parse()?).audience("api://billing"),
///     ));
/// let app: Router = Router::new().merge(orders).nest("/billing", billing);
/// # let _ = app; Ok(()) }
/// ```
///
/// [`per_request`](Self::per_request) chooses expectations from the request itself; key
/// it on what your own routing decided (the matched path, an extension an earlier layer
/// set), never on a header such as `Host`: headers are whatever the caller sends.
///
#[derive(Clone)]
pub struct ValidateBearerLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for ValidateBearerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidateBearerLayer")
            .field("optional", &self.shared.optional)
            .finish_non_exhaustive()
    }
}

impl ValidateBearerLayer {
    /// Validates every request's token against `expectations`.
    pub fn new(validator: TokenValidator, expectations: Expectations) -> Self {
        Self::with(validator, Expect::Fixed(Arc::new(expectations)), false)
    }

    /// Validates each request's token against the expectations `choose` returns for it
    /// (from its method, URI, headers or extensions; the body is not available).
    ///
    /// **Request headers are attacker-controlled**: a closure that picks the audience
    /// from `Host`, `X-Forwarded-Host` or any other header lets a caller holding a token
    /// for one API reach another API's handler by sending the first API's host name. Prefer
    /// one layer per route or router ([`new`](Self::new), as above); use this for
    /// expectations that follow the matched path or an extension your own middleware set.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use azure_cross_tenant::{Cloud, Expectations, TokenValidator, ValidateBearerLayer};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    /// let orders = Arc::new(Expectations::new(tenant.parse()?).audience("api://orders"));
    /// let billing = Arc::new(Expectations::new(tenant.parse()?).audience("api://billing"));
    /// // The path the router will dispatch on, not a header.
    /// let layer = ValidateBearerLayer::per_request(TokenValidator::new(Cloud::Public)?, move |parts| {
    ///     if parts.uri.path().starts_with("/billing/") { billing.clone() } else { orders.clone() }
    /// });
    /// # let _ = layer; Ok(()) }
    /// ```
    pub fn per_request<F>(validator: TokenValidator, choose: F) -> Self
    where
        F: Fn(&Parts) -> Arc<Expectations> + Send + Sync + 'static,
    {
        Self::with(validator, Expect::PerRequest(Arc::new(choose)), false)
    }

    /// Lets requests *without* an `Authorization` header through, with no claims (an
    /// `Option<ValidatedClaims>` extractor then gives `None`). A token that is present is
    /// still validated, and refused if bad.
    pub fn optional(self) -> Self {
        let shared = Shared {
            optional: true,
            ..Shared::clone(&self.shared)
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    fn with(validator: TokenValidator, expect: Expect, optional: bool) -> Self {
        Self {
            shared: Arc::new(Shared {
                validator,
                expect,
                optional,
            }),
        }
    }
}

impl<S> Layer<S> for ValidateBearerLayer {
    type Service = ValidateBearer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ValidateBearer {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`ValidateBearerLayer`] wraps around yours.
#[derive(Clone)]
pub struct ValidateBearer<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for ValidateBearer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidateBearer")
            .field("inner", &self.inner)
            .field("optional", &self.shared.optional)
            .finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Service<Request<B>> for ValidateBearer<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone is not ready yet; the instance polled ready is the one called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            match authorize(&shared, request).await {
                Ok(request) => inner.call(request).await,
                Err(rejection) => Ok(rejection.into_http()),
            }
        })
    }
}

/// Validates the request's token; on success the request goes on with the claims.
async fn authorize<B>(shared: &Shared, request: Request<B>) -> Result<Request<B>, BearerRejection> {
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(Checked);
    let token = match bearer_token(&mut parts) {
        Ok(Some(token)) => token,
        Ok(None) if shared.optional => return Ok(Request::from_parts(parts, body)),
        Ok(None) => return Err(BearerRejection::Missing),
        Err(rejection) => return Err(rejection),
    };
    let expect = match &shared.expect {
        Expect::Fixed(e) => e.clone(),
        Expect::PerRequest(choose) => choose(&parts),
    };
    let claims = shared
        .validator
        .validate(&token, &expect)
        .await
        .map_err(BearerRejection::Token)?;
    parts.extensions.insert(ValidatedClaims::new(claims));
    Ok(Request::from_parts(parts, body))
}

/// The bearer token, if the request has one; marks the header sensitive so later
/// layers do not log it.
fn bearer_token(parts: &mut Parts) -> Result<Option<String>, BearerRejection> {
    let mut values = parts.headers.get_all(AUTHORIZATION).iter();
    let (Some(_), None) = (values.next(), values.next()) else {
        return match parts.headers.contains_key(AUTHORIZATION) {
            true => Err(BearerRejection::InvalidRequest(
                "the request has several Authorization headers",
            )),
            false => Ok(None),
        };
    };
    let Some(value) = parts.headers.get_mut(AUTHORIZATION) else {
        return Ok(None);
    };
    value.set_sensitive(true);
    let Ok(text) = value.to_str() else {
        return Err(BearerRejection::InvalidRequest(
            "the Authorization header is not visible ASCII",
        ));
    };
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None); // another scheme: no bearer token here
    }
    let token = token.trim_matches(' ');
    if token.is_empty() {
        return Err(BearerRejection::InvalidRequest("the bearer token is empty"));
    }
    Ok(Some(token.to_owned()))
}

/// The `Authorization` header, from untrusted bytes.
#[cfg(fuzzing)]
pub(crate) fn fuzz_authorization(value: &[u8]) {
    let Ok(value) = http::HeaderValue::from_bytes(value) else {
        return;
    };
    let (mut parts, ()) = Request::builder()
        .header(AUTHORIZATION, value)
        .body(())
        .map(Request::into_parts)
        .unwrap_or_else(|_| Request::new(()).into_parts());
    let _ = bearer_token(&mut parts);
}

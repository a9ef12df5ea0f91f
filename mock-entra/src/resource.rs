//! [`MockResource`]: a fake Azure resource (Key Vault, Service Bus, ARM...) of one tenant
//! that answers like the real ones about bearer tokens. It serves plain HTTP/1.1 and h2
//! with hyper on the mock's runtime, like the mock itself.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::watch;
use url::Url;

use azure_cross_tenant::{Claims, TenantId};

use crate::MockEntra;
use crate::jose::Jwt;
use crate::server::{MAX_BODY, runtime};

type Handler = dyn Fn(&ResourceRequest, &Claims) -> ResourceResponse + Send + Sync;

/// What answers the requests a resource server accepts: a [`MockResource`]'s bearer
/// checks and handler, or the fake Key Vault.
pub(crate) trait Respond: Send + Sync + 'static {
    fn respond<'a>(
        &'a self,
        request: &'a ResourceRequest,
    ) -> std::pin::Pin<Box<dyn Future<Output = ResourceResponse> + Send + 'a>>;
}

impl Respond for Checker {
    fn respond<'a>(
        &'a self,
        request: &'a ResourceRequest,
    ) -> std::pin::Pin<Box<dyn Future<Output = ResourceResponse> + Send + 'a>> {
        let response = Checker::respond(self, request);
        Box::pin(std::future::ready(response))
    }
}

/// A fake resource server of one tenant, on loopback.
///
/// Without a bearer token it answers 401 with the challenge Azure resources send
/// (`WWW-Authenticate: Bearer authorization="{authority}{tenant}", resource="{audience}"`),
/// which official SDK clients follow. A token not signed by the mock's keys gets 401; one
/// whose `tid` or `aud` is wrong gets 403; otherwise `handler` answers, and the token's
/// claims are kept for the test to inspect.
///
/// ```
/// use mock_entra::{MockEntra, MockResource, ResourceResponse};
/// use azure_cross_tenant::{ClientSecret, TenantCredentialProvider};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let entra = MockEntra::start().await;
/// # let home = entra.add_tenant("provider.example");
/// # let customer = entra.add_tenant("fabrikam.example");
/// # let app = entra.register_app(&home, "saas");
/// # let secret = entra.add_secret(&app);
/// # entra.consent(&customer, &app);
/// let vault = MockResource::start(&entra, &customer, "https://vault.azure.net", |_, _| {
///     ResourceResponse::new(200).set_body_string(r#"{"value":"s3cr3t"}"#)
/// })
/// .await;
/// let credential = ClientSecret::new(app.client_id(), secret).authority_host(entra.uri()).build()?;
/// let token = credential.get_token(&customer, &["https://vault.azure.net/.default"]).await?;
/// let answer = reqwest::Client::new()
///     .get(format!("{}/secrets/db", vault.uri()))
///     .bearer_auth(token.secret())
///     .send()
///     .await?;
/// assert_eq!(answer.status(), 200);
/// assert_eq!(vault.accepted()[0].tid.as_deref(), Some(customer.as_str()));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MockResource {
    address: SocketAddr,
    accepted: Arc<Mutex<Vec<Claims>>>,
    /// Dropping it stops the server and closes its connections.
    shutdown: watch::Sender<bool>,
}

impl Drop for MockResource {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// A request that reached a [`MockResource`]'s handler (its bearer token was accepted).
///
/// ```
/// use azure_cross_tenant::Claims;
/// use mock_entra::{ResourceRequest, ResourceResponse};
///
/// /// A vault with one secret.
/// fn vault(request: &ResourceRequest, _claims: &Claims) -> ResourceResponse {
///     match (request.method.as_str(), request.url.path()) {
///         ("GET", "/secrets/db") => {
///             ResourceResponse::new(200).set_body_json(serde_json::json!({"value": "s3cr3t"}))
///         }
///         _ => ResourceResponse::new(404),
///     }
/// }
/// # let _ = vault;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ResourceRequest {
    /// `GET`, `POST`...
    pub method: String,
    /// The full URL as the client addressed it: `http://127.0.0.1:{port}/path?query`.
    pub url: Url,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl ResourceRequest {
    /// The first value of header `name` (case-insensitive), if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a [`MockResource`] answers: a status, headers and a body (the method names
/// follow wiremock's `ResponseTemplate`).
///
/// ```
/// use mock_entra::ResourceResponse;
///
/// let answer = ResourceResponse::new(200)
///     .set_body_json(serde_json::json!({"value": "s3cr3t"}))
///     .insert_header("x-ms-request-id", "42");
/// # let _ = answer;
/// ```
#[derive(Debug, Clone)]
pub struct ResourceResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl ResourceResponse {
    /// An empty answer with `status`.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A text body (`Content-Type: text/plain` unless set).
    pub fn set_body_string(self, body: impl Into<String>) -> Self {
        self.body_with_type(body.into().into_bytes(), "text/plain")
    }

    /// A JSON body (`Content-Type: application/json` unless set).
    pub fn set_body_json(self, body: impl serde::Serialize) -> Self {
        let body = serde_json::to_vec(&body).unwrap_or_default();
        self.body_with_type(body, "application/json")
    }

    /// Adds a header (several with one name are all sent).
    pub fn insert_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A JSON body from a value (for the mock's own servers).
    pub(crate) fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::new(status).set_body_json(body)
    }

    fn body_with_type(mut self, body: Vec<u8>, content_type: &str) -> Self {
        self.body = body;
        if !self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            self.headers
                .push(("content-type".to_owned(), content_type.to_owned()));
        }
        self
    }

    fn into_hyper(self) -> hyper::Response<Full<Bytes>> {
        let mut response = hyper::Response::new(Full::new(Bytes::from(self.body)));
        *response.status_mut() = hyper::StatusCode::from_u16(self.status)
            .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) = (
                hyper::header::HeaderName::from_bytes(name.as_bytes()),
                hyper::header::HeaderValue::from_str(&value),
            ) {
                response.headers_mut().append(name, value);
            }
        }
        response
    }
}

/// The bearer checks in front of the handler.
struct Checker {
    entra: MockEntra,
    tenant_guid: String,
    audience: String,
    accepted: Arc<Mutex<Vec<Claims>>>,
    handler: Box<Handler>,
}

impl Checker {
    fn respond(&self, request: &ResourceRequest) -> ResourceResponse {
        let bearer = request
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some(token) = bearer else {
            let challenge = format!(
                r#"Bearer authorization="{}{}", resource="{}""#,
                self.entra.uri(),
                self.tenant_guid,
                self.audience
            );
            return ResourceResponse::new(401).insert_header("www-authenticate", &challenge);
        };
        let claims = match Jwt::parse(token) {
            Some(jwt) if self.entra.signed_by_mock(token) => jwt.claims.to_library_claims(),
            _ => return ResourceResponse::new(401).set_body_string("invalid token"),
        };
        if claims.tid.as_deref() != Some(self.tenant_guid.as_str())
            || !claims.aud.contains(&self.audience)
        {
            return ResourceResponse::new(403)
                .set_body_string("the token is for another tenant or resource");
        }
        self.accepted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(claims.clone());
        (self.handler)(request, &claims)
    }
}

impl MockResource {
    /// Starts a resource of `tenant` that accepts tokens for `audience` (e.g.
    /// `https://vault.azure.net`) and answers authorized requests with `handler`.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound (a test cannot go on without it).
    pub async fn start(
        entra: &MockEntra,
        tenant: &TenantId,
        audience: &str,
        handler: impl Fn(&ResourceRequest, &Claims) -> ResourceResponse + Send + Sync + 'static,
    ) -> Self {
        let checker = Arc::new(Checker {
            entra: entra.clone(),
            tenant_guid: entra.tenant_guid(tenant),
            audience: audience.to_owned(),
            accepted: Arc::default(),
            handler: Box::new(handler),
        });
        let accepted = checker.accepted.clone();
        let (shutdown, address) = serve(checker)
            .unwrap_or_else(|e| panic!("MockResource: no loopback port to listen on: {e}"));
        Self {
            address,
            accepted,
            shutdown,
        }
    }

    /// Its base URL, `http://127.0.0.1:{port}` (no trailing slash).
    pub fn uri(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The same URL as `https://`, for official SDK clients (they refuse http); give
    /// them [`loopback_transport`](crate::loopback_transport) to reach it.
    pub fn https_uri(&self) -> String {
        format!("https://{}", self.address)
    }

    /// The claims of every token it accepted, oldest first.
    pub fn accepted(&self) -> Vec<Claims> {
        self.accepted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Serves `checker` on a fresh loopback port until the sender is dropped or sends.
pub(crate) fn serve(
    checker: Arc<dyn Respond>,
) -> std::io::Result<(watch::Sender<bool>, SocketAddr)> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let (shutdown, mut stopped) = watch::channel(false);
    let _guard = runtime().enter();
    let listener = tokio::net::TcpListener::from_std(listener)?;
    runtime().spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stopped.changed() => break,
            };
            let Ok((stream, _)) = accepted else {
                // Out of file descriptors or similar: back off a little and go on.
                #[allow(clippy::disallowed_methods)]
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let checker = checker.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let checker = checker.clone();
                    async move { Ok::<_, Infallible>(handle(&*checker, address, request).await) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = stopped.changed() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
            });
        }
    });
    Ok((shutdown, address))
}

async fn handle(
    checker: &dyn Respond,
    address: SocketAddr,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY).collect().await else {
        return ResourceResponse::new(413)
            .set_body_string("the request body is too large or could not be read")
            .into_hyper();
    };
    let host = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| address.to_string(), str::to_owned);
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(url) = Url::parse(&format!("http://{host}{path}")) else {
        return ResourceResponse::new(400)
            .set_body_string("the request target is not a URL")
            .into_hyper();
    };
    let request = ResourceRequest {
        method: parts.method.as_str().to_owned(),
        url,
        headers: parts
            .headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_bytes().to_vec(),
    };
    checker.respond(&request).await.into_hyper()
}

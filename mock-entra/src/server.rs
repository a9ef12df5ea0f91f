//! The HTTP(S) server under every mock: hyper (HTTP/1.1 and h2) on one process-wide
//! multi-threaded runtime, so a mock uses every core whatever runtime its test runs on.
//! Request bodies are capped and dropped once answered; nothing is kept per request but
//! the bounded, secret-free request log.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::watch;

use crate::clock::OffsetClock;
use crate::clock::SharedClock;
use crate::hosts::ServedHosts;
use crate::state::{Directory, RequestLog};
use crate::wire::{MockRequest, Reply};

/// Request bodies above this are refused with 413 (a certificate assertion with its
/// chain is a few KB; scenario documents with certificates some hundred KB).
pub(crate) const MAX_BODY: usize = 4 * 1024 * 1024;

/// The state every connection of one mock shares.
pub(crate) struct Shared {
    /// Host names requests may name (anything else is refused: DNS rebinding).
    pub(crate) served: ServedHosts,
    /// The name of the browser session cookie (per port: cookies ignore ports).
    pub(crate) cookie_name: String,
    dir: Mutex<Directory>,
    log: Mutex<RequestLog>,
    /// The advertised origin with a trailing slash (`https://127.0.0.1:8443/`).
    pub(crate) base: String,
    /// `host:port` names instance discovery knows (the advertised one first).
    pub(crate) hosts: Vec<String>,
    pub(crate) tls: bool,
    /// Unknown parameters are refused (the default) or ignored (`--loose`).
    pub(crate) strict: bool,
    /// The mock's own clock, when it has one (the control API can advance it).
    pub(crate) own_clock: Option<Arc<OffsetClock>>,
    pub(crate) clock: SharedClock,
    /// The resolved startup scenario, replayed by `reset`.
    pub(crate) startup: Mutex<Option<serde_json::Value>>,
    /// Names scenarios gave, and what they set up.
    names: Mutex<crate::scenario::Names>,
    /// One line per request on stderr.
    pub(crate) access_log: bool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The startup scenario and the setup hold secrets and private keys: never shown.
        f.debug_struct("Shared")
            .field("base", &self.base)
            .field("tls", &self.tls)
            .field("strict", &self.strict)
            .field("dir", &*self.dir())
            .finish_non_exhaustive()
    }
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        served: ServedHosts,
        cookie_name: String,
        dir: Directory,
        log_limit: usize,
        base: String,
        hosts: Vec<String>,
        tls: bool,
        strict: bool,
        own_clock: Option<Arc<OffsetClock>>,
        access_log: bool,
    ) -> Self {
        let clock = dir.clock.clone();
        Self {
            served,
            cookie_name,
            dir: Mutex::new(dir),
            log: Mutex::new(RequestLog::new(log_limit)),
            base,
            hosts,
            tls,
            strict,
            own_clock,
            clock,
            startup: Mutex::new(None),
            names: Mutex::default(),
            access_log,
        }
    }

    pub(crate) fn dir(&self) -> MutexGuard<'_, Directory> {
        self.dir.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn log(&self) -> MutexGuard<'_, RequestLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn names(&self) -> MutexGuard<'_, crate::scenario::Names> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
    }
}

/// The runtime every mock in this process serves on: one worker per core.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("mock-entra")
            .enable_all()
            .build()
            .expect("the mock's runtime could not start")
    })
}

/// A running server; dropping it stops accepting and closes its connections.
#[derive(Debug)]
pub(crate) struct Server {
    shutdown: watch::Sender<bool>,
    /// Connections open now, and the listener until it closes (each connection finishes
    /// its request in flight, then closes, once `shutdown` is sent).
    open: watch::Receiver<usize>,
    pub(crate) address: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

impl Server {
    /// Stops accepting; connections finish their request in flight, then close (idle ones
    /// close at once).
    pub(crate) fn stop(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Waits until the listener and every connection are closed, or `grace` has passed.
    /// Returns the connections still open at the deadline (0: a clean drain).
    pub(crate) async fn closed(&self, grace: std::time::Duration) -> usize {
        let mut open = self.open.clone();
        // Real time: a deadline for real clients' requests, whatever the mock's clock says.
        #[allow(clippy::disallowed_methods)]
        let drained = tokio::time::timeout(grace, open.wait_for(|n| *n == 0)).await;
        match drained {
            Ok(_) => 0,
            Err(_) => *self.open.borrow(),
        }
    }
}

/// Counts a connection open for as long as it lives.
struct OpenConnection(Arc<watch::Sender<usize>>);

impl OpenConnection {
    fn new(count: &Arc<watch::Sender<usize>>) -> Self {
        count.send_modify(|n| *n += 1);
        Self(count.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Serves `shared` on `listener` (TLS when `tls` is given).
pub(crate) fn spawn(
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shared: Arc<Shared>,
) -> std::io::Result<Server> {
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let (shutdown, mut stopped) = watch::channel(false);
    let (count, open) = watch::channel(0usize);
    let count = Arc::new(count);
    let _guard = runtime().enter();
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    // The listener counts as open until it is dropped: closed() means no new connection.
    let listening = OpenConnection::new(&count);
    runtime().spawn(async move {
        let _listening = listening;
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stopped.changed() => break,
            };
            let Ok((stream, _)) = accepted else {
                // Out of file descriptors or similar: back off a little and go on. The
                // server answers real clients, so it waits in real time.
                #[allow(clippy::disallowed_methods)]
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let open = OpenConnection::new(&count);
            let (acceptor, shared, stopped) = (acceptor.clone(), shared.clone(), stopped.clone());
            tokio::spawn(async move {
                connection(stream, acceptor, shared, stopped).await;
                drop(open);
            });
        }
    });
    Ok(Server {
        shutdown,
        open,
        address,
    })
}

async fn connection(
    stream: tokio::net::TcpStream,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    stopped: watch::Receiver<bool>,
) {
    match acceptor {
        None => serve(TokioIo::new(stream), shared, stopped).await,
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream));
            if let Ok(Ok(tls)) = handshake.await {
                serve(TokioIo::new(tls), shared, stopped).await;
            }
        }
    }
}

async fn serve<I>(io: TokioIo<I>, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| handle(shared.clone(), request));
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    // A connection accepted just before the stop sees it at once.
    if *stopped.borrow_and_update() {
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
        return;
    }
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Refuses a request before its body is read: a host the mock does not serve (421), or
/// a declared body over [`MAX_BODY`] (413).
fn refuse_early(shared: &Shared, parts: &hyper::http::request::Parts) -> Option<Reply> {
    let authority = parts.uri.authority().map(|a| a.as_str()).or_else(|| {
        parts
            .headers
            .get(hyper::header::HOST)
            .and_then(|v| v.to_str().ok())
    });
    if !authority.is_some_and(|a| shared.served.allows(a)) {
        let named = authority.map_or_else(
            || "no host".to_owned(),
            |a| format!("{:?}", crate::error::echo(a)),
        );
        return Some(Reply::json(
            421,
            &serde_json::json!({
                "error": "misdirected_request",
                "error_description": format!(
                    "MockEntra answers requests for {}; this one named {named}. A web page that points its own name at this machine (DNS rebinding) is refused here; for a proxy or container name, start mock-entra with --public-url URL or --allow-host NAME (MockEntraBuilder::public_url, allow_host).",
                    shared.served.describe()
                ),
            }),
        ));
    }
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Some(too_large());
    }
    None
}

fn too_large() -> Reply {
    Reply::json(
        413,
        &serde_json::json!({"error": "invalid_request", "error_description": format!("The request body is over {MAX_BODY} bytes.")}),
    )
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // The mock serves real clients over real sockets: a scripted latency is real time
    // (the mock's clock decides token lifetimes, not how long an answer takes), and the
    // access log reports real durations. These are the one OK usage of real time here.
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    // Refused before reading the body: whatever was sent of it stays unread, so the
    // connection cannot carry another request.
    let close = |reply: Reply| {
        if parts.version <= hyper::Version::HTTP_11 {
            reply.header("connection", "close")
        } else {
            reply
        }
    };
    if let Some(reply) = refuse_early(&shared, &parts) {
        return Ok(respond(&shared, close(reply)));
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let too_large_body = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            let reply = if too_large_body {
                too_large()
            } else {
                Reply::json(
                    400,
                    &serde_json::json!({"error": "invalid_request", "error_description": "The request body could not be read."}),
                )
            };
            return Ok(respond(&shared, close(reply)));
        }
    };
    let path = parts.uri.path().to_owned();
    let request = MockRequest {
        segments: path
            .trim_start_matches('/')
            .split('/')
            .map(str::to_owned)
            .collect(),
        query: parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default(),
        method: parts.method,
        headers: parts.headers,
        path,
        body,
    };
    let reply = crate::endpoints::route(&shared, &request);
    if !reply.delay.is_zero() {
        #[allow(clippy::disallowed_methods)] // real latency for real clients (see above)
        tokio::time::sleep(reply.delay).await;
    }
    if shared.access_log && request.path != "/_mock/health" {
        eprintln!(
            "mock-entra: {} {} -> {} ({} ms)",
            request.method,
            crate::error::echo(&request.path),
            reply.status,
            started.elapsed().as_millis()
        );
    }
    Ok(respond(&shared, reply))
}

/// The hyper response, with the headers every answer carries.
fn respond(shared: &Shared, mut reply: Reply) -> Response<Full<Bytes>> {
    if !reply.has_header("x-ms-request-id") {
        reply = reply.header("x-ms-request-id", &uuid::Uuid::new_v4().to_string());
    }
    reply = reply.header("x-content-type-options", "nosniff");
    if shared.tls {
        reply = reply.header(
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        );
    }
    let mut response = Response::new(Full::new(reply.body));
    *response.status_mut() = hyper::StatusCode::from_u16(reply.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in reply.headers {
        headers.append(name, value);
    }
    response
}

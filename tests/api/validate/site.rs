//! A tiny loopback web site for the fetch tests: canned JSON, redirects and silence on
//! chosen paths, over http or https (a self-signed certificate for 127.0.0.1), recording
//! every path asked. It plays an authority whose metadata lies, or the host a redirect or
//! a `jwks_uri` points at.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;

/// What the site answers on a path.
#[derive(Clone)]
pub enum Reply {
    Json(String),
    Redirect(String),
    /// Accepts the request and never answers.
    Silence,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Reply>,
    asked: Vec<String>,
}

pub struct Site {
    base: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

/// The certificate an https site presents, to be trusted by a test's client.
pub struct Tls {
    pub cert_pem: String,
    config: Arc<rustls::ServerConfig>,
}

impl Tls {
    pub fn for_loopback() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .unwrap();
        Self {
            cert_pem: certified.cert.pem(),
            config: Arc::new(config),
        }
    }

    /// A client trusting this certificate.
    pub fn client(&self) -> azure_cross_tenant::HttpClient {
        azure_cross_tenant::HttpClient::from_builder(
            reqwest::Client::builder().add_root_certificate(
                reqwest::Certificate::from_pem(self.cert_pem.as_bytes()).unwrap(),
            ),
        )
        .unwrap()
    }
}

impl Site {
    pub async fn http() -> Self {
        Self::start(None).await
    }

    pub async fn https(tls: &Tls) -> Self {
        Self::start(Some(tokio_rustls::TlsAcceptor::from(tls.config.clone()))).await
    }

    async fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(Mutex::new(State::default()));
        let served = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = served.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, state).await;
                            }
                        }
                        None => serve(stream, state).await,
                    }
                });
            }
        });
        Self {
            base: format!("{scheme}://{addr}/"),
            state,
            task,
        }
    }

    /// `scheme://127.0.0.1:port/`
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn route(&self, path: &str, reply: Reply) {
        self.state
            .lock()
            .unwrap()
            .routes
            .insert(path.to_owned(), reply);
    }

    /// Every path asked, in order.
    pub fn asked(&self) -> Vec<String> {
        self.state.lock().unwrap().asked.clone()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, state: Arc<Mutex<State>>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 64 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&request);
    let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
    let reply = {
        let mut state = state.lock().unwrap();
        state.asked.push(path.clone());
        state.routes.get(&path).cloned()
    };
    let response = match reply {
        Some(Reply::Json(body)) => format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
        Some(Reply::Redirect(to)) => format!(
            "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        ),
        Some(Reply::Silence) => {
            // Hold the connection open until the client gives up.
            let _ = stream.read(&mut buf).await;
            return;
        }
        None => {
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
        }
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

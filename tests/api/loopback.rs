//! Small loopback HTTP servers for what `MockEntra` cannot play: an authority that
//! redirects, the place a redirect points at, a proxy, an endpoint that accepts a
//! connection and never answers. Each records every request it receives, raw.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

/// What a server answers to a request (given raw): a whole HTTP/1.1 response, or `None`
/// to hold the connection open and never answer.
type Respond = dyn Fn(&str) -> Option<String> + Send + Sync;

pub struct Loopback {
    url: Url,
    requests: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Loopback {
    /// A server answering each request with `respond`'s response, one request per
    /// connection.
    pub async fn start(respond: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let respond: Arc<Respond> = Arc::new(respond);
        let (seen, count) = (requests.clone(), connections.clone());
        let task = tokio::spawn(async move {
            // Dropped with this task: every connection it serves ends too.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (seen, respond) = (seen.clone(), respond.clone());
                connections.spawn(serve(stream, seen, respond));
            }
        });
        Self {
            url,
            requests,
            connections,
            task,
        }
    }

    /// A server that accepts connections, reads what comes, and never answers (a silent
    /// managed identity endpoint: the tests of the `azure-core` feature).
    #[cfg(feature = "azure-core")]
    pub async fn silent() -> Self {
        Self::start(|_| None).await
    }

    /// A server answering every request with `status` and a `Location` header.
    pub async fn redirecting(status: u16, location: &str) -> Self {
        let location = location.to_owned();
        Self::start(move |_| {
            Some(format!(
                "HTTP/1.1 {status} Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ))
        })
        .await
    }

    /// A server answering every request with `status`, `headers` (each `Name: value`)
    /// and a JSON `body`.
    pub async fn answering(status: u16, headers: &[&str], body: &str) -> Self {
        let mut head = format!("HTTP/1.1 {status} Answer\r\n");
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        let response = format!(
            "{head}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        Self::start(move |_| Some(response.clone())).await
    }

    pub fn url(&self) -> Url {
        self.url.clone()
    }

    /// Every request received so far, raw (head and body).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Vec<String>>>, respond: Arc<Respond>) {
    let request = read_request(&mut stream).await;
    if !request.is_empty() {
        seen.lock().unwrap().push(request.clone());
    }
    match respond(&request) {
        Some(response) => {
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        // Hold the connection open, reading whatever else comes, until the peer leaves.
        None => {
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        }
    }
}

/// One request: the head, then as many body bytes as `Content-Length` says.
async fn read_request(stream: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut buf).await {
            Ok(n) if n > 0 => raw.extend_from_slice(&buf[..n]),
            _ => return String::from_utf8_lossy(&raw).into_owned(),
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while raw.len() < head_end + length {
        match stream.read(&mut buf).await {
            Ok(n) if n > 0 => raw.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&raw).into_owned()
}

//! `azure_core` transports for tests: official Azure SDK clients insist on https and on
//! the real IMDS address; these send their requests to loopback mocks instead.

use std::sync::Arc;

use azure_core::http::{AsyncRawResponse, HttpClient, Request, Transport};
use url::Url;

#[derive(Debug)]
struct Rewrite {
    http: reqwest::Client,
    /// Where every request goes instead (host and port); `None` keeps the request's own.
    target: Option<Url>,
}

#[async_trait::async_trait]
impl HttpClient for Rewrite {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let mut request = request.clone();
        let url = request.url_mut();
        let _ = url.set_scheme("http");
        if let Some(target) = &self.target {
            let _ = url.set_host(target.host_str());
            let _ = url.set_port(target.port());
        }
        self.http.execute_request(&request).await
    }
}

/// The client of these transports, which send plain http only: it trusts no certificate,
/// so reqwest does not read and parse the system's trust store for it.
fn http_only() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only(Vec::new())
        .build()
        .expect("reqwest builds a client without TLS roots")
}

/// A transport sending `https://127.0.0.1:{port}/...` as plain http, for SDK clients
/// pointed at a loopback mock (the SDK refuses to send bearer tokens over http).
/// Feature `azure-core` (on by default).
pub fn loopback_transport() -> Transport {
    Transport::new(Arc::new(Rewrite {
        http: http_only(),
        target: None,
    }))
}

impl crate::MockEntra {
    /// A transport sending every request to this mock over http: give it to
    /// `azure_identity::ManagedIdentityCredential` (its `client_options.transport`) and
    /// its IMDS requests to `169.254.169.254` reach the mock's IMDS endpoint.
    pub fn managed_identity_transport(&self) -> Transport {
        Transport::new(Arc::new(Rewrite {
            http: http_only(),
            target: Some(self.uri()),
        }))
    }
}

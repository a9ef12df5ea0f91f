//! [`MockEntraBuilder`]: clock, listener, https, public URL, strictness, startup scenario.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;

use serde_json::Value;
use url::Url;

use crate::clock::OffsetClock;
use crate::clock::SharedClock;
use crate::hosts::ServedHosts;
use crate::server::{self, Shared};
use crate::state::{Directory, log::DEFAULT_LIMIT};
use crate::tls::Authority;
use crate::{MockEntra, MockError};
use azure_cross_tenant::Clock;

/// Builds a [`MockEntra`]: clock, listener, https, public URL, strictness, scenario.
///
/// ```
/// use mock_entra::MockEntra;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let entra = MockEntra::builder().tls().start().await;
/// assert_eq!(entra.uri().scheme(), "https");
/// assert!(entra.ca_pem().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
/// # }
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until `start()`"]
pub struct MockEntraBuilder {
    clock: Option<SharedClock>,
    listener: Option<TcpListener>,
    tls: bool,
    #[cfg(feature = "custom-ca")]
    ca: Option<(String, String)>,
    public_url: Option<Url>,
    strict: bool,
    scenario: Option<Value>,
    request_log_limit: usize,
    access_log: bool,
    allowed_hosts: Vec<String>,
}

impl Default for MockEntraBuilder {
    fn default() -> Self {
        Self {
            clock: None,
            listener: None,
            tls: false,
            #[cfg(feature = "custom-ca")]
            ca: None,
            public_url: None,
            strict: true,
            scenario: None,
            request_log_limit: DEFAULT_LIMIT,
            access_log: false,
            allowed_hosts: Vec::new(),
        }
    }
}

impl MockEntraBuilder {
    /// The clock stamping `iat`/`exp`, deciding secret expiry and key rollover (e.g. the
    /// library's `ManualClock`, feature `test-util`, shared with the code under test).
    /// Defaults to the mock's own clock: real time, moved forward by
    /// [`advance_clock`](MockEntra::advance_clock) and `POST /_mock/clock`.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Serves on this listener (e.g. bound to a fixed port). Defaults to a free port on
    /// 127.0.0.1.
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Serves https with a server certificate from the process's test CA (generated once;
    /// [`MockEntra::ca_pem`] gives it to clients). Defaults to plain http.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Serves https with server certificates signed by this CA (PEM certificate and PKCS#8
    /// private key). Defaults to a CA generated once per process. Feature `custom-ca` (on
    /// by default).
    #[cfg(feature = "custom-ca")]
    pub fn ca(mut self, cert_pem: &str, key_pem: &str) -> Self {
        self.tls = true;
        self.ca = Some((cert_pem.to_owned(), key_pem.to_owned()));
        self
    }

    /// The origin to advertise (issuers, metadata URLs, the `aud` of certificate
    /// assertions) when clients reach the mock through a proxy or a container port.
    /// Defaults to the origin the mock listens on.
    pub fn public_url(mut self, url: Url) -> Self {
        self.public_url = Some(url);
        self
    }

    /// Ignores request parameters the mock does not know, instead of answering them with
    /// `invalid_request` (strict is the default).
    pub fn loose(mut self) -> Self {
        self.strict = false;
        self
    }

    /// A scenario (the `mock-entra --config` document) applied at start and again by
    /// [`reset`](MockEntra::reset). Defaults to none.
    pub fn scenario(mut self, scenario: Value) -> Self {
        self.scenario = Some(scenario);
        self
    }

    /// How many requests the log keeps (counters count all). Defaults to 10,000.
    pub fn request_log_limit(mut self, limit: usize) -> Self {
        self.request_log_limit = limit;
        self
    }

    /// Prints one line per request on stderr (never bodies). Defaults to off.
    pub fn access_log(mut self, on: bool) -> Self {
        self.access_log = on;
        self
    }

    /// Also answers requests that name `host` (a host name for any port, or `host:port`)
    /// in their `Host` header: a name a proxy or another container uses. The mock always
    /// answers its loopback names (`127.0.0.1`, `localhost`, `[::1]`) on its port, the
    /// address it listens on and the [public URL](Self::public_url)'s host; a request
    /// naming any other host gets 421, so a web page cannot reach it by DNS rebinding.
    /// The binary's `--allow-host`.
    pub fn allow_host(mut self, host: &str) -> Self {
        self.allowed_hosts.push(host.to_owned());
        self
    }

    /// Starts the server.
    ///
    /// # Panics
    /// If it cannot listen, the CA is unusable or the scenario is invalid; see
    /// [`try_start`](Self::try_start).
    pub async fn start(self) -> MockEntra {
        self.try_start()
            .unwrap_or_else(|e| panic!("MockEntra could not start: {e}"))
    }

    /// Starts the server, or says why it cannot.
    pub fn try_start(self) -> Result<MockEntra, MockError> {
        let io = |e: std::io::Error| MockError::invalid(format!("cannot listen: {e}"));
        let listener = match self.listener {
            Some(l) => l,
            None => TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io)?,
        };
        let address = listener.local_addr().map_err(io)?;
        let scheme = if self.tls { "https" } else { "http" };
        let served = served_origin(scheme, address)?;
        let base = match &self.public_url {
            Some(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                let mut url = url.clone();
                url.set_query(None);
                url.set_fragment(None);
                let text = url.as_str().trim_end_matches('/').to_owned() + "/";
                Url::parse(&text).map_err(|e| MockError::invalid(format!("public URL: {e}")))?
            }
            Some(url) => {
                return Err(MockError::invalid(format!(
                    "public URL {url} is not an http(s) URL"
                )));
            }
            None => served.clone(),
        };
        let mut hosts = vec![host_port(&base)];
        if host_port(&served) != hosts[0] {
            hosts.push(host_port(&served));
        }
        let (clock, own_clock): (SharedClock, _) = match self.clock {
            Some(c) => (c, None),
            None => {
                let own = Arc::new(OffsetClock::default());
                (own.clone(), Some(own))
            }
        };
        let (tls, ca_pem) = if self.tls {
            #[cfg(feature = "custom-ca")]
            let authority = match &self.ca {
                Some((cert, key)) => Arc::new(Authority::from_pem(cert, key)?),
                None => Authority::shared(),
            };
            #[cfg(not(feature = "custom-ca"))]
            let authority = Authority::shared();
            let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
            names.extend(
                [served.host_str(), base.host_str()]
                    .into_iter()
                    .flatten()
                    .map(str::to_owned),
            );
            (
                Some(authority.server_config(&names)?),
                Some(Arc::from(authority.cert_pem.as_str())),
            )
        } else {
            (None, None)
        };
        let served_hosts = ServedHosts::new(address.port(), &served, &base, &self.allowed_hosts)?;
        let cookie_name = format!("mock_entra_session_{}", address.port());
        let dir = Directory::new(clock);
        let shared = Arc::new(Shared::new(
            served_hosts,
            cookie_name,
            dir,
            self.request_log_limit,
            base.to_string(),
            hosts,
            self.tls,
            self.strict,
            own_clock,
            self.access_log,
        ));
        let server = server::spawn(listener, tls, shared.clone()).map_err(io)?;
        let entra = MockEntra {
            server: Arc::new(server),
            shared,
            uri: base,
            ca_pem,
        };
        if let Some(scenario) = self.scenario {
            entra.apply_startup_scenario(&scenario)?;
        }
        Ok(entra)
    }
}

/// `{scheme}://{ip}:{port}/` for the listening address (a wildcard address is served as
/// loopback).
fn served_origin(scheme: &str, address: SocketAddr) -> Result<Url, MockError> {
    let ip = match address.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let text = format!("{scheme}://{}/", SocketAddr::new(ip, address.port()));
    Url::parse(&text).map_err(|e| MockError::invalid(format!("{text}: {e}")))
}

fn host_port(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => String::new(),
    }
}

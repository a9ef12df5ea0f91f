//! The host names a mock answers to. A request naming any other host is refused (421
//! Misdirected Request) before it reaches an endpoint: a web page that points its own DNS
//! name at 127.0.0.1 (DNS rebinding) reaches the mock with that name in `Host`, and so
//! can neither read a secret nor script the mock.

use url::Url;

use crate::MockError;

/// Loopback names the mock always answers to, on its own port.
const LOOPBACK: &[&str] = &["127.0.0.1", "localhost", "[::1]"];

/// Served names: (lower-cased host, the port it is served on; `None`: any port).
#[derive(Debug, Clone)]
pub(crate) struct ServedHosts {
    names: Vec<(String, Option<u16>)>,
}

impl ServedHosts {
    /// The loopback names and the address the mock listens on (with `port`), the public
    /// URL's host (with its port), and `extra` names (`host` for any port, or `host:port`).
    pub(crate) fn new(
        port: u16,
        served: &Url,
        public: &Url,
        extra: &[String],
    ) -> Result<Self, MockError> {
        let mut names: Vec<(String, Option<u16>)> = LOOPBACK
            .iter()
            .map(|h| ((*h).to_owned(), Some(port)))
            .collect();
        for url in [served, public] {
            if let Some(host) = url.host_str() {
                names.push((host.to_ascii_lowercase(), url.port_or_known_default()));
            }
        }
        for name in extra {
            let parsed = split(name)
                .filter(|(host, _)| !host.is_empty())
                .ok_or_else(|| {
                    MockError::invalid(format!(
                        "allowed host {name:?} is not a host name or host:port"
                    ))
                })?;
            names.push(parsed);
        }
        names.dedup();
        Ok(Self { names })
    }

    /// Whether a request naming `authority` (its `Host` header, or the h2 `:authority`)
    /// is for this mock: a served host name; when it names a port, the one that host is
    /// served on (without a port, e.g. through a proxy, the host decides).
    pub(crate) fn allows(&self, authority: &str) -> bool {
        let Some((host, port)) = split(authority) else {
            return false;
        };
        self.names.iter().any(|(name, served_port)| {
            *name == host && (port.is_none() || served_port.is_none() || port == *served_port)
        })
    }

    /// The served names, for messages: `127.0.0.1:8080, localhost:8080, ...`.
    pub(crate) fn describe(&self) -> String {
        self.names
            .iter()
            .map(|(host, port)| match port {
                Some(p) => format!("{host}:{p}"),
                None => host.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `host[:port]` (IPv6 in brackets) as (lower-cased host, port); `None` when malformed.
fn split(authority: &str) -> Option<(String, Option<u16>)> {
    let a = authority.trim();
    let (host, rest) = if a.starts_with('[') {
        let end = a.find(']')? + 1;
        a.split_at(end)
    } else {
        a.split_at(a.find(':').unwrap_or(a.len()))
    };
    let port = match rest {
        "" => None,
        rest => Some(rest.strip_prefix(':')?.parse::<u16>().ok()?),
    };
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b);
    if host.is_empty() || !host.bytes().all(allowed) {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(public: &str, extra: &[&str]) -> ServedHosts {
        let served = Url::parse("http://127.0.0.1:8080/").unwrap();
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        ServedHosts::new(8080, &served, &Url::parse(public).unwrap(), &extra).unwrap()
    }

    #[test]
    fn loopback_names_on_its_port_and_the_public_host_are_served() {
        let h = hosts("https://login.mock.example:8443/", &[]);
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "[::1]:8080",
            "localhost",
            "login.mock.example:8443",
            "login.mock.example",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1:8081",
            "login.mock.example:443",
            "localhost.evil.example:8080",
            "user@127.0.0.1:8080",
            "",
            "127.0.0.1:notaport",
        ] {
            assert!(!h.allows(refused), "{refused}");
        }
    }

    #[test]
    fn extra_names_are_served_on_their_port_or_any() {
        let h = hosts(
            "http://127.0.0.1:8080/",
            &["mock-entra", "proxy.example:443"],
        );
        assert!(h.allows("mock-entra:9999") && h.allows("mock-entra"));
        assert!(h.allows("proxy.example:443") && !h.allows("proxy.example:444"));
        assert!(h.describe().contains("mock-entra, proxy.example:443"));
        let served = Url::parse("http://127.0.0.1:8080/").unwrap();
        assert!(ServedHosts::new(8080, &served, &served, &["a b".into()]).is_err());
    }
}

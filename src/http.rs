//! What every outbound request shares: the HTTP client, which never follows a redirect,
//! sending that refuses one all the same, capped body reads and bounded header values.
//!
//! Token, assertion, metadata and key requests all go through here, so a rule about
//! what may leave the process or how much may come back is written once.
//!
//! Every request goes only to the URL it names. A `reqwest::Client` that follows
//! redirects (the default of `reqwest::Client::new()`) sends a GET to the redirect's
//! target before its caller sees the answer, and reqwest has no per-request switch; so
//! this crate never sends through a client it did not build: callers hand it client
//! settings ([`HttpClient::from_builder`]) and it builds the client with redirects off.
//! [`send_no_redirect`] refuses any 3xx answer, or one from another URL, as a second
//! line; and a form carrying a credential goes as a one-shot body ([`one_shot_form`])
//! that reqwest cannot replay.

use std::fmt;
use std::time::Duration;

use crate::error::Error;

/// Answers larger than this are not Entra's; reading stops there.
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// The connect timeout of clients built without the caller's settings.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP client a credential or a validator sends its requests with: built by this
/// crate, from your settings if you have some, always with redirects off, so every
/// request goes only to the URL it names (a token endpoint, a tenant's metadata, its
/// keys), never to a host a redirect points at.
///
/// Build one to share connections, proxy and TLS settings (a private CA, a corporate
/// proxy) across credentials and validators; cloning it shares the connection pool.
///
/// ```
/// use azure_cross_tenant::{ClientSecret, HttpClient};
///
/// let http = HttpClient::from_builder(
///     reqwest::Client::builder()
///         .pool_idle_timeout(std::time::Duration::from_secs(30))
///         // Whatever the builder says about redirects, none is followed.
///         .redirect(reqwest::redirect::Policy::limited(10)),
/// )?;
/// let credential = ClientSecret::new("11111111-2222-3333-4444-555555555555", "secret")
///     .http_client(http.clone())
///     .build()?;
/// # Ok::<(), azure_cross_tenant::Error>(())
/// ```
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    /// Built from the caller's settings (for `Debug`).
    custom: bool,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field(
                "settings",
                &if self.custom { "caller's" } else { "default" },
            )
            .field("redirects", &"never followed")
            .finish()
    }
}

impl HttpClient {
    /// A client with this crate's defaults: no redirects, a 5 s connect timeout, proxies
    /// from the environment.
    ///
    /// # Errors
    /// [`Error::InvalidConfiguration`] if reqwest cannot build it (no TLS backend).
    pub fn new() -> Result<Self, Error> {
        Self::build(
            reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT),
            false,
        )
    }

    /// A client from `builder`'s settings (roots, proxy, timeouts, pool), with redirects
    /// turned off whatever the builder says.
    ///
    /// # Errors
    /// [`Error::InvalidConfiguration`] if reqwest cannot build it.
    pub fn from_builder(builder: reqwest::ClientBuilder) -> Result<Self, Error> {
        Self::build(builder, true)
    }

    fn build(builder: reqwest::ClientBuilder, custom: bool) -> Result<Self, Error> {
        let client = builder
            // Last: a setting the caller made cannot turn redirects back on.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                Error::InvalidConfiguration(format!("could not build the HTTP client: {e}"))
            })?;
        Ok(Self { client, custom })
    }

    /// The reqwest client, redirects off.
    pub(crate) fn reqwest(&self) -> &reqwest::Client {
        &self.client
    }
}

impl TryFrom<reqwest::ClientBuilder> for HttpClient {
    type Error = Error;

    fn try_from(builder: reqwest::ClientBuilder) -> Result<Self, Error> {
        Self::from_builder(builder)
    }
}

/// The client built when the caller passes none for requests to `authority`: no
/// redirects (a token request that followed one could carry the form to another host), a
/// bounded connect time. A plain-http authority (allowed on loopback only, for a mock)
/// never goes through a proxy from the environment: the form would reach it in clear.
/// Nor does its client trust any certificate: it has no https host to reach, and reqwest
/// would otherwise read and parse the system's whole trust store for it, which a test
/// suite building a credential per test against a mock pays every time (in a debug
/// build, a third of the CPU of this crate's own API tests).
pub(crate) fn default_client(authority: &url::Url) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT);
    if authority.scheme() == "http" {
        builder = builder
            .no_proxy()
            .tls_certs_only(Vec::<reqwest::Certificate>::new());
    }
    HttpClient::build(builder, false).map(|c| c.client)
}

/// Why [`send_no_redirect`] has no answer to give.
pub(crate) enum SendError {
    /// The request failed (connect, timeout, TLS...).
    Transport(reqwest::Error),
    /// The answer was a redirect (3xx), or came from another URL than the one asked: a
    /// caller's client followed a redirect. Nothing of that answer is used.
    Redirected {
        /// Where it pointed (scheme, host and port only).
        to: String,
    },
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => e.fmt(f),
            Self::Redirected { to } => write!(
                f,
                "the server redirected to {to}; redirects are never followed"
            ),
        }
    }
}

/// Sends `request` and refuses any redirect: a 3xx answer, or an answer whose final URL
/// is not the one asked. Every client this crate sends with has redirects off, so this is
/// the second line: nothing was followed, and the redirect's answer is not used.
pub(crate) async fn send_no_redirect(
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, SendError> {
    let (client, request) = request.build_split();
    let request = request.map_err(SendError::Transport)?;
    let asked = request.url().clone();
    let response = client
        .execute(request)
        .await
        .map_err(SendError::Transport)?;
    if response.status().is_redirection() {
        let to = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| asked.join(l).ok())
            .map_or_else(|| "(no location)".to_owned(), |u| origin_of(&u));
        return Err(SendError::Redirected { to });
    }
    if response.url() != &asked {
        return Err(SendError::Redirected {
            to: origin_of(response.url()),
        });
    }
    Ok(response)
}

/// `scheme://host:port` of `url`: enough to say where, without paths or queries that
/// could carry anything sensitive.
fn origin_of(url: &url::Url) -> String {
    crate::error::echo(&url.origin().ascii_serialization())
}

pub(crate) fn header_str(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128)
        .map(str::to_owned)
}

/// Why a capped body read failed.
pub(crate) enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads a response body, refusing more than [`MAX_BODY`] bytes (by header or as it streams).
pub(crate) async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(crate) fn describe_non_json(body: &[u8]) -> String {
    if body.iter().all(u8::is_ascii_whitespace) {
        "the body is empty".into()
    } else {
        "the body is not JSON".into()
    }
}

/// `form` as an `application/x-www-form-urlencoded` body that can be sent once only:
/// reqwest replays only bodies it can clone, so even a client that follows redirects
/// cannot send this one on to a 307 or 308 target. Its length is known, so it still goes
/// with a `Content-Length`. Every form that carries a secret or an assertion goes so.
pub(crate) fn one_shot_form(
    request: reqwest::RequestBuilder,
    form: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    request
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(reqwest::Body::wrap(encoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_shot_form_cannot_be_cloned_for_a_replay() {
        let client = reqwest::Client::new();
        let request = one_shot_form(
            client.post("http://127.0.0.1:9/token"),
            &[
                ("client_secret", "s&=?"),
                ("scope", "https://vault.azure.net/.default"),
            ],
        )
        .build()
        .unwrap();
        assert!(request.try_clone().is_none(), "reqwest could replay it");
        assert_eq!(
            request.headers()[reqwest::header::CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
    }
}

//! What every outbound request shares: the HTTP client without redirects, sending without
//! ever following one, capped body reads and bounded header values.
//!
//! Token, assertion, metadata and key requests all go through here, so a rule about
//! what may leave the process or how much may come back is written once.
//!
//! A caller may hand us any `reqwest::Client`, including one that follows redirects (the
//! default of `reqwest::Client::new()`). So the rule "nothing follows a redirect" cannot
//! live in the client: [`send_no_redirect`] enforces it per request. A form carrying a
//! credential goes as a one-shot body ([`one_shot_form`]) that reqwest cannot replay,
//! so a 307 or 308 cannot carry it elsewhere; and any 3xx answer, or an answer that came
//! from another URL than the one asked, is refused before its body is read.

use std::time::Duration;

use url::Url;

use crate::error::Error;

/// Answers larger than this are not Entra's; reading stops there.
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// The client built when the caller passes none: no redirects (a token request that
/// followed one could carry the form to another host), a bounded connect time.
pub(crate) fn default_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::InvalidConfiguration(format!("could not build the HTTP client: {e}")))
}

/// Why a request sent by [`send_no_redirect`] brought no answer to use.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The server answered with a redirect, or the answer came from another URL than the
    /// one asked (the caller's client followed a redirect without the request's body).
    /// Nothing carrying a credential was sent there.
    Redirected {
        /// The HTTP status of the answer.
        status: u16,
        /// Where the redirect pointed (cut for messages), if it said.
        location: Option<String>,
    },
    /// The request did not reach the server or its answer did not arrive.
    Transport(reqwest::Error),
}

/// Sends `request` and returns its answer only if it is the answer of the URL asked:
/// a 3xx status, or an answer from anywhere else, is [`SendError::Redirected`]. The body
/// is not read. Every request that carries a credential, and every metadata and key
/// fetch, goes through here, whatever client built it.
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
    check_origin(&asked, &response)?;
    Ok(response)
}

/// Refuses an answer that is a redirect or came from another URL than `asked`.
pub(crate) fn check_origin(asked: &Url, response: &reqwest::Response) -> Result<(), SendError> {
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|l| crate::error::echo(&String::from_utf8_lossy(l.as_bytes())));
        return Err(SendError::Redirected {
            status: status.as_u16(),
            location,
        });
    }
    if !same_resource(response.url(), asked) {
        return Err(SendError::Redirected {
            status: status.as_u16(),
            location: Some(crate::error::echo(response.url().as_str())),
        });
    }
    Ok(())
}

/// Whether two URLs name the same resource on the same origin. Userinfo and fragment are
/// left out: they never reach the server, and the answer's URL is rebuilt without them.
fn same_resource(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path() == b.path()
        && a.query() == b.query()
}

/// `form` as an `application/x-www-form-urlencoded` body that can be sent once only: reqwest
/// replays only bodies it can clone, so even a client that follows redirects cannot send
/// this one to a 307 or 308 target. Its length is known, so it still goes with a
/// `Content-Length`.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_resource_ignores_only_userinfo_fragment_and_default_ports() {
        let u = |s: &str| Url::parse(s).unwrap();
        let asked = u("https://login.example.com/t/oauth2/v2.0/token?x=1");
        for same in [
            "https://login.example.com/t/oauth2/v2.0/token?x=1",
            "https://login.example.com:443/t/oauth2/v2.0/token?x=1",
            "https://user:pw@login.example.com/t/oauth2/v2.0/token?x=1#frag",
        ] {
            assert!(same_resource(&asked, &u(same)), "{same}");
        }
        for other in [
            "http://login.example.com/t/oauth2/v2.0/token?x=1",
            "https://login.example.com:8443/t/oauth2/v2.0/token?x=1",
            "https://evil.example.com/t/oauth2/v2.0/token?x=1",
            "https://login.example.com/u/oauth2/v2.0/token?x=1",
            "https://login.example.com/t/oauth2/v2.0/token?x=2",
            "https://login.example.com/t/oauth2/v2.0/token",
        ] {
            assert!(!same_resource(&asked, &u(other)), "{other}");
        }
    }
}

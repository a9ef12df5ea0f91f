//! What every outbound request shares: the HTTP client without redirects, capped body
//! reads and bounded header values.
//!
//! Token, assertion, metadata and key requests all go through here, so a rule about
//! what may leave the process or how much may come back is written once.

use std::time::Duration;

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

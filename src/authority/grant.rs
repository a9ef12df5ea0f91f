//! One POST of a grant to a token endpoint with the app's client authentication: the only
//! way a secret or assertion leaves the process. Client credentials (`get_token`) and the
//! onboarding's authorization code both go through here.
//!
//! The whole exchange, from getting the app's credential (a federated assertion may have
//! to be fetched) to the last byte of the answer, ends at the client's timeout. The form
//! is a one-shot body and a redirect is refused, whatever HTTP client sends it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::Instrument;
use url::Url;

use super::response::parse_retry_after;
use super::{AuthSource, ClientAuth, TokenClient};
use crate::clock::Deadline;
use crate::error::{Error, TransportKind};
use crate::http::{self, BodyError, SendError};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An answer that arrived whole (any status).
#[derive(Debug)]
pub(crate) struct GrantAnswer {
    pub(crate) status: u16,
    /// `Retry-After`, capped at an hour.
    pub(crate) retry_after: Option<Duration>,
    /// Entra's `x-ms-request-id` header.
    pub(crate) trace_id: Option<String>,
    /// The `client-request-id` sent.
    pub(crate) correlation_id: String,
    /// At most [`MAX_BODY`](crate::http::MAX_BODY) bytes.
    pub(crate) body: Vec<u8>,
    /// When the request left (on the client's clock): a token's `expires_in` counts
    /// from Entra's answer, which came after, so its life is counted from here.
    pub(crate) sent_at: SystemTime,
}

/// Why a grant brought no answer.
#[derive(Debug)]
pub(crate) enum GrantError {
    /// The app's credential could not be had: the assertion source failed, or gave
    /// nothing in time ([`Error::AssertionTimedOut`]).
    Credential(Error),
    /// The request did not reach the endpoint, or its answer did not arrive in time.
    Transport {
        kind: TransportKind,
        source: Arc<reqwest::Error>,
    },
    /// The endpoint redirected (to this origin); nothing was followed with the form.
    Redirected { to: String },
    /// The answer (with this status) was larger than the cap.
    TooLarge { status: u16 },
}

impl TokenClient {
    /// POSTs `grant` (its `grant_type` and fields) to `endpoint`, adding `client_id` and
    /// the app's client authentication from `auth` (`fresh`: the last assertion was
    /// refused as expired). One attempt; no retry.
    pub(crate) async fn send_grant(
        &self,
        endpoint: &Url,
        grant: &[(&str, &str)],
        auth: &dyn AuthSource,
        fresh: bool,
    ) -> Result<GrantAnswer, GrantError> {
        let deadline = Deadline::after(self.timeout);
        let credential = match deadline.run(auth.auth(endpoint, fresh)).await {
            Some(Ok(credential)) => credential,
            Some(Err(e)) => return Err(GrantError::Credential(e)),
            None => {
                let after = self.timeout;
                return Err(GrantError::Credential(Error::AssertionTimedOut { after }));
            }
        };
        let mut form = grant.to_vec();
        form.push(("client_id", &self.client_id));
        match &credential {
            ClientAuth::Secret(s) => form.push(("client_secret", s.expose())),
            ClientAuth::Assertion(a) => {
                form.push(("client_assertion_type", ASSERTION_TYPE));
                form.push(("client_assertion", a.expose()));
            }
        }
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let post = self
            .http
            .post(endpoint.clone())
            .header("client-request-id", &correlation_id)
            .header("return-client-request-id", "true")
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(deadline.remaining());
        let span = tracing::debug_span!(
            "token_request",
            endpoint = %endpoint,
            client_id = %self.client_id,
            correlation_id = %correlation_id,
        );
        let sent_at = self.clock.now();
        let response = http::send_no_redirect(http::one_shot_form(post, &form))
            .instrument(span)
            .await
            .map_err(|e| match e {
                SendError::Transport(e) => transport(e),
                SendError::Redirected { to } => GrantError::Redirected { to },
            })?;
        let status = response.status().as_u16();
        let retry_after = parse_retry_after(response.headers(), self.clock.now());
        // Visible ASCII and tabs only (a header value), but still outside text: escaped.
        let trace_id = http::header_str(response.headers(), "x-ms-request-id")
            .map(|t| crate::error::echo_within(&t, 128));
        let body = http::read_capped(response).await.map_err(|e| match e {
            BodyError::TooLarge => GrantError::TooLarge { status },
            BodyError::Transport(e) => transport(e),
        })?;
        Ok(GrantAnswer {
            status,
            retry_after,
            trace_id,
            correlation_id,
            body,
            sent_at,
        })
    }
}

fn transport(e: reqwest::Error) -> GrantError {
    let kind = if e.is_timeout() {
        TransportKind::Timeout
    } else if e.is_connect() {
        TransportKind::Connect
    } else {
        TransportKind::Other
    };
    // reqwest errors carry the URL; it holds no secret (the form is in the body).
    GrantError::Transport {
        kind,
        source: Arc::new(e),
    }
}

//! The token endpoint client shared by every credential.
//!
//! Retries, by default: a 5xx, a transient Entra code, a timeout or a connection failure is
//! retried once after about 1 s; a `Retry-After` up to 5 s is waited out, a longer one
//! (capped at 1 h) closes that (tenant, scope) only and fails fast until it passes; an
//! assertion Entra finds expired is retried once at once with a fresh one; 400 and 401
//! are never retried. Waits go through the injected sleeper.
//!
//! Each attempt, from getting the app's credential (a federated assertion may have to be
//! fetched) to the last byte of the answer, is bounded by the credential's timeout. The
//! form goes as a one-shot body and a redirect is refused, whatever HTTP client sends it.
//!
//! Credentials hand it an [`AuthSource`]; nothing else in the crate speaks HTTP to Entra.

mod check;
mod classify;
mod grant;
mod resolve;
mod response;
mod retry;

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::clock::{SharedClock, SharedSleeper};
use crate::cloud::Cloud;
use crate::error::{EntraError, Error};
use crate::http::{self, MAX_BODY};
use crate::scope::Scopes;
use crate::tenant::TenantId;
use crate::token::{AccessToken, Secret};

use check::IssuedTokenCheck;
use classify::classify;
pub(crate) use grant::{GrantAnswer, GrantError};
pub(crate) use response::parse_error;
use response::parse_success;
pub use retry::RetryPolicy;
use retry::Throttles;

/// A `Retry-After` up to this long is waited out inside the call; longer ones fail fast
/// with [`Error::Throttled`] so the caller decides.
const MAX_INLINE_RETRY_AFTER: Duration = Duration::from_secs(5);

/// How the app proves who it is in one request.
#[derive(Debug, Clone)]
pub(crate) enum ClientAuth {
    /// `client_secret=...`.
    Secret(Secret),
    /// `client_assertion_type=jwt-bearer&client_assertion=...`.
    Assertion(Secret),
}

/// Where a request's [`ClientAuth`] comes from. Asked once per attempt, with the exact
/// endpoint (a certificate assertion's `aud`) and whether the previous attempt's assertion
/// was refused as expired (so a federated source fetches a fresh one). The wait for it
/// counts against the attempt's timeout.
#[async_trait::async_trait]
pub(crate) trait AuthSource: Send + Sync {
    async fn auth(&self, endpoint: &Url, fresh: bool) -> Result<ClientAuth, Error>;
}

/// The token endpoint client of one app in one cloud.
#[derive(Debug)]
pub(crate) struct TokenClient {
    pub(crate) client_id: Arc<str>,
    pub(crate) cloud: Cloud,
    http: reqwest::Client,
    timeout: Duration,
    retry: RetryPolicy,
    pub(crate) clock: SharedClock,
    sleeper: SharedSleeper,
    throttles: Throttles,
    issued: IssuedTokenCheck,
}

/// How one attempt ended: with the call's result, or with an error another attempt may
/// cure (after the wait the answer asked for, if it did).
enum Attempt {
    Done(Result<AccessToken, Error>),
    Retry {
        error: Error,
        wait: Option<Duration>,
    },
}

/// What one attempt is about.
struct Request<'a> {
    tenant: &'a TenantId,
    scopes: &'a Scopes,
}

impl TokenClient {
    pub(crate) fn new(
        client_id: Arc<str>,
        cloud: Cloud,
        http: reqwest::Client,
        timeout: Duration,
        retry: RetryPolicy,
        clock: SharedClock,
        sleeper: SharedSleeper,
    ) -> Self {
        Self {
            client_id,
            cloud,
            http,
            timeout,
            retry,
            clock,
            sleeper,
            throttles: Throttles::default(),
            issued: IssuedTokenCheck::default(),
        }
    }

    /// The timeout of one attempt (a credential's own outbound calls, such as Key Vault's,
    /// are bounded by it too).
    #[cfg(feature = "azure-core")]
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The scopes parsed and the tenant's token endpoint, unless a `Retry-After` Entra
    /// gave for them is still running (then no request is made).
    fn prepare(&self, tenant: &TenantId, scopes: &[&str]) -> Result<(Scopes, Url), Error> {
        let scopes = Scopes::parse(scopes)?;
        self.throttles
            .check(tenant, &scopes, self.clock.now(), &self.client_id)?;
        Ok((scopes, self.cloud.token_endpoint(tenant)))
    }

    /// One app-only token for `scopes` from `tenant`, retrying what is retryable.
    pub(crate) async fn request(
        &self,
        tenant: &TenantId,
        scopes: &[&str],
        auth: &dyn AuthSource,
    ) -> Result<AccessToken, Error> {
        let (scopes, endpoint) = self.prepare(tenant, scopes)?;
        let started = self.clock.now();
        let mut fresh = false;
        let mut retry = 0u32;
        loop {
            let (error, asked) = match self.attempt(tenant, &scopes, &endpoint, auth, fresh).await {
                Attempt::Done(result) => return result,
                Attempt::Retry { error, wait } => (error, wait),
            };
            retry += 1;
            let elapsed = self.clock.now().duration_since(started).unwrap_or_default();
            let Some(wait) = self.retry.wait_before(retry, asked, elapsed) else {
                return Err(error);
            };
            fresh = matches!(error, Error::AssertionExpired(_));
            tracing::debug!(
                tenant = %tenant,
                client_id = %self.client_id,
                retry,
                wait_ms = wait.as_millis() as u64,
                error = %error,
                "retrying token request"
            );
            self.sleeper.sleep(wait).await;
        }
    }

    /// One app-only token for `scopes` from `tenant`, in one attempt: an error another
    /// attempt might cure is returned, not retried (the caller decides). Bounded by the
    /// credential's timeout like every attempt.
    pub(crate) async fn request_once(
        &self,
        tenant: &TenantId,
        scopes: &[&str],
        auth: &dyn AuthSource,
    ) -> Result<AccessToken, Error> {
        let (scopes, endpoint) = self.prepare(tenant, scopes)?;
        match self.attempt(tenant, &scopes, &endpoint, auth, false).await {
            Attempt::Done(result) => result,
            Attempt::Retry { error, .. } => Err(error),
        }
    }

    /// One attempt: the grant, and what its answer means.
    async fn attempt(
        &self,
        tenant: &TenantId,
        scopes: &Scopes,
        endpoint: &Url,
        auth: &dyn AuthSource,
        fresh: bool,
    ) -> Attempt {
        let grant = [
            ("grant_type", "client_credentials"),
            ("scope", scopes.as_str()),
        ];
        let answer = match self.send_grant(endpoint, &grant, auth, fresh).await {
            Ok(answer) => answer,
            Err(e) => return self.unsent(tenant, e),
        };
        let request = Request { tenant, scopes };
        if (200..300).contains(&answer.status) {
            Attempt::Done(self.accept(&request, &answer))
        } else {
            self.refusal(&request, answer)
        }
    }

    /// A 2xx: the token, if it parses and is for what was asked. Its life counts from when
    /// the request left, not from when the answer arrived: `expires_in` is relative to
    /// Entra's answer, which cannot be earlier than the request, so an answer delayed on
    /// its way back never makes the token seem to live past its real end.
    fn accept(&self, request: &Request<'_>, answer: &GrantAnswer) -> Result<AccessToken, Error> {
        let tenant = request.tenant;
        let now = answer.sent_at;
        let result = parse_success(&answer.body, now, tenant, request.scopes)
            .map_err(|reason| Error::MalformedResponse {
                tenant: tenant.clone(),
                status: answer.status,
                reason: reason.into(),
            })
            .and_then(|token| self.issued.check(tenant, &self.client_id, token, now));
        if let Err(e) = &result {
            tracing::warn!(tenant = %tenant, client_id = %self.client_id, correlation_id = %answer.correlation_id, error = %e, "token response rejected");
        }
        result
    }

    /// Anything else: Entra's error, classified, and whether another attempt may help.
    fn refusal(&self, request: &Request<'_>, answer: GrantAnswer) -> Attempt {
        let (tenant, status) = (request.tenant, answer.status);
        let mut entra = match parse_error(&answer.body) {
            Some(parsed) => parsed.into_entra(tenant.clone(), &self.client_id, status),
            None if status == 429 || status >= 500 => {
                EntraError::bare(tenant.clone(), &self.client_id, status)
            }
            None => {
                return Attempt::Done(Err(Error::MalformedResponse {
                    tenant: tenant.clone(),
                    status,
                    reason: http::describe_non_json(&answer.body).into(),
                }));
            }
        };
        entra
            .correlation_id
            .get_or_insert_with(|| answer.correlation_id.clone());
        if entra.trace_id.is_none() {
            entra.trace_id = answer.trace_id;
        }
        tracing::warn!(
            tenant = %tenant,
            client_id = %self.client_id,
            status,
            code = entra.code().unwrap_or(0),
            trace_id = entra.trace_id.as_deref().unwrap_or(""),
            correlation_id = entra.correlation_id.as_deref().unwrap_or(""),
            "token request refused"
        );
        let error = classify(entra, answer.retry_after, &self.cloud);
        self.next_step(request, error, status)
    }

    /// Whether a refusal is worth another attempt, and after what wait.
    fn next_step(&self, request: &Request<'_>, error: Error, status: u16) -> Attempt {
        match &error {
            Error::Throttled {
                retry_after: Some(wait),
                ..
            } if *wait > MAX_INLINE_RETRY_AFTER => {
                let now = self.clock.now();
                self.throttles
                    .close(request.tenant, request.scopes, now, *wait);
                Attempt::Done(Err(error))
            }
            Error::Throttled { retry_after, .. } => Attempt::Retry {
                wait: *retry_after,
                error,
            },
            // One more try with a fresh assertion: a token file may have been stale.
            Error::AssertionExpired(_) => Attempt::Retry {
                error,
                wait: Some(Duration::ZERO),
            },
            e if status >= 500 || e.aadsts_code().is_some_and(crate::error::is_transient_code) => {
                Attempt::Retry { error, wait: None }
            }
            _ => Attempt::Done(Err(error)),
        }
    }

    /// A grant that brought no answer: the credential's failure or a redirect end the
    /// call; a transport failure may be retried.
    fn unsent(&self, tenant: &TenantId, error: GrantError) -> Attempt {
        let error = match error {
            GrantError::Credential(e) => return Attempt::Done(Err(e)),
            GrantError::Transport { kind, source } => {
                return Attempt::Retry {
                    error: Error::Transport {
                        tenant: tenant.clone(),
                        kind,
                        source,
                    },
                    wait: None,
                };
            }
            GrantError::Redirected { to } => {
                tracing::warn!(tenant = %tenant, client_id = %self.client_id, to = %to, "the token endpoint redirected; refused");
                Error::Redirected {
                    tenant: tenant.clone(),
                    to: to.into_boxed_str(),
                }
            }
            GrantError::TooLarge { status } => Error::MalformedResponse {
                tenant: tenant.clone(),
                status,
                reason: format!("the body is larger than {MAX_BODY} bytes").into(),
            },
        };
        Attempt::Done(Err(error))
    }
}

/// Everything the token client does with an answer's untrusted bytes: the 200 body, the
/// error body and its classification, `Retry-After`, and the check of the issued token.
#[cfg(fuzzing)]
pub(crate) fn fuzz_answer(body: &[u8], retry_after: &[u8], status: u16) {
    use std::time::SystemTime;
    let (Ok(tenant), Ok(scopes)) = (
        "contoso.example".parse::<TenantId>(),
        Scopes::parse(&["https://vault.azure.net/.default"]),
    ) else {
        return;
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let client_id = "11111111-2222-3333-4444-555555555555";
    if let Ok(token) = parse_success(body, now, &tenant, &scopes) {
        let _ = IssuedTokenCheck::default().check(&tenant, client_id, token, now);
    }
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(value) = reqwest::header::HeaderValue::from_bytes(retry_after) {
        headers.insert(reqwest::header::RETRY_AFTER, value);
    }
    let wait = response::parse_retry_after(&headers, now);
    if let Some(parsed) = parse_error(body) {
        let entra = parsed.into_entra(tenant, client_id, status);
        let error = classify(entra, wait, &Cloud::Public);
        let _ = (error.to_string(), error.is_retryable(), error.consent_url());
    }
}

/// `Retry-After` from untrusted bytes: a wait of at most the cap, never a panic.
#[cfg(fuzzing)]
pub(crate) fn fuzz_retry_after(value: &[u8]) {
    let Ok(value) = reqwest::header::HeaderValue::from_bytes(value) else {
        return;
    };
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::RETRY_AFTER, value);
    let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    if let Some(wait) = response::parse_retry_after(&headers, now) {
        assert!(wait <= response::MAX_RETRY_AFTER, "Retry-After is capped");
    }
}

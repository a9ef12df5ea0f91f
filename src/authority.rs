//! The token endpoint client shared by every credential: builds the client-credentials
//! form, sends it with a `client-request-id`, reads a size-capped answer, parses success
//! and Entra's error JSON, classifies errors, retries what is retryable and gates
//! throttled (tenant, scope) pairs.
//!
//! Credentials hand it a [`ClientAuth`] source; nothing else in the crate speaks HTTP to Entra.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tracing::Instrument;
use url::Url;

use crate::clock::{SharedClock, SharedSleeper};
use crate::cloud::Cloud;
use crate::error::{EntraError, Error, FederationField, TransportKind};
use crate::http::{BodyError, MAX_BODY, describe_non_json, header_str, read_capped};
use crate::scope::Scopes;
use crate::tenant::TenantId;
use crate::token::{AccessToken, Secret};

/// Longest `Retry-After` honoured; longer values are cut to this (as MSAL does).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// A `Retry-After` up to this long is waited out inside the call; longer ones fail fast
/// with [`Error::Throttled`] so the caller decides.
const MAX_INLINE_RETRY_AFTER: Duration = Duration::from_secs(5);
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

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
/// was refused as expired (so a federated source fetches a fresh one).
#[async_trait::async_trait]
pub(crate) trait AuthSource: Send + Sync {
    async fn auth(&self, endpoint: &Url, fresh: bool) -> Result<ClientAuth, Error>;
}

/// Retry settings: how many times a retryable failure is retried and how long to wait first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (default 1, as MSAL does for 5xx).
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each further one (default 1 s).
    pub initial_delay: Duration,
    /// Total time all attempts and waits may take before giving up (default 30 s).
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 1,
            initial_delay: Duration::from_secs(1),
            max_total: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }
}

/// The token endpoint client of one app in one cloud.
#[derive(Debug)]
pub(crate) struct TokenClient {
    pub(crate) client_id: Arc<str>,
    pub(crate) cloud: Cloud,
    pub(crate) http: reqwest::Client,
    pub(crate) timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) clock: SharedClock,
    pub(crate) sleeper: SharedSleeper,
    /// (tenant, scope) -> throttled until. A std lock: never held across an await.
    throttled: Mutex<HashMap<(TenantId, Scopes), SystemTime>>,
    /// Domain tenant -> the GUID its tokens carried, so a later token claiming another
    /// GUID for the same domain is caught.
    learned_tids: Mutex<HashMap<TenantId, Arc<str>>>,
}

/// Why one attempt failed, and whether another may help.
enum Attempt {
    Done(Result<AccessToken, Error>),
    Retry {
        error: Error,
        wait: Option<Duration>,
    },
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
            throttled: Mutex::new(HashMap::new()),
            learned_tids: Mutex::new(HashMap::new()),
        }
    }

    /// One app-only token for `scopes` from `tenant`, retrying what is retryable.
    pub(crate) async fn request(
        &self,
        tenant: &TenantId,
        scopes: &[&str],
        auth: &dyn AuthSource,
    ) -> Result<AccessToken, Error> {
        let scopes = Scopes::parse(scopes)?;
        self.check_throttle(tenant, &scopes)?;
        let endpoint = self.cloud.token_endpoint(tenant);
        let started = self.clock.now();
        let mut delay = self.retry.initial_delay;
        let mut fresh = false;
        let mut attempt = 0u32;
        loop {
            let auth = auth.auth(&endpoint, fresh).await?;
            match self.attempt(tenant, &scopes, &endpoint, &auth).await {
                Attempt::Done(result) => return result,
                Attempt::Retry { error, wait } => {
                    let elapsed = self.clock.now().duration_since(started).unwrap_or_default();
                    let wait = wait.unwrap_or(delay);
                    if attempt >= self.retry.max_retries || elapsed + wait > self.retry.max_total {
                        return Err(error);
                    }
                    attempt += 1;
                    fresh = matches!(error, Error::AssertionExpired(_));
                    tracing::debug!(
                        tenant = %tenant,
                        client_id = %self.client_id,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        error = %error,
                        "retrying token request"
                    );
                    self.sleeper.sleep(wait).await;
                    delay = delay.saturating_mul(2);
                }
            }
        }
    }

    fn check_throttle(&self, tenant: &TenantId, scopes: &Scopes) -> Result<(), Error> {
        let now = self.clock.now();
        let mut gate = self.throttled.lock().unwrap_or_else(|p| p.into_inner());
        let key = (tenant.clone(), scopes.clone());
        match gate.get(&key) {
            Some(until) if *until > now => {
                let retry_after = until.duration_since(now).ok();
                Err(Error::Throttled {
                    retry_after,
                    entra: Box::new(EntraError::bare(tenant.clone(), &self.client_id, 429)),
                })
            }
            Some(_) => {
                gate.remove(&key);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn throttle(&self, tenant: &TenantId, scopes: &Scopes, retry_after: Duration) {
        if let Some(until) = self.clock.now().checked_add(retry_after) {
            let mut gate = self.throttled.lock().unwrap_or_else(|p| p.into_inner());
            // Forget gates that have passed so the map stays bounded by live throttles.
            let now = self.clock.now();
            gate.retain(|_, t| *t > now);
            gate.insert((tenant.clone(), scopes.clone()), until);
        }
    }

    async fn attempt(
        &self,
        tenant: &TenantId,
        scopes: &Scopes,
        endpoint: &Url,
        auth: &ClientAuth,
    ) -> Attempt {
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "client_credentials"),
            ("client_id", &self.client_id),
            ("scope", scopes.as_str()),
        ];
        match auth {
            ClientAuth::Secret(s) => form.push(("client_secret", s.expose())),
            ClientAuth::Assertion(a) => {
                form.push(("client_assertion_type", ASSERTION_TYPE));
                form.push(("client_assertion", a.expose()));
            }
        }
        let span = tracing::debug_span!(
            "token_request",
            tenant = %tenant,
            client_id = %self.client_id,
            scope = %scopes,
            correlation_id = %correlation_id,
        );
        let sent = self
            .http
            .post(endpoint.clone())
            .header("client-request-id", &correlation_id)
            .header("return-client-request-id", "true")
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout)
            .form(&form)
            .send()
            .instrument(span)
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return self.transport_failure(tenant, e),
        };
        let status = response.status().as_u16();
        let retry_after = parse_retry_after(response.headers(), self.clock.now());
        let trace_header = header_str(response.headers(), "x-ms-request-id");
        let body = match read_capped(response).await {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                return Attempt::Done(Err(Error::MalformedResponse {
                    tenant: tenant.clone(),
                    status,
                    reason: format!("the body is larger than {MAX_BODY} bytes"),
                }));
            }
            Err(BodyError::Transport(e)) => return self.transport_failure(tenant, e),
        };

        if (200..300).contains(&status) {
            let now = self.clock.now();
            let result = parse_success(&body, now, tenant, scopes)
                .map_err(|reason| Error::MalformedResponse {
                    tenant: tenant.clone(),
                    status,
                    reason,
                })
                .and_then(|token| self.check_token(tenant, token));
            if let Err(e) = &result {
                tracing::warn!(tenant = %tenant, client_id = %self.client_id, correlation_id = %correlation_id, error = %e, "token response rejected");
            }
            return Attempt::Done(result);
        }

        let mut entra = match parse_error(&body) {
            Some(parsed) => parsed.into_entra(tenant.clone(), &self.client_id, status),
            None if status == 429 || status >= 500 => {
                EntraError::bare(tenant.clone(), &self.client_id, status)
            }
            None => {
                return Attempt::Done(Err(Error::MalformedResponse {
                    tenant: tenant.clone(),
                    status,
                    reason: describe_non_json(&body),
                }));
            }
        };
        if entra.correlation_id.is_none() {
            entra.correlation_id = Some(correlation_id.clone());
        }
        if entra.trace_id.is_none() {
            entra.trace_id = trace_header;
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
        let error = classify(entra, retry_after, &self.cloud);
        match &error {
            Error::Throttled { retry_after, .. } => match retry_after {
                Some(wait) if *wait <= MAX_INLINE_RETRY_AFTER => Attempt::Retry {
                    wait: Some(*wait),
                    error,
                },
                Some(wait) => {
                    self.throttle(tenant, scopes, *wait);
                    Attempt::Done(Err(error))
                }
                None => Attempt::Retry { error, wait: None },
            },
            // One more try with a fresh assertion, as ENTRA.md says for 700024.
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

    fn transport_failure(&self, tenant: &TenantId, e: reqwest::Error) -> Attempt {
        let kind = if e.is_timeout() {
            TransportKind::Timeout
        } else if e.is_connect() {
            TransportKind::Connect
        } else {
            TransportKind::Other
        };
        // reqwest errors carry the URL; it holds no secret (the form is in the body).
        Attempt::Retry {
            error: Error::Transport {
                tenant: tenant.clone(),
                kind,
                source: Arc::new(e),
            },
            wait: None,
        }
    }

    /// The bookkeeping check of DESIGN.md: a token claiming another tenant or app is an
    /// error and never reaches a cache.
    fn check_token(&self, tenant: &TenantId, token: AccessToken) -> Result<AccessToken, Error> {
        let Some(claims) = crate::jwt::peek_claims(token.secret()) else {
            return Ok(token); // opaque tokens cannot be checked
        };
        let unexpected =
            |claim: &'static str, expected: &str, found: &str| Error::UnexpectedToken {
                tenant: tenant.clone(),
                claim,
                expected: expected.to_owned(),
                found: crate::error::echo(found),
            };
        if let Some(tid) = claims.tid.as_deref() {
            if tenant.is_guid() {
                if !tid.eq_ignore_ascii_case(tenant.as_str()) {
                    return Err(unexpected("tid", tenant.as_str(), tid));
                }
            } else {
                let mut learned = self.learned_tids.lock().unwrap_or_else(|p| p.into_inner());
                match learned.get(tenant) {
                    Some(known) if !known.eq_ignore_ascii_case(tid) => {
                        return Err(unexpected("tid", known, tid));
                    }
                    Some(_) => {}
                    None => {
                        learned.insert(tenant.clone(), Arc::from(tid.to_ascii_lowercase()));
                    }
                }
            }
        }
        for (name, value) in [("appid", &claims.appid), ("azp", &claims.azp)] {
            if let Some(v) = value.as_deref()
                && !v.eq_ignore_ascii_case(&self.client_id)
            {
                return Err(unexpected(name, &self.client_id, v));
            }
        }
        Ok(token)
    }
}

/// `Retry-After` as seconds or an HTTP date, capped at one hour.
fn parse_retry_after(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    let raw = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let wait = if let Ok(secs) = raw.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = httpdate(raw)?;
        at.duration_since(now).unwrap_or_default()
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Parses the IMF-fixdate form of an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate(s: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: u64 = day.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as u64
        + 1;
    let year: i64 = year.parse().ok()?;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || year < 1970 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = (y - era * 400) as u64;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe as i64 - 719_468;
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + sec;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Seconds given as a JSON integer or a numeric string (Entra uses both).
fn seconds(value: Option<&Value>, field: &str) -> Result<Option<u64>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("`{field}` is not a non-negative integer")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("`{field}` is not a number")),
        Some(_) => Err(format!("`{field}` has the wrong type")),
    }
}

/// Parses a 200 answer into a token issued at `now`. Errors say what was wrong without
/// repeating the body (it may hold a token).
pub(crate) fn parse_success(
    body: &[u8],
    now: SystemTime,
    tenant: &TenantId,
    scopes: &Scopes,
) -> Result<AccessToken, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("the body is empty".into());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        if e.is_eof() {
            "the body is truncated JSON".to_owned()
        } else {
            "the body is not JSON".to_owned()
        }
    })?;
    let obj = value.as_object().ok_or("the body is not a JSON object")?;
    let token = match obj.get("access_token") {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        Some(Value::String(_)) => return Err("`access_token` is empty".into()),
        Some(_) => return Err("`access_token` is not a string".into()),
        None => return Err("`access_token` is missing".into()),
    };
    if token.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return Err("`access_token` holds characters a bearer token cannot".into());
    }
    match obj.get("token_type") {
        None => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => {}
        Some(_) => return Err("`token_type` is not Bearer".into()),
    }
    let expires_in =
        seconds(obj.get("expires_in"), "expires_in")?.ok_or("`expires_in` is missing")?;
    let expires_on = now
        .checked_add(Duration::from_secs(expires_in))
        .ok_or("`expires_in` is out of range")?;
    let mut token = AccessToken::new(token, expires_on, tenant.clone(), scopes.clone());
    if let Some(refresh_in) = seconds(obj.get("refresh_in"), "refresh_in")?
        && refresh_in < expires_in
        && let Some(at) = now.checked_add(Duration::from_secs(refresh_in))
    {
        token = token.with_refresh_on(at);
    }
    Ok(token)
}

/// Entra's error JSON.
#[derive(Debug, Default)]
pub(crate) struct ParsedError {
    pub(crate) error: String,
    pub(crate) codes: Vec<u32>,
    pub(crate) description: String,
    pub(crate) trace_id: Option<String>,
    pub(crate) correlation_id: Option<String>,
    pub(crate) timestamp: Option<String>,
}

impl ParsedError {
    fn into_entra(self, tenant: TenantId, client_id: &str, status: u16) -> EntraError {
        let mut e = EntraError::bare(tenant, client_id, status);
        e.error = self.error;
        e.codes = self.codes;
        e.description = self.description;
        e.trace_id = self.trace_id;
        e.correlation_id = self.correlation_id;
        e.timestamp = self.timestamp;
        e
    }
}

fn short(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Parses an error body; `None` when it is not Entra's shape (no `error` string).
pub(crate) fn parse_error(body: &[u8]) -> Option<ParsedError> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let obj = value.as_object()?;
    let error = obj.get("error")?.as_str()?;
    let text = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .map(|s| short(s, 128))
            .filter(|s| !s.is_empty())
    };
    let codes = obj
        .get("error_codes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_u64().and_then(|c| u32::try_from(c).ok()))
                .take(8)
                .collect()
        })
        .unwrap_or_default();
    // The description's first line is the AADSTS message; the rest repeats the ids.
    let description = obj
        .get("error_description")
        .and_then(Value::as_str)
        .and_then(|d| d.lines().next())
        .map(|d| short(d.trim(), 512))
        .unwrap_or_default();
    Some(ParsedError {
        error: short(error, 64),
        codes,
        description,
        trace_id: text("trace_id"),
        correlation_id: text("correlation_id"),
        timestamp: text("timestamp"),
    })
}

/// Maps Entra's answer to the variant that says what the operator does next. Branches on
/// `error_codes` (and the HTTP status), never on the description text.
pub(crate) fn classify(entra: EntraError, retry_after: Option<Duration>, cloud: &Cloud) -> Error {
    let entra = Box::new(entra);
    match entra.code() {
        Some(700016 | 7000229) => {
            let consent_url = cloud
                .admin_consent_url(entra.tenant.as_str(), &entra.client_id)
                .to_string();
            Error::NotConsented { entra, consent_url }
        }
        Some(7000215) => Error::InvalidClientSecret(entra),
        Some(7000222) => Error::ClientSecretExpired(entra),
        Some(700027) => Error::InvalidClientAssertion(entra),
        Some(700024) => Error::AssertionExpired(entra),
        Some(70021) => Error::FederationPending(entra),
        Some(700211) => Error::FederationMismatch {
            field: FederationField::Issuer,
            entra,
        },
        Some(700212) => Error::FederationMismatch {
            field: FederationField::Audience,
            entra,
        },
        Some(700213) => Error::FederationMismatch {
            field: FederationField::Subject,
            entra,
        },
        Some(70025) => Error::NoFederatedCredentials(entra),
        Some(700236) => Error::FederatedIdentityInWrongTenant(entra),
        Some(700227 | 700222 | 700226) => Error::AssertionRejected(entra),
        Some(90002 | 900023) => Error::TenantNotFound(entra),
        Some(500011 | 650052) => Error::ResourceNotFound(entra),
        Some(7000112 | 70001) => Error::AppDisabled(entra),
        Some(53003) => Error::BlockedByConditionalAccess(entra),
        Some(90055 | 50196) => Error::Throttled { retry_after, entra },
        _ if entra.status == 429 => Error::Throttled { retry_after, entra },
        _ => Error::Authority(entra),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> (TenantId, Scopes) {
        (
            "contoso.com".parse().unwrap(),
            Scopes::parse(&["https://vault.azure.net/.default"]).unwrap(),
        )
    }

    #[test]
    fn success_accepts_integer_and_string_lifetimes() {
        let (t, s) = ctx();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        for body in [
            r#"{"token_type":"Bearer","expires_in":3599,"access_token":"abc"}"#,
            r#"{"token_type":"Bearer","expires_in":"3599","access_token":"abc"}"#,
        ] {
            let token = parse_success(body.as_bytes(), now, &t, &s).unwrap();
            assert_eq!(token.expires_on(), now + Duration::from_secs(3599));
            assert_eq!(token.refresh_on(), None);
        }
        let token = parse_success(
            br#"{"expires_in":7200,"refresh_in":"3600","access_token":"abc"}"#,
            now,
            &t,
            &s,
        )
        .unwrap();
        assert_eq!(token.refresh_on(), Some(now + Duration::from_secs(3600)));
    }

    #[test]
    fn success_rejects_wrong_shapes_without_echoing_the_body() {
        let (t, s) = ctx();
        let now = SystemTime::UNIX_EPOCH;
        for (body, want) in [
            ("", "empty"),
            ("<html>", "not JSON"),
            (r#"{"access_token":"abc","expires_in":3"#, "truncated"),
            (r#"{"access_token":5,"expires_in":3}"#, "not a string"),
            (r#"{"access_token":"abc","expires_in":-3}"#, "non-negative"),
            (r#"{"access_token":"abc","expires_in":[1]}"#, "wrong type"),
            (r#"{"access_token":"abc"}"#, "missing"),
            (
                r#"{"access_token":"abc","expires_in":18446744073709551615}"#,
                "range",
            ),
            (
                r#"{"access_token":"abc","expires_in":1,"token_type":"pop"}"#,
                "Bearer",
            ),
        ] {
            let err = parse_success(body.as_bytes(), now, &t, &s).unwrap_err();
            assert!(err.contains(want), "{body}: {err}");
            assert!(!err.contains("abc"), "{err}");
        }
    }

    #[test]
    fn error_body_keeps_codes_and_ids_and_drops_the_rest_of_the_description() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t\r\nCorrelation ID: c","error_codes":[7000215],"trace_id":"t","correlation_id":"c","timestamp":"2021-05-16 05:21:44Z"}"#;
        let e = parse_error(body).unwrap();
        assert_eq!(e.codes, vec![7000215]);
        assert_eq!(
            e.description,
            "AADSTS7000215: Invalid client secret provided."
        );
        assert_eq!(e.trace_id.as_deref(), Some("t"));
        assert!(parse_error(b"{\"message\":\"x\"}").is_none());
    }

    #[test]
    fn classification_follows_codes_not_text() {
        let (t, _) = ctx();
        let mk = |code: u32, status: u16| {
            let mut e = EntraError::bare(t.clone(), "app", status);
            e.codes = vec![code];
            e.description = "AADSTS7000215: misleading text".into();
            classify(e, None, &Cloud::Public)
        };
        assert!(matches!(mk(700016, 400), Error::NotConsented { .. }));
        assert!(matches!(mk(7000222, 401), Error::ClientSecretExpired(_)));
        assert!(matches!(mk(90002, 400), Error::TenantNotFound(_)));
        assert!(matches!(mk(12345, 429), Error::Throttled { .. }));
        assert!(matches!(mk(12345, 400), Error::Authority(_)));
    }

    #[test]
    fn http_dates_parse() {
        let t = httpdate("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            784_111_777
        );
        assert!(httpdate("yesterday").is_none());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever Entra (or a proxy) answers, parsing returns a value or a reason, never panics.
        #[test]
        fn arbitrary_bytes_never_panic_the_parsers(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let tenant: TenantId = "contoso.com".parse().unwrap();
            let scopes = Scopes::parse(&["https://vault.azure.net/.default"]).unwrap();
            let _ = parse_success(&body, SystemTime::UNIX_EPOCH, &tenant, &scopes);
            let _ = parse_error(&body);
        }

        /// JSON-shaped answers with arbitrary field values, the likelier kind of garbage.
        #[test]
        fn arbitrary_json_fields_never_panic(token in ".{0,40}", expires in any::<i64>(), refresh in ".{0,10}") {
            let tenant: TenantId = "contoso.com".parse().unwrap();
            let scopes = Scopes::parse(&["https://vault.azure.net/.default"]).unwrap();
            let body = serde_json::json!({"access_token": token, "expires_in": expires, "refresh_in": refresh});
            let _ = parse_success(body.to_string().as_bytes(), SystemTime::UNIX_EPOCH, &tenant, &scopes);
        }
    }
}

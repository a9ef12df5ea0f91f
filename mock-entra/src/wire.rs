//! The mock's HTTP vocabulary: a received request (body already read, capped), a reply
//! (status, headers, body, delay), and Entra's error JSON with its headers.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::clock::entra_timestamp;

/// A request as the endpoints see it.
#[derive(Debug)]
pub(crate) struct MockRequest {
    pub(crate) method: hyper::Method,
    /// Path segments, percent-decoded.
    pub(crate) segments: Vec<String>,
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl MockRequest {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as `application/x-www-form-urlencoded` pairs (bad UTF-8 is replaced).
    pub(crate) fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    /// The `client-request-id` from the header, the query, or the form, in that order.
    pub(crate) fn client_request_id(&self, form: &[(String, String)]) -> Option<String> {
        self.header("client-request-id")
            .or_else(|| self.query("client-request-id"))
            .or_else(|| {
                form.iter()
                    .find(|(k, _)| k == "client-request-id")
                    .map(|(_, v)| v.as_str())
            })
            .filter(|id| !id.is_empty() && id.len() <= 128)
            .map(str::to_owned)
    }

    /// Whether the client asked for its `client-request-id` back.
    pub(crate) fn wants_request_id_back(&self) -> bool {
        self.header("return-client-request-id")
            .or_else(|| self.query("return-client-request-id"))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// An answer under construction.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Bytes,
    /// Served after this delay (latency faults).
    pub(crate) delay: Duration,
}

pub(crate) const JSON: &str = "application/json; charset=utf-8";

impl Reply {
    pub(crate) fn raw(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
        .header("content-type", content_type)
    }

    pub(crate) fn json(status: u16, body: &Value) -> Self {
        Self::raw(status, JSON, body.to_string())
    }

    /// A 302 to `location`.
    pub(crate) fn redirect(location: &str) -> Self {
        Self::raw(302, "text/html; charset=utf-8", Bytes::new()).header("location", location)
    }

    /// Adds a header; a value that is not a valid header value is dropped.
    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }

    pub(crate) fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(n, _)| n == name)
    }

    /// The headers Entra sends on token answers, success or error: no caching anywhere.
    pub(crate) fn no_store(self) -> Self {
        self.header("cache-control", "no-store, no-cache")
            .header("pragma", "no-cache")
            .header("expires", "-1")
            .header("x-ms-ests-server", "MockEntra")
            .header("x-ms-clitelem", "1,0,0,,")
    }

    /// The headers Entra sends on metadata, key and discovery answers.
    pub(crate) fn cacheable(self) -> Self {
        self.header("cache-control", "max-age=86400, private")
            .header("access-control-allow-origin", "*")
    }
}

/// An Entra error: status, OAuth `error`, AADSTS code, message.
#[derive(Debug, Clone)]
pub(crate) struct EntraErr {
    pub(crate) status: u16,
    pub(crate) error: &'static str,
    pub(crate) code: u32,
    pub(crate) message: String,
}

pub(crate) fn err(
    status: u16,
    error: &'static str,
    code: u32,
    message: impl Into<String>,
) -> EntraErr {
    EntraErr {
        status,
        error,
        code,
        message: message.into(),
    }
}

impl EntraErr {
    /// Entra's error JSON and headers; `x-ms-request-id` is the body's `trace_id`.
    pub(crate) fn reply(&self, now: SystemTime, correlation_id: Option<&str>) -> Reply {
        error_reply(
            now,
            self.status,
            self.error,
            self.code,
            &self.message,
            correlation_id,
        )
    }
}

/// Entra's error JSON, with the ids support asks for.
pub(crate) fn error_reply(
    now: SystemTime,
    status: u16,
    error: &str,
    code: u32,
    message: &str,
    correlation_id: Option<&str>,
) -> Reply {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let correlation_id = correlation_id
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let timestamp = entra_timestamp(now);
    Reply::json(
        status,
        &json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
    .no_store()
    .header("x-ms-request-id", &trace_id)
}

/// `application/x-www-form-urlencoded` encoding of one value (for redirect queries).
pub(crate) fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `base?k=v&...` with the pairs appended to any query `base` already has.
pub(crate) fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = base.to_owned();
    let mut sep = if base.contains('?') { '&' } else { '?' };
    for (k, v) in pairs {
        out.push(sep);
        out.push_str(&encode(k));
        out.push('=');
        out.push_str(&encode(v));
        sep = '&';
    }
    out
}

//! Reading the token endpoint's answers: a token from a 200, Entra's error JSON from the
//! rest, and `Retry-After`. Everything here reads untrusted bytes: it returns a value or
//! a reason, never panics, and never repeats a body (it may hold a token).

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::error::{EntraError, echo_within};
use crate::scope::Scopes;
use crate::tenant::TenantId;
use crate::token::AccessToken;

/// Longest `Retry-After` honoured; longer values are cut to this (as MSAL does).
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Retry-After` as seconds or an HTTP date, capped at one hour.
pub(crate) fn parse_retry_after(
    headers: &reqwest::header::HeaderMap,
    now: SystemTime,
) -> Option<Duration> {
    let raw = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let wait = if let Ok(secs) = raw.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        // A well-kept parser: it refuses years outside 1970..=9999 instead of overflowing.
        let at = httpdate::parse_http_date(raw).ok()?;
        at.duration_since(now).unwrap_or_default()
    };
    Some(wait.min(MAX_RETRY_AFTER))
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

/// Parses a 200 answer into a token issued at `now` (when its request was sent), its
/// lifetime counted from then. Errors say what was wrong without repeating the body (it
/// may hold a token).
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
    let mut token =
        AccessToken::new(token, expires_on, tenant.clone(), scopes.clone()).with_issued_on(now);
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
    pub(crate) fn into_entra(self, tenant: TenantId, client_id: &str, status: u16) -> EntraError {
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

/// Parses an error body; `None` when it is not Entra's shape (no `error` string). Every
/// string kept is bounded and escaped ([`echo_within`]): errors print them and logs
/// carry them.
pub(crate) fn parse_error(body: &[u8]) -> Option<ParsedError> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let obj = value.as_object()?;
    let error = obj.get("error")?.as_str()?;
    let text = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .map(|s| echo_within(s, 128))
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
        .map(|d| echo_within(d.trim(), 512))
        .unwrap_or_default();
    Some(ParsedError {
        error: echo_within(error, 64),
        codes,
        description,
        trace_id: text("trace_id"),
        correlation_id: text("correlation_id"),
        timestamp: text("timestamp"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::Scopes;
    use crate::tenant::TenantId;

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
            assert_eq!(token.issued_on(), Some(now));
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

    fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_str(value).unwrap(),
        );
        parse_retry_after(&headers, now)
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates_and_caps_at_an_hour() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777 - 30);
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("99999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
        // A date in the past means "now".
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("yesterday", now), None);
    }

    #[test]
    fn retry_after_with_a_huge_year_is_refused_without_overflow() {
        let now = SystemTime::UNIX_EPOCH;
        for value in [
            "Sun, 06 Nov 9223372036854775807 08:49:37 GMT",
            "Sun, 06 Nov 18446744073709551615 08:49:37 GMT",
            "Sun, 06 Nov -9223372036854775808 08:49:37 GMT",
            "Sun, 06 Nov 99999 08:49:37 GMT",
        ] {
            assert_eq!(retry_after(value, now), None, "{value}");
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::scope::Scopes;
    use crate::tenant::TenantId;
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

        /// Any `Retry-After` value: a wait of at most an hour or nothing, never a panic or a
        /// wrapped overflow, whatever the clock says.
        #[test]
        fn arbitrary_retry_after_is_capped_or_ignored(value in "[ -~]{0,64}", now in any::<u32>()) {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(now));
            let mut headers = reqwest::header::HeaderMap::new();
            if let Ok(v) = reqwest::header::HeaderValue::from_str(&value) {
                headers.insert(reqwest::header::RETRY_AFTER, v);
            }
            if let Some(wait) = parse_retry_after(&headers, now) {
                prop_assert!(wait <= MAX_RETRY_AFTER);
            }
        }

        /// HTTP dates with any year, day and time: capped or ignored, never a panic.
        #[test]
        fn http_dates_with_any_fields_are_capped_or_ignored(
            day in 0u64..100, month in 0usize..12, year in any::<i64>(), h in 0u32..100, m in 0u32..100, s in 0u32..100,
        ) {
            let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
            let value = format!("Sun, {day:02} {} {year} {h:02}:{m:02}:{s:02} GMT", months[month]);
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(reqwest::header::RETRY_AFTER, reqwest::header::HeaderValue::from_str(&value).unwrap());
            if let Some(wait) = parse_retry_after(&headers, SystemTime::UNIX_EPOCH) {
                prop_assert!(wait <= MAX_RETRY_AFTER);
            }
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

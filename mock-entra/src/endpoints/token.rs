//! The token endpoints, v2 `/{tenant}/oauth2/v2.0/token` and v1 `/{tenant}/oauth2/token`:
//! strict parameters, client authentication, scripted faults, the grant, Entra's headers,
//! and one log entry per request (without secrets).

use std::time::Duration;

use serde_json::json;

use crate::endpoints::client_auth::ClientAuth;
use crate::endpoints::issue::{self, Minted, missing};
use crate::endpoints::params::{self, Known};
use crate::endpoints::{Form, authorize, record};
use crate::faults::MockFault;
use crate::server::Shared;
use crate::state::log::redact;
use crate::wire::{EntraErr, MockRequest, Reply, err, error_reply};
use crate::{MockEndpoint, RecordedRequest};

/// What the grant produced before signing.
enum Outcome {
    Minted(Minted, Duration),
    Entra(EntraErr),
    Fault(MockFault, Duration),
}

pub(crate) fn token(shared: &Shared, request: &MockRequest, segment: &str, v1: bool) -> Reply {
    let form = Form(request.form());
    let correlation_id = request.client_request_id(&form.0);
    let auth = ClientAuth::read(request, &form);
    let (outcome, tenant_id) = match &auth {
        Err(e) => (Outcome::Entra(e.clone()), None),
        Ok(auth) => grant(shared, request, segment, &form, auth, v1),
    };
    let now = shared.now();
    let mut reply = match outcome {
        Outcome::Minted(minted, delay) => {
            let mut r = Reply::json(200, &minted.finish()).no_store();
            r.delay = delay;
            r
        }
        Outcome::Entra(e) => e.reply(now, correlation_id.as_deref()),
        Outcome::Fault(fault, delay) => {
            let mut r = fault_reply(fault, now, correlation_id.as_deref());
            r.delay += delay;
            r
        }
    };
    if request.wants_request_id_back()
        && let Some(id) = &correlation_id
    {
        reply = reply.header("client-request-id", id);
    }
    let kind = auth
        .as_ref()
        .map(ClientAuth::kind)
        .unwrap_or(crate::CredentialKind::None);
    record(
        shared,
        RecordedRequest {
            endpoint: if v1 {
                MockEndpoint::TokenV1
            } else {
                MockEndpoint::Token
            },
            tenant: segment.to_owned(),
            tenant_id,
            client_id: auth.ok().and_then(|a| a.client_id),
            scope: form
                .get("scope")
                .or(form.get("resource"))
                .map(str::to_owned),
            grant_type: form.get("grant_type").map(str::to_owned),
            client_request_id: correlation_id,
            credential: kind,
            status: reply.status,
            form: redact(&form.0),
            query: redact(&request.query),
        },
    );
    reply
}

/// Everything under the directory lock: tenant, fault, grant. Returns the tenant GUID
/// for the log.
fn grant(
    shared: &Shared,
    request: &MockRequest,
    segment: &str,
    form: &Form,
    auth: &ClientAuth,
    v1: bool,
) -> (Outcome, Option<String>) {
    if shared.strict
        && let Err(e) = params::check(Known::Token, form.0.iter().chain(&request.query))
    {
        return (Outcome::Entra(e), None);
    }
    let mut dir = shared.dir();
    let resolved = dir.resolve_tenant(segment);
    let grant_type = form.get("grant_type");
    let latency = dir.settings.latency;
    let Some(tid) = resolved.clone() else {
        if !is_alias(segment) {
            return (finish(Err(unknown_tenant(segment)), latency), resolved);
        }
        // `organizations`/`common`: only faults injected everywhere apply (no tenant
        // named them).
        let mut latency = latency;
        match dir.faults.take(segment) {
            Some(MockFault::Latency(extra)) => latency += extra,
            Some(fault) => return (Outcome::Fault(fault, latency), resolved),
            None => {}
        }
        let outcome = match grant_type {
            Some("authorization_code") => {
                authorize::redeem(&mut dir, &shared.base, segment, None, form, auth, v1)
            }
            _ => Err(unknown_tenant(segment)),
        };
        return (finish(outcome, latency), resolved);
    };
    if let Some(fault) = dir.faults.take(&tid) {
        if let MockFault::Latency(extra) = fault {
            let outcome = by_grant(&mut dir, &shared.base, segment, &tid, form, auth, v1);
            return (finish(outcome, latency + extra), resolved);
        }
        return (Outcome::Fault(fault, latency), resolved);
    }
    let outcome = by_grant(&mut dir, &shared.base, segment, &tid, form, auth, v1);
    (finish(outcome, latency), resolved)
}

fn finish(outcome: Result<Minted, EntraErr>, delay: Duration) -> Outcome {
    match outcome {
        Ok(m) => Outcome::Minted(m, delay),
        Err(e) => Outcome::Entra(e),
    }
}

fn by_grant(
    dir: &mut crate::state::Directory,
    base: &str,
    segment: &str,
    tid: &str,
    form: &Form,
    auth: &ClientAuth,
    v1: bool,
) -> Result<Minted, EntraErr> {
    match form.get("grant_type") {
        None => Err(missing("grant_type")),
        Some("client_credentials") => {
            issue::client_credentials(dir, base, segment, tid, form, auth, v1)
        }
        Some("authorization_code") => {
            authorize::redeem(dir, base, segment, Some(tid), form, auth, v1)
        }
        Some(other) => Err(err(
            400,
            "unsupported_grant_type",
            70003,
            format!(
                "The app requested an unsupported grant type '{}'.",
                crate::error::echo(other)
            ),
        )),
    }
}

fn is_alias(segment: &str) -> bool {
    ["common", "organizations", "consumers"]
        .iter()
        .any(|a| segment.eq_ignore_ascii_case(a))
}

fn unknown_tenant(segment: &str) -> EntraErr {
    if is_alias(segment) {
        err(
            400,
            "invalid_request",
            9001023,
            "The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
        )
    } else if !well_formed_tenant(segment) {
        err(
            400,
            "invalid_request",
            900023,
            format!(
                "Specified tenant identifier '{}' is neither a valid DNS name, nor a valid external domain.",
                crate::error::echo(segment)
            ),
        )
    } else {
        err(
            400,
            "invalid_request",
            90002,
            format!(
                "Tenant '{}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
                crate::error::echo(segment)
            ),
        )
    }
}

/// Whether `segment` could name a tenant: a GUID, or a DNS name (labels of letters, digits
/// and hyphens, none starting or ending with a hyphen). Entra answers any other tenant
/// identifier with AADSTS900023, and a well-formed one it does not know with AADSTS90002.
fn well_formed_tenant(segment: &str) -> bool {
    if uuid::Uuid::try_parse(segment).is_ok() {
        return true;
    }
    segment.len() <= 253
        && segment.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The answer a scripted fault gives.
fn fault_reply(
    fault: MockFault,
    now: std::time::SystemTime,
    correlation_id: Option<&str>,
) -> Reply {
    let raw = |status: u16, body: Vec<u8>| {
        Reply::raw(status, "application/json; charset=utf-8", body).no_store()
    };
    match fault {
        MockFault::Throttle { retry_after } => {
            let r = error_reply(
                now,
                429,
                "temporarily_unavailable",
                90055,
                "The tenant is being throttled; retry after the interval in Retry-After.",
                correlation_id,
            );
            match retry_after {
                Some(after) => r.header("retry-after", &after.as_secs().to_string()),
                None => r,
            }
        }
        MockFault::ServerError { status } => error_reply(
            now,
            status,
            "temporarily_unavailable",
            50033,
            "The service is temporarily unavailable.",
            correlation_id,
        ),
        MockFault::Error {
            status,
            error,
            code,
            message,
        } => error_reply(now, status, &error, code, &message, correlation_id),
        // Served by `grant` with a delay; never reaches here.
        MockFault::Latency(_) => Reply::json(500, &json!({"error": "mock_bug"})),
        MockFault::Body { status, body } => raw(status, body),
        MockFault::Redirect { status, location } => {
            Reply::raw(status, "text/html; charset=utf-8", "")
                .header("location", &location)
                .no_store()
        }
        MockFault::Empty => raw(200, Vec::new()),
        MockFault::NotJson => Reply::raw(
            200,
            "text/html; charset=utf-8",
            "<html><body>Proxy error</body></html>",
        ),
        MockFault::Truncated => raw(
            200,
            br#"{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0eXAiOiJKV1Qi"#
                .to_vec(),
        ),
        MockFault::WrongTypes => raw(
            200,
            br#"{"token_type":"Bearer","expires_in":{"seconds":3599},"access_token":42}"#.to_vec(),
        ),
        MockFault::Oversized => {
            let mut body = br#"{"token_type":"Bearer","expires_in":3599,"access_token":""#.to_vec();
            body.resize(body.len() + 2 * 1024 * 1024, b'a');
            body.extend_from_slice(br#""}"#);
            raw(200, body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::well_formed_tenant;

    #[test]
    fn tenants_are_guids_or_dns_names() {
        for ok in [
            "9a1e5e57-8f5b-4e0e-9d1e-2b1f4f2c1a11",
            "contoso.onmicrosoft.com",
            "fabrikam.example",
            "xn--bcher-kva.example",
            "contoso",
        ] {
            assert!(well_formed_tenant(ok), "{ok}");
        }
        for malformed in [
            "not_a_tenant",
            "",
            "a..b",
            "-x.example",
            "x-.example",
            "a b",
            "ü.example",
        ] {
            assert!(!well_formed_tenant(malformed), "{malformed}");
        }
        assert!(!well_formed_tenant(&"a".repeat(64)));
    }
}

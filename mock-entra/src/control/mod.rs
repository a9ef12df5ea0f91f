//! The control API under `/_mock/`: JSON in (refused with 415 without a JSON content type,
//! so no web page can post to it), JSON out, everything the in-process API can
//! configure. A leading underscore is never a tenant, so these paths cannot shadow Entra's.
//! Bad input gets a 400 `{"error": ..., "message": ...}` naming what is wrong.

mod directory;
mod runtime;

use hyper::Method;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::MockError;
use crate::server::Shared;
use crate::wire::{MockRequest, Reply};

/// A control call's failure.
pub(crate) struct CtlErr {
    status: u16,
    error: &'static str,
    message: String,
}

impl From<MockError> for CtlErr {
    fn from(e: MockError) -> Self {
        Self {
            status: 400,
            error: e.code(),
            message: e.to_string(),
        }
    }
}

pub(crate) fn bad(message: impl Into<String>) -> CtlErr {
    CtlErr {
        status: 400,
        error: "invalid_request",
        message: message.into(),
    }
}

pub(crate) type CtlResult = Result<Value, CtlErr>;

type Handler = fn(&Shared, &MockRequest) -> CtlResult;

/// Every control endpoint: path, method, handler.
#[rustfmt::skip]
const ENDPOINTS: &[(&str, Method, Handler)] = &[
    ("health", Method::GET, runtime::health),
    ("setup", Method::GET, runtime::setup),
    ("reset", Method::POST, runtime::reset),
    ("scenario", Method::POST, directory::scenario),
    ("tenants", Method::POST, directory::tenant),
    ("domains", Method::POST, directory::domain),
    ("apps", Method::POST, directory::app),
    ("secrets", Method::POST, directory::secret),
    ("secrets/remove", Method::POST, directory::remove_secrets),
    ("certificates", Method::POST, directory::certificate),
    ("api", Method::POST, directory::api),
    ("redirect-uris", Method::POST, directory::redirect_uri),
    ("required-roles", Method::POST, directory::required_role),
    ("emit-wids", Method::POST, directory::emit_wids),
    ("resources", Method::POST, directory::resource),
    ("consent", Method::POST, directory::consent),
    ("revoke", Method::POST, directory::revoke),
    ("roles", Method::POST, directory::role),
    ("app-state", Method::POST, directory::app_state),
    ("managed-identities", Method::POST, directory::identity),
    ("federated-credentials", Method::POST, directory::federated_credential),
    ("managed-identity-token", Method::POST, directory::identity_token),
    ("managed-identity-endpoints", Method::GET, directory::identity_endpoints),
    ("users", Method::POST, directory::user),
    ("sign-in", Method::POST, directory::sign_in),
    ("sign-out", Method::POST, directory::sign_out),
    ("decline-next-consent", Method::POST, directory::decline_next_consent),
    ("faults", Method::POST, runtime::fault),
    ("faults/clear", Method::POST, runtime::clear_faults),
    ("managed-identity-faults", Method::POST, runtime::identity_fault),
    ("settings", Method::GET, runtime::get_settings),
    ("settings", Method::POST, runtime::settings),
    ("keys", Method::GET, runtime::keys),
    ("rotate-keys", Method::POST, runtime::rotate_keys),
    ("promote-key", Method::POST, runtime::promote_key),
    ("retire-old-keys", Method::POST, runtime::retire_old_keys),
    ("sign-token", Method::POST, runtime::sign_token),
    ("clock", Method::GET, runtime::clock),
    ("clock/advance", Method::POST, runtime::advance_clock),
    ("requests", Method::GET, runtime::requests),
    ("requests/clear", Method::POST, runtime::clear_requests),
];

/// Answers `/_mock/{rest}`.
pub(crate) fn route(shared: &Shared, request: &MockRequest, rest: &[&str]) -> Reply {
    if request.method != Method::GET && !is_json(request) {
        return Reply::json(
            415,
            &json!({
                "error": "unsupported_media_type",
                "message": "The control API takes JSON: send Content-Type: application/json, even with an empty body. (A web page cannot send that to another origin without a CORS preflight, which the mock refuses; form and text/plain posts are refused so that no page you visit can script the mock.)",
            }),
        );
    }
    let path = rest.join("/");
    let path = path.trim_end_matches('/');
    let matching: Vec<_> = ENDPOINTS.iter().filter(|(p, _, _)| *p == path).collect();
    let result = match matching.iter().find(|(_, m, _)| *m == request.method) {
        Some((_, _, handler)) => handler(shared, request),
        None if !matching.is_empty() => {
            let allowed: Vec<String> = matching.iter().map(|(_, m, _)| m.to_string()).collect();
            Err(bad(format!(
                "/_mock/{path} takes {}, not {}",
                allowed.join(" or "),
                request.method
            )))
        }
        None => Err(CtlErr {
            status: 404,
            error: "not_found",
            message: format!(
                "no control endpoint /_mock/{}; they are: {}",
                crate::error::echo(path),
                ENDPOINTS
                    .iter()
                    .map(|(p, m, _)| format!("{m} {p}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    };
    match result {
        Ok(value) => Reply::json(200, &value).header("cache-control", "no-store"),
        Err(e) => Reply::json(e.status, &json!({"error": e.error, "message": e.message})),
    }
}

/// Whether the request says its body is JSON: the media type before any parameter is
/// exactly `application/json`, so `text/plain; application/json` (which a web page may
/// send to any origin without asking) is not.
fn is_json(request: &MockRequest) -> bool {
    let mut types = request.headers.get_all(hyper::header::CONTENT_TYPE).iter();
    match (types.next(), types.next()) {
        (Some(only), None) => only.to_str().is_ok_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
        }),
        _ => false,
    }
}

/// The request body as `T` (an empty body is `{}`), naming the field at fault.
pub(crate) fn body<T: DeserializeOwned>(request: &MockRequest) -> Result<T, CtlErr> {
    let text = if request.body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        &request.body[..]
    };
    serde_json::from_slice(text).map_err(|e| bad(format!("the JSON body does not fit: {e}")))
}

//! The mock's HTTP face: routes each request to its endpoint family, and the helpers the
//! browser-facing endpoints share (redirect URI checks, answers to the browser).

mod authorize;
pub(crate) mod client_auth;
mod consent;
mod federation;
pub(crate) mod identity;
mod issue;
mod metadata;
pub(crate) mod params;
mod token;

use hyper::Method;
use serde_json::json;

use crate::testing::server::Shared;
use crate::testing::state::Directory;
use crate::testing::state::log::redact;
use crate::testing::wire::{EntraErr, MockRequest, Reply, encode, err, with_query};
use crate::testing::{CredentialKind, MockEndpoint, RecordedRequest};

/// Form fields of a request body, in order.
pub(crate) struct Form(pub(crate) Vec<(String, String)>);

impl Form {
    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Answers one request (the control API under `/_mock/` aside).
pub(crate) fn route(shared: &Shared, request: &MockRequest) -> Reply {
    let segs: Vec<&str> = request.segments.iter().map(String::as_str).collect();
    let get = request.method == Method::GET;
    let post = request.method == Method::POST;
    match segs.as_slice() {
        ["_mock", rest @ ..] => crate::testing::control::route(shared, request, rest),
        [t, "oauth2", "v2.0", "token"] if post => token::token(shared, request, t, false),
        [t, "oauth2", "token"] if post => token::token(shared, request, t, true),
        [t, "oauth2", "v2.0", "authorize"] if get => {
            authorize::authorize(shared, request, t, false)
        }
        [t, "oauth2", "authorize"] if get => authorize::authorize(shared, request, t, true),
        [t, "v2.0", "adminconsent"] if get => consent::admin_consent(shared, request, t, true),
        [t, "adminconsent"] if get => consent::admin_consent(shared, request, t, false),
        [t, "v2.0", ".well-known", "openid-configuration"] if get => {
            counted(shared, MockEndpoint::Metadata, t, || {
                metadata::openid_configuration(shared, t, true)
            })
        }
        [t, ".well-known", "openid-configuration"] if get => {
            counted(shared, MockEndpoint::Metadata, t, || {
                metadata::openid_configuration(shared, t, false)
            })
        }
        [t, "discovery", "v2.0", "keys"] if get => counted(shared, MockEndpoint::Keys, t, || {
            metadata::jwks(shared, t, true)
        }),
        [t, "discovery", "keys"] if get => counted(shared, MockEndpoint::Keys, t, || {
            metadata::jwks(shared, t, false)
        }),
        [t, "discovery", "instance"] | [t, "discovery", "v2.0", "instance"] if get => {
            counted(shared, MockEndpoint::InstanceDiscovery, t, || {
                metadata::instance_discovery(shared, request)
            })
        }
        ["metadata", "identity", "oauth2", "token"] if get => {
            counted(shared, MockEndpoint::ManagedIdentity, "", || {
                identity::identity(shared, request, false)
            })
        }
        ["msi", "token"] if get => counted(shared, MockEndpoint::ManagedIdentity, "", || {
            identity::identity(shared, request, true)
        }),
        _ => {
            let shown = crate::error::echo(&request.path);
            Reply::json(
                404,
                &json!({
                    "error": "not_found",
                    "error_description": format!("MockEntra does not serve {} {shown}; see docs/mock-entra.md for its endpoints", request.method),
                }),
            )
        }
    }
}

/// Serves `answer` and logs the request (GET endpoints: no form).
fn counted(
    shared: &Shared,
    endpoint: MockEndpoint,
    segment: &str,
    answer: impl FnOnce() -> Reply,
) -> Reply {
    let reply = answer();
    let tenant_id = shared.dir().resolve_tenant(segment);
    record(
        shared,
        RecordedRequest {
            endpoint,
            tenant: segment.to_owned(),
            tenant_id,
            client_id: None,
            scope: None,
            grant_type: None,
            client_request_id: None,
            credential: CredentialKind::None,
            status: reply.status,
            form: Vec::new(),
            query: Vec::new(),
        },
    );
    reply
}

pub(crate) fn record(shared: &Shared, entry: RecordedRequest) {
    shared.log().push(entry);
}

/// Logs a browser request (authorize, admin consent) with its query minus secrets.
pub(crate) fn record_browser(
    shared: &Shared,
    request: &MockRequest,
    segment: &str,
    endpoint: MockEndpoint,
    reply: &Reply,
) {
    let tenant_id = shared.dir().resolve_tenant(segment);
    record(
        shared,
        RecordedRequest {
            endpoint,
            tenant: segment.to_owned(),
            tenant_id,
            client_id: request.query("client_id").map(str::to_owned),
            scope: request.query("scope").map(str::to_owned),
            grant_type: None,
            client_request_id: request.client_request_id(&[]),
            credential: CredentialKind::None,
            status: reply.status,
            form: Vec::new(),
            query: redact(&request.query),
        },
    );
}

pub(crate) fn is_multi_tenant(segment: &str) -> bool {
    segment.eq_ignore_ascii_case("organizations") || segment.eq_ignore_ascii_case("common")
}

/// The app and redirect URI of a browser request. Registered redirect URIs must match
/// exactly; an app with none accepts any https URI, or http on loopback.
pub(crate) fn check_redirect(
    dir: &Directory,
    client_id: Option<&str>,
    redirect_uri: Option<&str>,
) -> Result<String, EntraErr> {
    let client_id = client_id.ok_or_else(|| issue::missing("client_id"))?;
    let app = dir.app(client_id).map_err(|_| {
        err(
            400,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{}' was not found in the directory.",
                crate::error::echo(client_id)
            ),
        )
    })?;
    let uri = redirect_uri.ok_or_else(|| issue::missing("redirect_uri"))?;
    let mismatch = || {
        err(
            400,
            "invalid_request",
            50011,
            format!(
                "The redirect URI '{}' specified in the request does not match the redirect URIs configured for the application '{}'.",
                crate::error::echo(uri),
                app.client_id
            ),
        )
    };
    if !app.redirect_uris.is_empty() {
        return app
            .redirect_uris
            .iter()
            .any(|u| u == uri)
            .then(|| uri.to_owned())
            .ok_or_else(mismatch);
    }
    // No URI registered: the rule the crate itself holds redirect URIs to.
    crate::consent::checked_redirect_uri(uri)
        .map(|_| uri.to_owned())
        .map_err(|_| mismatch())
}

/// Sends the browser back to `redirect` with an OAuth error.
pub(crate) fn browser_error(
    redirect: &str,
    mode: &str,
    state: Option<&str>,
    error: &str,
    e: &EntraErr,
    admin_consent: bool,
) -> Reply {
    let description = format!("AADSTS{}: {}", e.code, e.message);
    let mut pairs = vec![
        ("error", error),
        ("error_description", description.as_str()),
    ];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    if admin_consent {
        // Entra's v2 error callbacks may carry it too: clients must check `error` first.
        pairs.push(("admin_consent", "True"));
    }
    respond_to_browser(redirect, mode, &pairs)
}

/// Sends the browser to `redirect` with `pairs`: in the query (302), the fragment (302) or
/// an auto-submitting form (`form_post`, 200).
pub(crate) fn respond_to_browser(redirect: &str, mode: &str, pairs: &[(&str, &str)]) -> Reply {
    match mode {
        "form_post" => {
            let fields: String = pairs
                .iter()
                .map(|(k, v)| {
                    format!(
                        r#"<input type="hidden" name="{}" value="{}"/>"#,
                        html(k),
                        html(v)
                    )
                })
                .collect();
            let page = format!(
                r#"<html><head><title>Working...</title></head><body><form method="POST" name="hiddenform" action="{}">{fields}<noscript><input type="submit" value="Continue"/></noscript></form><script>document.forms[0].submit();</script></body></html>"#,
                html(redirect)
            );
            Reply::raw(200, "text/html; charset=utf-8", page)
                .header("cache-control", "no-store, no-cache")
        }
        "fragment" => {
            let fragment: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            Reply::redirect(&format!("{redirect}#{}", fragment.join("&")))
        }
        _ => Reply::redirect(&with_query(redirect, pairs)),
    }
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

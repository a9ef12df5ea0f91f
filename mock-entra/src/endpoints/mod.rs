//! The mock's HTTP face: routes each request to its endpoint family, and the helpers the
//! browser-facing endpoints share (redirect URI checks, answers to the browser).

pub(crate) mod authorize;
pub(crate) mod client_auth;
mod consent;
mod federation;
pub(crate) mod identity;
mod issue;
mod metadata;
pub(crate) mod params;
mod session;
mod token;

use hyper::Method;
use serde_json::json;

use crate::server::Shared;
use crate::state::Directory;
use crate::state::log::redact;
use crate::wire::{EntraErr, MockRequest, Reply, encode, err, with_query};
use crate::{CredentialKind, MockEndpoint, RecordedRequest};

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
        ["_mock", rest @ ..] => crate::control::route(shared, request, rest),
        [t, "oauth2", "v2.0", "token"] if post => token::token(shared, request, t, false),
        [t, "oauth2", "token"] if post => token::token(shared, request, t, true),
        // POST: the sign-in and consent pages' forms, posted back to the URL they came from.
        [t, "oauth2", "v2.0", "authorize"] if get || post => {
            authorize::authorize(shared, request, t, false)
        }
        [t, "oauth2", "authorize"] if get || post => authorize::authorize(shared, request, t, true),
        [t, "v2.0", "adminconsent"] if get || post => {
            consent::admin_consent(shared, request, t, true)
        }
        [t, "adminconsent"] if get || post => consent::admin_consent(shared, request, t, false),
        [_, "oauth2", "v2.0", "logout"] | [_, "oauth2", "logout"] if get || post => {
            session::logout(shared, request)
        }
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
                    "error_description": format!("MockEntra does not serve {} {shown}; see mock-entra/README.md for its endpoints", request.method),
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
    // No URI registered: https anywhere, plain http only on loopback (local development).
    acceptable_redirect_uri(uri)
        .then(|| uri.to_owned())
        .ok_or_else(mismatch)
}

/// Whether an unregistered redirect URI is one Entra would send codes to: an absolute
/// `https` URL with a host, or `http` on `localhost` or a loopback address; no user
/// information, no fragment. Any other scheme is refused, whatever its host.
fn acceptable_redirect_uri(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return false;
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => loopback,
        _ => false,
    }
}

/// Sends the browser back to `redirect` with an OAuth error (and `extra` pairs, such as
/// `error_subcode`).
pub(crate) fn browser_error(
    redirect: &str,
    mode: &str,
    state: Option<&str>,
    error: &str,
    e: &EntraErr,
    admin_consent: bool,
    extra: &[(&str, &str)],
) -> Reply {
    let description = format!("AADSTS{}: {}", e.code, e.message);
    let mut pairs = vec![
        ("error", error),
        ("error_description", description.as_str()),
    ];
    pairs.extend_from_slice(extra);
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
/// a page posting them (`form_post`, 200; its Continue button submits it, no script).
pub(crate) fn respond_to_browser(redirect: &str, mode: &str, pairs: &[(&str, &str)]) -> Reply {
    match mode {
        "form_post" => crate::pages::reply(200, crate::pages::form_post(redirect, pairs)),
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

/// An error the browser cannot be sent back to the app with (unknown app, a redirect URI
/// the mock refuses, a malformed request): Entra's error page for a browser (a request
/// that accepts `text/html`), Entra's error JSON for any other client.
pub(crate) fn refuse(request: &MockRequest, e: &EntraErr, now: std::time::SystemTime) -> Reply {
    let correlation_id = request.client_request_id(&[]);
    if !accepts_html(request) {
        return e.reply(now, correlation_id.as_deref());
    }
    let trace_id = uuid::Uuid::new_v4().to_string();
    let correlation_id = correlation_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let page = crate::pages::ErrorPage {
        error: e.error,
        code: e.code,
        message: &e.message,
        trace_id: &trace_id,
        correlation_id: &correlation_id,
    };
    crate::pages::reply(e.status, page.render()).header("x-ms-request-id", &trace_id)
}

/// Whether the client reads HTML (a browser navigating here sends `Accept: text/html,...`).
fn accepts_html(request: &MockRequest) -> bool {
    request
        .header("accept")
        .is_some_and(|a| a.to_ascii_lowercase().contains("text/html"))
}

/// The URL a page was served from (path and query), where its form posts back to.
pub(crate) fn page_action(request: &MockRequest) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&request.query)
        .finish();
    if query.is_empty() {
        request.path.clone()
    } else {
        format!("{}?{query}", request.path)
    }
}

#[cfg(test)]
mod tests {
    use super::acceptable_redirect_uri;

    #[test]
    fn unregistered_redirect_uris_must_be_https_or_http_on_loopback() {
        for ok in [
            "https://saas.example/cb",
            "https://localhost:8443/cb",
            "http://localhost/cb",
            "http://LOCALHOST:3000/cb",
            "http://127.0.0.1:8080/cb",
            "http://[::1]:8080/cb",
        ] {
            assert!(acceptable_redirect_uri(ok), "{ok}");
        }
        for bad in [
            "javascript://localhost/%0Aalert(1)",
            "data://localhost/x",
            "file://localhost/etc/passwd",
            "http://saas.example/cb",
            "http://localhost.evil.example/cb",
            "http://127.0.0.1.evil.example/cb",
            "https://user:pw@saas.example/cb",
            "https://saas.example/cb#frag",
            "not a url",
        ] {
            assert!(!acceptable_redirect_uri(bad), "{bad}");
        }
    }
}

//! OpenID metadata (v1 and v2, per tenant and for `common`/`organizations`), JWKS and
//! instance discovery, with the fields, headers and errors Entra serves (as captured from
//! Entra and read by MSAL Python, msal-node and MSAL.NET).

use serde_json::{Value, json};

use crate::server::Shared;
use crate::wire::{EntraErr, MockRequest, Reply, err};

/// `common` or `organizations` (metadata and keys with the `{tenantid}` template).
fn multi_tenant(segment: &str) -> Option<&'static str> {
    if segment.eq_ignore_ascii_case("common") {
        Some("common")
    } else if segment.eq_ignore_ascii_case("organizations") {
        Some("organizations")
    } else {
        None
    }
}

fn unknown_tenant(segment: &str) -> EntraErr {
    err(
        400,
        "invalid_tenant",
        90002,
        format!(
            "Tenant '{}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.",
            crate::error::echo(segment)
        ),
    )
}

/// The path segment metadata URLs use and the issuer's tenant part, or the error.
fn tenant_parts(shared: &Shared, segment: &str) -> Result<(String, String), EntraErr> {
    if let Some(alias) = multi_tenant(segment) {
        return Ok((alias.to_owned(), "{tenantid}".to_owned()));
    }
    match shared.dir().resolve_tenant(segment) {
        Some(tid) => Ok((tid.clone(), tid)),
        None => Err(unknown_tenant(segment)),
    }
}

fn unavailable(shared: &Shared) -> Option<Reply> {
    shared.dir().settings.keys_unavailable.then(|| {
        Reply::raw(
            503,
            "text/plain; charset=utf-8",
            "key endpoints are down (scripted)",
        )
    })
}

/// `/{tenant}/v2.0/.well-known/openid-configuration` and the v1 document.
pub(crate) fn openid_configuration(shared: &Shared, segment: &str, v2: bool) -> Reply {
    if let Some(down) = unavailable(shared) {
        return down;
    }
    let (seg, issuer_tid) = match tenant_parts(shared, segment) {
        Ok(parts) => parts,
        Err(e) => return e.reply(shared.now(), None),
    };
    let base = &shared.base;
    let t = format!("{base}{seg}");
    let region = if issuer_tid == "{tenantid}" {
        Value::Null
    } else {
        json!("WW")
    };
    let mut doc = json!({
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "request_uri_parameter_supported": false,
        "kerberos_endpoint": format!("{t}/kerberos"),
        "tenant_region_scope": region,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    });
    let fields = if v2 {
        json!({
            "token_endpoint": format!("{t}/oauth2/v2.0/token"),
            "jwks_uri": format!("{t}/discovery/v2.0/keys"),
            "issuer": format!("{base}{issuer_tid}/v2.0"),
            "authorization_endpoint": format!("{t}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{t}/oauth2/v2.0/devicecode"),
            "end_session_endpoint": format!("{t}/oauth2/v2.0/logout"),
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        })
    } else {
        json!({
            "token_endpoint": format!("{t}/oauth2/token"),
            "jwks_uri": format!("{base}common/discovery/keys"),
            "issuer": format!("https://sts.windows.net/{issuer_tid}/"),
            "authorization_endpoint": format!("{t}/oauth2/authorize"),
            "device_authorization_endpoint": format!("{t}/oauth2/devicecode"),
            "end_session_endpoint": format!("{t}/oauth2/logout"),
            "check_session_iframe": format!("{t}/oauth2/checksession"),
            "userinfo_endpoint": format!("{t}/openid/userinfo"),
            "microsoft_multi_refresh_token": true,
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "scopes_supported": ["openid"],
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "given_name", "family_name", "nickname"],
        })
    };
    if let (Some(doc), Value::Object(fields)) = (doc.as_object_mut(), fields) {
        doc.extend(fields);
    }
    Reply::json(200, &doc).cacheable()
}

/// `/{tenant}/discovery/v2.0/keys` (v2 keys carry `issuer`) and `/{tenant}/discovery/keys`.
pub(crate) fn jwks(shared: &Shared, segment: &str, v2: bool) -> Reply {
    if let Some(down) = unavailable(shared) {
        return down;
    }
    let (_, issuer_tid) = match tenant_parts(shared, segment) {
        Ok(parts) => parts,
        Err(e) => return e.reply(shared.now(), None),
    };
    let issuer = v2.then(|| format!("{}{issuer_tid}/v2.0", shared.base));
    let keys: Vec<Value> = {
        let dir = shared.dir();
        dir.keys
            .published()
            .iter()
            .map(|k| k.jwk(issuer.as_deref()))
            .collect()
    };
    Reply::json(200, &json!({ "keys": keys })).cacheable()
}

/// `/{tenant}/discovery/instance?api-version=..&authorization_endpoint=..`: for the mock's
/// own host (named with or without its port), its tenant discovery endpoint and aliases;
/// any other host is unknown.
pub(crate) fn instance_discovery(shared: &Shared, request: &MockRequest) -> Reply {
    let now = shared.now();
    let Some(endpoint) = request.query("authorization_endpoint") else {
        return err(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'authorization_endpoint'.",
        )
        .reply(now, None);
    };
    let unknown = || {
        err(
            400,
            "invalid_instance",
            50049,
            "Unknown or invalid instance.",
        )
        .reply(now, None)
    };
    let Ok(url) = url::Url::parse(endpoint) else {
        return unknown();
    };
    let Some(host) = url.host_str() else {
        return unknown();
    };
    // MSAL Python names the authority by host name alone (it drops the port), as a
    // real authority has none: the mock's host name is known with or without its port.
    let known = shared.hosts.iter().any(|served| match url.port() {
        Some(port) => served.eq_ignore_ascii_case(&format!("{host}:{port}")),
        None => served_host_name(served).eq_ignore_ascii_case(host),
    });
    if !known {
        return unknown();
    }
    let tenant = url
        .path_segments()
        .and_then(|mut s| s.next())
        .filter(|s| !s.is_empty())
        .unwrap_or("common");
    let preferred = shared.hosts[0].clone();
    Reply::json(
        200,
        &json!({
            "tenant_discovery_endpoint": format!("{}{tenant}/v2.0/.well-known/openid-configuration", shared.base),
            "api-version": request.query("api-version").unwrap_or("1.1"),
            "metadata": [{
                "preferred_network": preferred,
                "preferred_cache": preferred,
                "aliases": shared.hosts,
            }],
        }),
    )
    .cacheable()
}

/// The host name of a `host:port` (or `[v6]:port`) entry.
fn served_host_name(served: &str) -> &str {
    match served.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !host.is_empty() => host,
        _ => served,
    }
}

//! Managed identity endpoints: IMDS (`Metadata: true`) and App Service
//! (`X-IDENTITY-HEADER`), answering with string-valued numbers as they do.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::clock::unix_secs;
use crate::keys::SigningKey;
use crate::server::Shared;
use crate::state::{Directory, Identity};
use crate::wire::{MockRequest, Reply};

/// A managed identity token for `resource` (claims, key, and the IMDS body without
/// `access_token`); sign it outside the lock.
pub(crate) fn identity_token(
    dir: &mut Directory,
    base: &str,
    identity: &Identity,
    resource: &str,
) -> (Value, Arc<SigningKey>, Value) {
    let now_t = dir.now();
    let now = unix_secs(now_t);
    let life = dir.settings.identity_token_lifetime.as_secs();
    let aud = resource.trim_end_matches("/.default");
    let claims = json!({
        "aud": aud,
        "iss": format!("{base}{}/v2.0", identity.tenant),
        "iat": now, "nbf": now, "exp": now + life,
        "azp": identity.client_id,
        "appid": identity.client_id,
        "idtyp": "app",
        "oid": identity.object_id,
        "sub": identity.object_id,
        "tid": identity.tenant,
        "ver": "2.0",
        "xms_mirid": identity.resource_id,
    });
    let body = json!({
        "client_id": identity.client_id,
        "expires_in": life.to_string(),
        "ext_expires_in": life.to_string(),
        "expires_on": (now + life).to_string(),
        "not_before": now.to_string(),
        "resource": aud,
        "token_type": "Bearer",
    });
    (claims, dir.keys.signing(now_t), body)
}

fn bad(status: u16, error: &str, description: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

/// IMDS (`app_service` false) and App Service token endpoints.
pub(crate) fn identity(shared: &Shared, request: &MockRequest, app_service: bool) -> Reply {
    let mut dir = shared.dir();
    if app_service {
        if request.header("x-identity-header") != Some(dir.identity_header.as_str()) {
            return bad(
                401,
                "invalid_request",
                "X-IDENTITY-HEADER is missing or wrong",
            );
        }
    } else if request.header("metadata") != Some("true") {
        return bad(
            400,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    if let Some(slot) = dir.identity_faults.iter_mut().find(|f| f.1 > 0) {
        slot.1 -= 1;
        let status = slot.0;
        dir.identity_faults.retain(|f| f.1 > 0);
        return bad(status, "unavailable", "scripted managed identity failure");
    }
    let Some(resource) = request.query("resource") else {
        return bad(
            400,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    let q = |name: &str| request.query(name);
    let found = dir.identities.iter().find(|i| {
        q("client_id") == Some(i.client_id.as_str())
            || q("object_id") == Some(i.object_id.as_str())
            || q("principal_id") == Some(i.object_id.as_str())
            || q("msi_res_id") == Some(i.resource_id.as_str())
            || q("mi_res_id") == Some(i.resource_id.as_str())
    });
    let Some(identity) = found.cloned() else {
        return bad(400, "invalid_request", "Identity not found");
    };
    let (claims, key, mut body) = identity_token(&mut dir, &shared.base, &identity, resource);
    drop(dir);
    body["access_token"] = json!(key.sign(&claims, false));
    Reply::json(200, &body)
}

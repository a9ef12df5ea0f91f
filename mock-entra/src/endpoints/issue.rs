//! The client credentials grant, checked in Entra's order: app in the tenant, the scope's
//! one resource, the credential, the app's state in the tenant; then the token's claims.
//! Signing happens after the directory lock is released (see [`Minted`]).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::clock::unix_secs;
use crate::endpoints::Form;
use crate::endpoints::client_auth::{ClientAuth, authenticate};
use crate::keys::SigningKey;
use crate::state::{Directory, KNOWN_RESOURCES, resource_key};
use crate::wire::{EntraErr, err};

/// A token answer whose tokens are still to be signed.
pub(crate) struct Minted {
    pub(crate) key: Arc<SigningKey>,
    /// The access token's claims; `x5t` in its header (v1 tokens).
    pub(crate) access: Value,
    pub(crate) x5t: bool,
    pub(crate) id_token: Option<Value>,
    /// `x5t` in the id token's header (v1 id tokens).
    pub(crate) id_x5t: bool,
    /// The answer without `access_token` and `id_token`.
    pub(crate) body: Value,
}

impl Minted {
    /// Signs the tokens and completes the answer (no lock held: RSA signing is slow).
    pub(crate) fn finish(self) -> Value {
        let mut body = self.body;
        body["access_token"] = json!(self.key.sign(&self.access, self.x5t));
        if let Some(id) = &self.id_token {
            body["id_token"] = json!(self.key.sign(id, self.id_x5t));
        }
        body
    }
}

pub(crate) fn missing(name: &str) -> EntraErr {
    err(
        400,
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{name}'."),
    )
}

/// Client credentials in tenant `tid` (a GUID the mock knows), on the v2 endpoint
/// (`scope`) or the v1 endpoint (`resource`).
pub(crate) fn client_credentials(
    dir: &mut Directory,
    base: &str,
    segment: &str,
    tid: &str,
    form: &Form,
    auth: &ClientAuth,
    v1: bool,
) -> Result<Minted, EntraErr> {
    let client_id = auth
        .client_id
        .as_deref()
        .ok_or_else(|| missing("client_id"))?
        .to_ascii_lowercase();
    let resource = requested_resource(form, v1)?;
    let not_found = || not_in_tenant(&client_id, tid);
    let app = dir.apps.get(&client_id).ok_or_else(not_found)?;
    let sp = dir.tenants[tid].sps.get(&client_id).ok_or_else(not_found)?;
    let (aud, v2, key) = resolve_resource(dir, tid, &resource).ok_or_else(|| {
        err(
            400,
            "invalid_resource",
            500011,
            format!("The resource principal named {resource} was not found in the tenant named {tid}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."),
        )
    })?;
    let authenticated = authenticate(dir, base, app, tid, segment, auth)?;
    if !sp.enabled {
        let message = format!(
            "Application '{client_id}'({}) is disabled.",
            app.display_name
        );
        return Err(err(400, "unauthorized_client", 7000112, message));
    }
    if sp.blocked_by_ca {
        return Err(err(
            400,
            "invalid_grant",
            53003,
            "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
        ));
    }
    let now = dir.now();
    let iat = unix_secs(now);
    let life = dir.settings.token_lifetime.as_secs();
    let mut claims = json!({
        "aud": aud, "iat": iat, "nbf": iat, "exp": iat + life,
        "idtyp": "app", "oid": sp.object_id, "sub": sp.object_id, "tid": tid,
        "uti": uuid::Uuid::new_v4().simple().to_string(), "rh": "0.mock.",
    });
    add_client_claims(&mut claims, base, tid, app, authenticated.acr, v2);
    if let Some(roles) = sp.roles.get(&key).filter(|r| !r.is_empty()) {
        claims["roles"] = json!(roles);
    }
    if let Some((jti, forget_at)) = authenticated.jti
        && !dir.first_use_of_jti(&jti, forget_at)
    {
        return Err(err(
            401,
            "invalid_client",
            700027,
            "Client assertion failed signature validation. The assertion's jti was already used (replay).",
        ));
    }
    let body = if v1 {
        json!({
            "token_type": "Bearer", "expires_in": life.to_string(),
            "ext_expires_in": life.to_string(), "expires_on": (iat + life).to_string(),
            "not_before": iat.to_string(), "resource": resource,
        })
    } else {
        v2_body(dir, life)
    };
    Ok(Minted {
        key: dir.keys.signing(now),
        access: claims,
        x5t: !v2,
        id_token: None,
        id_x5t: false,
        body,
    })
}

/// AADSTS700016: no service principal of the app in the tenant.
fn not_in_tenant(client_id: &str, tid: &str) -> EntraErr {
    err(
        400,
        "unauthorized_client",
        700016,
        format!(
            "Application with identifier '{client_id}' was not found in the directory '{tid}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
        ),
    )
}

/// The resource a client-credentials request asks for: v1 `resource`, v2 `scope`.
fn requested_resource(form: &Form, v1: bool) -> Result<String, EntraErr> {
    if v1 {
        return Ok(form
            .get("resource")
            .ok_or_else(|| missing("resource"))?
            .to_owned());
    }
    if form.get("resource").is_some() {
        return Err(err(
            400,
            "invalid_request",
            901002,
            "The 'resource' request parameter is not supported.",
        ));
    }
    parse_scope(form.get("scope").ok_or_else(|| missing("scope"))?)
}

/// The issuer and client claims of a v2 (`azp`) or v1 (`appid`, `idp`) access token.
fn add_client_claims(
    claims: &mut Value,
    base: &str,
    tid: &str,
    app: &crate::state::App,
    acr: &str,
    v2: bool,
) {
    let client_id = &app.client_id;
    if v2 {
        claims["iss"] = json!(format!("{base}{tid}/v2.0"));
        claims["azp"] = json!(client_id);
        claims["azpacr"] = json!(acr);
        claims["ver"] = json!("2.0");
    } else {
        claims["iss"] = json!(format!("https://sts.windows.net/{tid}/"));
        claims["idp"] = json!(format!("https://sts.windows.net/{}/", app.home_tenant));
        claims["appid"] = json!(client_id);
        claims["appidacr"] = json!(acr);
        claims["ver"] = json!("1.0");
    }
}

/// `token_type`, `expires_in`, `ext_expires_in` (numbers, or strings when set so) and
/// `refresh_in` when set.
pub(crate) fn v2_body(dir: &Directory, life: u64) -> Value {
    let expires_in = if dir.settings.expires_in_as_string {
        json!(life.to_string())
    } else {
        json!(life)
    };
    let mut body =
        json!({"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in});
    if let Some(r) = dir.settings.refresh_in {
        body["refresh_in"] = json!(r.as_secs());
    }
    body
}

/// The one resource of a client-credentials scope, as Entra checks it.
fn parse_scope(scope: &str) -> Result<String, EntraErr> {
    let mut resources = scope.split_whitespace().map(|s| match s.strip_suffix("/.default") {
        Some(r) if !r.is_empty() => Ok(r),
        _ => Err(err(
            400,
            "invalid_scope",
            1002012,
            format!("The provided value for scope {} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", crate::error::echo(s)),
        )),
    });
    let first = resources.next().ok_or_else(|| missing("scope"))??;
    for other in resources {
        if other? != first {
            return Err(err(
                400,
                "invalid_scope",
                70011,
                format!(
                    "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {} is not valid.",
                    crate::error::echo(scope)
                ),
            ));
        }
    }
    Ok(first.to_owned())
}

/// `(aud claim, v2?, key for role grants)` of a resource available in tenant `tid`.
fn resolve_resource(dir: &Directory, tid: &str, resource: &str) -> Option<(String, bool, String)> {
    let key = resource_key(resource);
    if KNOWN_RESOURCES.contains(&key.as_str()) || dir.has_resource(tid, &key) {
        return Some((resource.to_owned(), false, key));
    }
    // An API exposed by an app registration: by App ID URI, `api://{client id}` or client id.
    let client_id = dir.api_index.get(&key)?;
    // Its service principal must exist in the tenant (home tenant or consented).
    dir.tenants[tid].sps.contains_key(client_id).then(|| {
        (
            client_id.clone(),
            true,
            dir.apps[client_id].app_id_uri.clone().unwrap_or(key),
        )
    })
}

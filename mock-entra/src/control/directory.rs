//! Control endpoints that set the directory up: tenants, apps, credentials, APIs,
//! consent, managed identities, users and the browser session. Tenants, apps, identities
//! and users are named by scenario name, GUID or (tenants) domain.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{CtlResult, bad, body};
use crate::scenario::spec::{
    self, AppSpec, IdentitySpec, Scenario, SecretSpec, TenantSpec, UserSpec,
};
use crate::scenario::{apply, parse};
use crate::server::Shared;
use crate::wire::MockRequest;

/// Applies a one-entry scenario and returns that entry's setup.
fn apply_one(shared: &Shared, scenario: Scenario, section: &str, name: &str) -> CtlResult {
    let applied = apply(shared, scenario)?;
    Ok(applied.setup[section][name].clone())
}

fn name_or_new(name: Option<String>) -> String {
    name.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..8].to_owned())
}

pub(super) fn scenario(shared: &Shared, request: &MockRequest) -> CtlResult {
    let document: Value = body(request)?;
    Ok(apply(shared, parse(&document)?)?.setup)
}

/// The body without its `key` field (a string), and the rest as `T` (whose unknown
/// fields are refused; serde's `flatten` would let them through).
fn split<T: serde::de::DeserializeOwned>(
    request: &MockRequest,
    key: &str,
) -> Result<(Option<String>, T), super::CtlErr> {
    let mut document: Value = body(request)?;
    let Some(object) = document.as_object_mut() else {
        return Err(bad("the body must be a JSON object"));
    };
    let taken = match object.remove(key) {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(bad(format!("'{key}' must be a string"))),
    };
    let rest = serde_json::from_value(document)
        .map_err(|e| bad(format!("the JSON body does not fit: {e}")))?;
    Ok((taken, rest))
}

pub(super) fn tenant(shared: &Shared, request: &MockRequest) -> CtlResult {
    let (name, spec): (_, TenantSpec) = split(request, "name")?;
    let name = name_or_new(name);
    let scenario = Scenario {
        tenants: BTreeMap::from([(name.clone(), spec)]),
        ..Default::default()
    };
    apply_one(shared, scenario, "tenants", &name)
}

pub(super) fn app(shared: &Shared, request: &MockRequest) -> CtlResult {
    let (name, spec): (_, AppSpec) = split(request, "name")?;
    let name = name_or_new(name);
    let scenario = Scenario {
        apps: BTreeMap::from([(name.clone(), spec)]),
        ..Default::default()
    };
    apply_one(shared, scenario, "apps", &name)
}

pub(super) fn identity(shared: &Shared, request: &MockRequest) -> CtlResult {
    let (name, spec): (_, IdentitySpec) = split(request, "name")?;
    let name = name_or_new(name);
    let scenario = Scenario {
        managed_identities: BTreeMap::from([(name.clone(), spec)]),
        ..Default::default()
    };
    apply_one(shared, scenario, "managed_identities", &name)
}

pub(super) fn user(shared: &Shared, request: &MockRequest) -> CtlResult {
    let (name, spec): (_, UserSpec) = split(request, "name")?;
    let name = name_or_new(name);
    let scenario = Scenario {
        users: BTreeMap::from([(name.clone(), spec)]),
        ..Default::default()
    };
    apply_one(shared, scenario, "users", &name)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantDomain {
    tenant: String,
    domain: String,
}

pub(super) fn domain(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: TenantDomain = body(request)?;
    let names = shared.names();
    let mut dir = shared.dir();
    let tenant = names.tenant(&b.tenant);
    dir.add_domain(tenant, &b.domain)?;
    let tid = dir.tenant(tenant)?.id.clone();
    Ok(json!({"id": tid, "domains": dir.domains_of(&tid)}))
}

pub(super) fn secret(shared: &Shared, request: &MockRequest) -> CtlResult {
    let (app, spec): (_, SecretSpec) = split(request, "app")?;
    let app = app.ok_or_else(|| bad("missing field `app`"))?;
    let names = shared.names();
    let mut dir = shared.dir();
    let now = dir.now();
    let expires = match (spec.expired, spec.expires_in_secs) {
        (true, _) => now - std::time::Duration::from_secs(1),
        (false, Some(s)) => now + std::time::Duration::from_secs(s),
        (false, None) => now + std::time::Duration::from_secs(2 * 365 * 86_400),
    };
    let value = dir.add_secret(names.app(&app), spec.value.as_deref(), expires)?;
    Ok(json!({"value": value, "expires_on": crate::clock::unix_secs(expires)}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppOnly {
    app: String,
}

pub(super) fn remove_secrets(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: AppOnly = body(request)?;
    let names = shared.names();
    shared.dir().app_mut(names.app(&b.app))?.secrets.clear();
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppCert {
    app: String,
    #[serde(default)]
    pem: Option<String>,
}

pub(super) fn certificate(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: AppCert = body(request)?;
    let (pem, key) = match b.pem {
        Some(pem) => (pem, None),
        None => {
            let (pem, key) = crate::keys::client_certificate(&b.app);
            (pem, Some(key))
        }
    };
    let names = shared.names();
    let thumbprints = shared
        .dir()
        .add_certificate(names.app(&b.app), pem.as_bytes())?;
    let mut out =
        json!({"x5t": thumbprints.x5t, "x5t_s256": thumbprints.x5t_s256, "certificate_pem": pem});
    if let Some(key) = key {
        out["private_key_pem"] = json!(key);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppApi {
    app: String,
    #[serde(default)]
    app_id_uri: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

pub(super) fn api(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: AppApi = body(request)?;
    let names = shared.names();
    let uri = shared
        .dir()
        .expose_api(names.app(&b.app), b.app_id_uri.as_deref(), &b.roles)?;
    Ok(json!({"app_id_uri": uri}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppUri {
    app: String,
    uri: String,
}

pub(super) fn redirect_uri(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: AppUri = body(request)?;
    let names = shared.names();
    shared.dir().add_redirect_uri(names.app(&b.app), &b.uri)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppWids {
    app: String,
    emit: bool,
}

pub(super) fn emit_wids(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: AppWids = body(request)?;
    let names = shared.names();
    shared.dir().emit_wids(names.app(&b.app), b.emit)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppRole {
    app: String,
    resource: String,
    role: String,
}

pub(super) fn required_role(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: AppRole = body(request)?;
    let names = shared.names();
    shared
        .dir()
        .require_role(names.app(&b.app), &b.resource, &b.role)?;
    Ok(json!({}))
}

pub(super) fn resource(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: spec::ResourceSpec = body(request)?;
    let names = shared.names();
    shared
        .dir()
        .add_resource(names.tenant(&b.tenant), &b.resource)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantApp {
    tenant: String,
    app: String,
    #[serde(default)]
    roles: Vec<spec::RoleSpec>,
}

pub(super) fn consent(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: TenantApp = body(request)?;
    let names = shared.names();
    let mut dir = shared.dir();
    let (tenant, app) = (names.tenant(&b.tenant), names.app(&b.app));
    let object_id = dir.consent(tenant, app)?;
    for r in &b.roles {
        dir.grant_role(tenant, app, &r.resource, &r.role)?;
    }
    Ok(json!({"service_principal_object_id": object_id}))
}

pub(super) fn revoke(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: TenantApp = body(request)?;
    let names = shared.names();
    shared
        .dir()
        .revoke(names.tenant(&b.tenant), names.app(&b.app))?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Grant {
    tenant: String,
    app: String,
    resource: String,
    role: String,
}

pub(super) fn role(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: Grant = body(request)?;
    let names = shared.names();
    shared.dir().grant_role(
        names.tenant(&b.tenant),
        names.app(&b.app),
        &b.resource,
        &b.role,
    )?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppState {
    tenant: String,
    app: String,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    blocked_by_conditional_access: Option<bool>,
}

pub(super) fn app_state(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: AppState = body(request)?;
    let names = shared.names();
    let mut dir = shared.dir();
    let sp = dir.sp_mut(names.tenant(&b.tenant), names.app(&b.app))?;
    if let Some(v) = b.enabled {
        sp.enabled = v;
    }
    if let Some(v) = b.blocked_by_conditional_access {
        sp.blocked_by_ca = v;
    }
    Ok(json!({"enabled": sp.enabled, "blocked_by_conditional_access": sp.blocked_by_ca}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Federated {
    app: String,
    #[serde(default)]
    managed_identity: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    replication_secs: u64,
}

pub(super) fn federated_credential(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: Federated = body(request)?;
    let names = shared.names();
    let mut dir = shared.dir();
    let (issuer, subject) = match (&b.managed_identity, b.issuer, b.subject) {
        (Some(mi), None, None) => {
            let identity = dir.identity(names.identity(mi))?;
            (
                format!("{}{}/v2.0", shared.base, identity.tenant),
                identity.object_id.clone(),
            )
        }
        (None, Some(i), Some(s)) => (i, s),
        _ => return Err(bad("give either managed_identity, or issuer and subject")),
    };
    let audience = b
        .audience
        .unwrap_or_else(|| "api://AzureADTokenExchange".into());
    let delay = std::time::Duration::from_secs(b.replication_secs);
    dir.add_fic(names.app(&b.app), &issuer, &subject, &audience, delay)?;
    Ok(json!({"issuer": issuer, "subject": subject, "audience": audience}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityToken {
    managed_identity: String,
    #[serde(default = "exchange")]
    audience: String,
}

fn exchange() -> String {
    "api://AzureADTokenExchange".into()
}

pub(super) fn identity_token(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: IdentityToken = body(request)?;
    let names = shared.names();
    let (claims, key) = {
        let mut dir = shared.dir();
        let identity = dir.identity(names.identity(&b.managed_identity))?.clone();
        let (claims, key, _) = crate::endpoints::identity::identity_token(
            &mut dir,
            &shared.base,
            &identity,
            &b.audience,
        );
        (claims, key)
    };
    Ok(json!({"access_token": key.sign(&claims, false)}))
}

pub(super) fn identity_endpoints(shared: &Shared, _: &MockRequest) -> CtlResult {
    Ok(json!({
        "imds": format!("{}metadata/identity/oauth2/token", shared.base),
        "app_service": format!("{}msi/token", shared.base),
        "identity_header": shared.dir().identity_header,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Who {
    user: String,
}

pub(super) fn sign_in(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: Who = body(request)?;
    let names = shared.names();
    let mut dir = shared.dir();
    let oid = dir.user(names.user(&b.user))?.object_id.clone();
    dir.session = Some(oid.clone());
    Ok(json!({"signed_in": oid}))
}

pub(super) fn sign_out(shared: &Shared, _: &MockRequest) -> CtlResult {
    let mut dir = shared.dir();
    dir.session = None;
    dir.browser_sessions.clear();
    Ok(json!({}))
}

pub(super) fn decline_next_consent(shared: &Shared, _: &MockRequest) -> CtlResult {
    shared.dir().decline_next_consent = true;
    Ok(json!({}))
}

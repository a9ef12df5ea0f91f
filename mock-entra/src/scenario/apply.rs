//! Applying a scenario: tenants, users, managed identities, apps, resources, consents,
//! settings, faults, in that order. Returns the setup (what was created, by name) and the
//! resolved document (every generated id, secret and certificate filled in) for `reset`.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::Names;
use super::spec::{AppSpec, Scenario, SettingsSpec};
use crate::MockError;
use crate::keys;
use crate::server::Shared;
use crate::state::Directory;

/// What applying a document produced.
pub(crate) struct Applied {
    pub(crate) setup: Value,
    pub(crate) resolved: Scenario,
}

/// Applies `scenario` to the mock behind `shared`.
pub(crate) fn apply(shared: &Shared, mut scenario: Scenario) -> Result<Applied, MockError> {
    // RSA key generation is slow: do it before taking any lock.
    for (app_name, app) in &mut scenario.apps {
        for (name, cert) in &mut app.certificates {
            if cert.pem.is_none() {
                let (pem, key) = keys::client_certificate(&format!("{app_name}-{name}"));
                cert.pem = Some(pem);
                cert.private_key_pem = Some(key);
            }
        }
    }
    let mut names = shared.names();
    let mut dir = shared.dir();
    let mut setup = Map::new();
    tenants(&mut dir, &mut names, &mut scenario, &mut setup)?;
    users(&mut dir, &mut names, &mut scenario, &mut setup)?;
    identities(&mut dir, &mut names, &mut scenario, &mut setup)?;
    let mut apps_out = Map::new();
    for (name, app) in &mut scenario.apps {
        let out = register(&mut dir, &mut names, name, app, &shared.base)?;
        apps_out.insert(name.clone(), out);
    }
    if !apps_out.is_empty() {
        setup.insert("apps".into(), Value::Object(apps_out));
    }
    for r in &scenario.resources {
        dir.add_resource(names.tenant(&r.tenant), &r.resource)?;
    }
    let mut consents = Vec::new();
    for c in &scenario.consents {
        let (tenant, app) = (
            names.tenant(&c.tenant).to_owned(),
            names.app(&c.app).to_owned(),
        );
        let object_id = dir.consent(&tenant, &app)?;
        for role in &c.roles {
            dir.grant_role(&tenant, &app, &role.resource, &role.role)?;
        }
        let sp = dir.sp_mut(&tenant, &app)?;
        sp.enabled = c.enabled;
        sp.blocked_by_ca = c.blocked_by_conditional_access;
        let tid = dir.tenant(&tenant)?.id.clone();
        consents.push(json!({"tenant": tid, "app": app, "service_principal_object_id": object_id}));
    }
    if !consents.is_empty() {
        setup.insert("consents".into(), Value::Array(consents));
    }
    if let Some(settings) = &scenario.settings {
        apply_settings(&mut dir, settings);
    }
    for f in &scenario.faults {
        let tenant = match &f.tenant {
            Some(t) => Some(dir.tenant(names.tenant(t))?.id.clone()),
            None => None,
        };
        let fault = f.fault.clone().into_fault().map_err(MockError::Invalid)?;
        dir.faults.push(tenant, fault, f.times);
    }
    let setup = Value::Object(setup);
    names.merge(&setup);
    Ok(Applied {
        setup,
        resolved: scenario,
    })
}

fn tenants(
    dir: &mut Directory,
    names: &mut Names,
    s: &mut Scenario,
    setup: &mut Map<String, Value>,
) -> Result<(), MockError> {
    let mut out = Map::new();
    for (name, t) in &mut s.tenants {
        let id = dir.add_tenant(t.id.as_deref(), &t.domains)?;
        t.id = Some(id.clone());
        names.tenants.insert(name.clone(), id.clone());
        out.insert(
            name.clone(),
            json!({"id": id, "domains": dir.domains_of(&id)}),
        );
    }
    if !out.is_empty() {
        setup.insert("tenants".into(), Value::Object(out));
    }
    Ok(())
}

fn users(
    dir: &mut Directory,
    names: &mut Names,
    s: &mut Scenario,
    setup: &mut Map<String, Value>,
) -> Result<(), MockError> {
    let mut out = Map::new();
    for (name, u) in &mut s.users {
        let user = dir.add_user(
            names.tenant(&u.tenant),
            &u.upn,
            u.display_name.as_deref(),
            u.admin,
            u.object_id.as_deref(),
            u.directory_roles.as_deref(),
        )?;
        u.directory_roles = Some(user.directory_roles.clone());
        u.object_id = Some(user.object_id.clone());
        names.users.insert(name.clone(), user.object_id.clone());
        out.insert(
            name.clone(),
            json!({"object_id": user.object_id, "upn": user.upn, "display_name": user.display_name, "tenant": user.tenant, "admin": user.admin, "directory_roles": user.directory_roles}),
        );
    }
    if !out.is_empty() {
        setup.insert("users".into(), Value::Object(out));
    }
    Ok(())
}

fn identities(
    dir: &mut Directory,
    names: &mut Names,
    s: &mut Scenario,
    setup: &mut Map<String, Value>,
) -> Result<(), MockError> {
    let mut out = Map::new();
    for (name, i) in &mut s.managed_identities {
        let ids = [
            i.client_id.as_deref(),
            i.object_id.as_deref(),
            i.resource_id.as_deref(),
        ];
        let identity = dir.add_identity(names.tenant(&i.tenant), name, ids)?;
        i.client_id = Some(identity.client_id.clone());
        i.object_id = Some(identity.object_id.clone());
        i.resource_id = Some(identity.resource_id.clone());
        names
            .identities
            .insert(name.clone(), identity.client_id.clone());
        out.insert(
            name.clone(),
            json!({"client_id": identity.client_id, "object_id": identity.object_id, "resource_id": identity.resource_id, "tenant": identity.tenant}),
        );
    }
    if !out.is_empty() {
        setup.insert("managed_identities".into(), Value::Object(out));
    }
    Ok(())
}

/// Registers one app with everything it declares; returns its setup entry.
fn register(
    dir: &mut Directory,
    names: &mut Names,
    name: &str,
    app: &mut AppSpec,
    base: &str,
) -> Result<Value, MockError> {
    let display = app.display_name.clone().unwrap_or_else(|| name.to_owned());
    let client_id =
        dir.register_app(names.tenant(&app.home), &display, app.client_id.as_deref())?;
    app.client_id = Some(client_id.clone());
    names.apps.insert(name.to_owned(), client_id.clone());
    let now = dir.now();
    let mut secrets = Map::new();
    for (secret_name, s) in &mut app.secrets {
        let expires = match (s.expired, s.expires_in_secs) {
            (true, _) => now - Duration::from_secs(1),
            (false, Some(secs)) => now + Duration::from_secs(secs),
            (false, None) => now + Duration::from_secs(2 * 365 * 86_400),
        };
        let value = dir.add_secret(&client_id, s.value.as_deref(), expires)?;
        s.value = Some(value.clone());
        secrets.insert(secret_name.clone(), json!(value));
    }
    let mut certificates = Map::new();
    for (cert_name, c) in &app.certificates {
        let pem = c.pem.clone().unwrap_or_default();
        let thumbprints = dir.add_certificate(&client_id, pem.as_bytes())?;
        let mut entry = json!({"x5t": thumbprints.x5t, "x5t_s256": thumbprints.x5t_s256, "certificate_pem": pem});
        if let Some(key) = &c.private_key_pem {
            entry["private_key_pem"] = json!(key);
        }
        certificates.insert(cert_name.clone(), entry);
    }
    let mut out = json!({"client_id": client_id, "home_tenant": dir.app(&client_id)?.home_tenant, "secrets": secrets, "certificates": certificates});
    if let Some(api) = &app.api {
        out["app_id_uri"] =
            json!(dir.expose_api(&client_id, api.app_id_uri.as_deref(), &api.roles)?);
    }
    for uri in &app.redirect_uris {
        dir.add_redirect_uri(&client_id, uri)?;
    }
    for role in &app.required_roles {
        dir.require_role(&client_id, &role.resource, &role.role)?;
    }
    dir.emit_wids(&client_id, app.emit_wids)?;
    for f in &app.federated_credentials {
        dir.add_fic(
            &client_id,
            &f.issuer,
            &f.subject,
            &f.audience,
            Duration::from_secs(f.replication_secs),
        )?;
    }
    for mi in &app.trust_managed_identities {
        let identity = dir.identity(names.identity(mi))?.clone();
        let issuer = format!("{base}{}/v2.0", identity.tenant);
        dir.add_fic(
            &client_id,
            &issuer,
            &identity.object_id,
            "api://AzureADTokenExchange",
            Duration::ZERO,
        )?;
    }
    Ok(out)
}

/// Applies the settings a document gives (absent fields keep their values).
pub(crate) fn apply_settings(dir: &mut Directory, s: &SettingsSpec) {
    let set = &mut dir.settings;
    if let Some(v) = s.token_lifetime_secs {
        set.token_lifetime = Duration::from_secs(v);
    }
    if let Some(v) = s.refresh_in_secs {
        set.refresh_in = (v > 0).then(|| Duration::from_secs(v));
    }
    if let Some(v) = s.expires_in_as_string {
        set.expires_in_as_string = v;
    }
    if let Some(v) = s.latency_ms {
        set.latency = Duration::from_millis(v.min(600_000));
    }
    if let Some(v) = s.managed_identity_token_lifetime_secs {
        set.identity_token_lifetime = Duration::from_secs(v);
    }
    if let Some(v) = s.keys_unavailable {
        set.keys_unavailable = v;
    }
    if let Some(v) = s.key_rollover_delay_secs {
        dir.keys.rollover_delay = Duration::from_secs(v);
    }
}

/// The current settings as JSON (the control API's answer).
pub(crate) fn settings_json(dir: &Directory) -> Value {
    let s = &dir.settings;
    json!({
        "token_lifetime_secs": s.token_lifetime.as_secs(),
        "refresh_in_secs": s.refresh_in.map(|d| d.as_secs()).unwrap_or(0),
        "expires_in_as_string": s.expires_in_as_string,
        "latency_ms": s.latency.as_millis() as u64,
        "managed_identity_token_lifetime_secs": s.identity_token_lifetime.as_secs(),
        "key_rollover_delay_secs": dir.keys.rollover_delay.as_secs(),
        "keys_unavailable": s.keys_unavailable,
    })
}

//! Control endpoints for how the mock behaves and what it saw: health, reset, faults,
//! settings, keys, the clock and the request log.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{CtlResult, bad, body};
use crate::MockEndpoint;
use crate::clock::unix_secs;
use crate::faults::FaultSpec;
use crate::scenario::apply::{apply_settings, settings_json};
use crate::scenario::spec::SettingsSpec;
use crate::server::Shared;
use crate::state::Directory;
use crate::wire::MockRequest;

pub(super) fn health(shared: &Shared, _: &MockRequest) -> CtlResult {
    Ok(json!({
        "status": "healthy",
        "authority_host": shared.base,
        "tls": shared.tls,
        "strict": shared.strict,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

pub(super) fn setup(shared: &Shared, _: &MockRequest) -> CtlResult {
    Ok(Value::Object(shared.names().setup.clone()))
}

pub(super) fn reset(shared: &Shared, _: &MockRequest) -> CtlResult {
    crate::scenario::reset(shared)?;
    Ok(json!({"reset": true, "setup": Value::Object(shared.names().setup.clone())}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fault {
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default = "once")]
    times: u32,
    fault: FaultSpec,
}

fn once() -> u32 {
    1
}

pub(super) fn fault(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: Fault = body(request)?;
    let fault = b.fault.into_fault().map_err(bad)?;
    let names = shared.names();
    let mut dir = shared.dir();
    let tenant = match &b.tenant {
        Some(t) => Some(dir.tenant(names.tenant(t))?.id.clone()),
        None => None,
    };
    dir.faults.push(tenant.clone(), fault, b.times);
    Ok(json!({"tenant": tenant, "times": b.times}))
}

pub(super) fn clear_faults(shared: &Shared, _: &MockRequest) -> CtlResult {
    shared.dir().faults.clear();
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFault {
    status: u16,
    #[serde(default = "once")]
    times: u32,
}

pub(super) fn identity_fault(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: IdentityFault = body(request)?;
    if !(400..=599).contains(&b.status) {
        return Err(bad(format!("status {} is not a 4xx or 5xx", b.status)));
    }
    shared.dir().identity_faults.push((b.status, b.times));
    Ok(json!({}))
}

pub(super) fn get_settings(shared: &Shared, _: &MockRequest) -> CtlResult {
    Ok(settings_json(&shared.dir()))
}

pub(super) fn settings(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: SettingsSpec = body(request)?;
    let mut dir = shared.dir();
    apply_settings(&mut dir, &b);
    Ok(settings_json(&dir))
}

fn keys_json(dir: &mut Directory) -> Value {
    let now = dir.now();
    let signing = dir.keys.signing(now).kid.clone();
    let pending = dir
        .keys
        .pending()
        .map(|(k, at)| json!({"kid": k.kid, "signs_from": unix_secs(at)}));
    let published: Vec<&str> = dir
        .keys
        .published()
        .iter()
        .map(|k| k.kid.as_str())
        .collect();
    json!({"signing_kid": signing, "published_kids": published, "pending": pending})
}

pub(super) fn keys(shared: &Shared, _: &MockRequest) -> CtlResult {
    Ok(keys_json(&mut shared.dir()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    #[serde(default)]
    mode: Mode,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    Rollover,
    Emergency,
}

pub(super) fn rotate_keys(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: Rotate = body(request)?;
    let mut dir = shared.dir();
    let now = dir.now();
    match b.mode {
        Mode::Rollover => dir.keys.rotate(now),
        Mode::Emergency => dir.keys.rotate_now(),
    }
    Ok(keys_json(&mut dir))
}

pub(super) fn promote_key(shared: &Shared, _: &MockRequest) -> CtlResult {
    let mut dir = shared.dir();
    let promoted = dir.keys.promote();
    let mut out = keys_json(&mut dir);
    out["promoted"] = json!(promoted);
    Ok(out)
}

pub(super) fn retire_old_keys(shared: &Shared, _: &MockRequest) -> CtlResult {
    let mut dir = shared.dir();
    dir.keys.retire_old();
    Ok(keys_json(&mut dir))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignToken {
    #[serde(default)]
    header: Option<Value>,
    claims: Value,
}

pub(super) fn sign_token(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: SignToken = body(request)?;
    let mut header = b
        .header
        .unwrap_or_else(|| json!({"typ": "JWT", "alg": "RS256"}));
    let key = {
        let mut dir = shared.dir();
        let now = dir.now();
        dir.keys.signing(now)
    };
    let Some(h) = header.as_object_mut() else {
        return Err(bad("header must be a JSON object"));
    };
    h.entry("kid").or_insert_with(|| key.kid.clone().into());
    Ok(json!({"token": key.sign_with_header(&header, &b.claims)}))
}

pub(super) fn clock(shared: &Shared, _: &MockRequest) -> CtlResult {
    Ok(json!({"now": unix_secs(shared.now()), "controllable": shared.own_clock.is_some()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: u64,
}

pub(super) fn advance_clock(shared: &Shared, request: &MockRequest) -> CtlResult {
    let b: Advance = body(request)?;
    let Some(clock) = &shared.own_clock else {
        return Err(bad(
            "this mock runs on a clock its embedding test owns (builder().clock(..)); advance that clock",
        ));
    };
    if b.seconds > 10 * 365 * 86_400 {
        return Err(bad("advance by at most ten years at a time"));
    }
    clock.advance(std::time::Duration::from_secs(b.seconds));
    Ok(json!({"now": unix_secs(shared.now())}))
}

pub(super) fn requests(shared: &Shared, request: &MockRequest) -> CtlResult {
    let endpoint = match request.query("endpoint") {
        Some(e) => Some(
            serde_json::from_value::<MockEndpoint>(json!(e))
                .map_err(|_| bad(format!("unknown endpoint {:?}; one of token, token_v1, authorize, admin_consent, metadata, keys, instance_discovery, managed_identity", crate::error::echo(e))))?,
        ),
        None => None,
    };
    let tenant = request.query("tenant").map(|t| {
        let names = shared.names();
        let t = names.tenant(t).to_owned();
        shared
            .dir()
            .resolve_tenant(&t)
            .unwrap_or(t.to_ascii_lowercase())
    });
    let log = shared.log();
    let matching: Vec<Value> = log
        .entries()
        .filter(|r| endpoint.is_none_or(|e| r.endpoint == e))
        .filter(|r| {
            tenant.as_deref().is_none_or(|t| {
                r.tenant_id.as_deref() == Some(t) || r.tenant.eq_ignore_ascii_case(t)
            })
        })
        .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
        .collect();
    let counts = json!({
        "token_requests": log.token_requests(),
        "token_requests_for_tenant": tenant.as_deref().map(|t| log.token_requests_for(t)),
    });
    Ok(json!({"count": matching.len(), "counts": counts, "requests": matching}))
}

pub(super) fn clear_requests(shared: &Shared, _: &MockRequest) -> CtlResult {
    shared.log().clear();
    Ok(json!({}))
}

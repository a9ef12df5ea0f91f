//! Admin consent: `GET /{tenant|organizations}/v2.0/adminconsent` and v1
//! `/{tenant}/adminconsent`. Consent is recorded in the named tenant, or in the signed-in
//! admin's tenant for `organizations`; the browser goes back with
//! `admin_consent=True&tenant={tid}&state=..` (v2 adds `scope`), or with `error=access_denied`
//! when the admin declines or the user is not an admin.

use crate::MockEndpoint;
use crate::endpoints::params::{self, Known};
use crate::endpoints::{
    browser_error, check_redirect, is_multi_tenant, record_browser, respond_to_browser,
};
use crate::server::Shared;
use crate::state::Directory;
use crate::wire::{EntraErr, MockRequest, Reply, err};

pub(crate) fn admin_consent(
    shared: &Shared,
    request: &MockRequest,
    segment: &str,
    v2: bool,
) -> Reply {
    let reply = consent_inner(shared, request, segment, v2);
    record_browser(shared, request, segment, MockEndpoint::AdminConsent, &reply);
    reply
}

fn consent_inner(shared: &Shared, request: &MockRequest, segment: &str, v2: bool) -> Reply {
    let now = shared.now();
    if shared.strict
        && let Err(e) = params::check(Known::AdminConsent, &request.query)
    {
        return e.reply(now, None);
    }
    let q = |name: &str| request.query(name);
    let mut dir = shared.dir();
    let redirect = match check_redirect(&dir, q("client_id"), q("redirect_uri")) {
        Ok(r) => r,
        Err(e) => return e.reply(now, None),
    };
    let state = q("state");
    let fail = |e: EntraErr| browser_error(&redirect, "query", state, e.error, &e, v2);
    let tid = match consenting_tenant(&dir, segment, q("login_hint")) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    if std::mem::take(&mut dir.decline_next_consent) {
        return fail(err(
            400,
            "access_denied",
            65004,
            "User declined to consent to access the app.",
        ));
    }
    let client_id = q("client_id").unwrap_or_default().to_owned();
    if let Err(e) = dir.consent(&tid, &client_id) {
        return fail(err(400, "access_denied", 65001, e.to_string()));
    }
    drop(dir);
    let mut pairs = vec![("admin_consent", "True"), ("tenant", tid.as_str())];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    let scope = q("scope");
    if v2 && let Some(scope) = scope {
        pairs.push(("scope", scope));
    }
    respond_to_browser(&redirect, "query", &pairs)
}

/// The tenant consent is recorded in: the named one, or the signed-in admin's for
/// `organizations`/`common`. A signed-in user must be an admin of that tenant.
fn consenting_tenant(
    dir: &Directory,
    segment: &str,
    hint: Option<&str>,
) -> Result<String, EntraErr> {
    let admin = match hint {
        Some(h) => Some(
            dir.user(h)
                .map_err(|e| err(400, "access_denied", 50034, e.to_string()))?,
        ),
        None => dir.session.as_ref().and_then(|oid| dir.users.get(oid)),
    };
    let tid = if is_multi_tenant(segment) {
        match admin {
            Some(a) => a.tenant.clone(),
            None => {
                return Err(err(
                    400,
                    "login_required",
                    50058,
                    "No admin is signed in: sign one in first (the authorize endpoint, MockEntra::sign_in or POST /_mock/sign-in).",
                ));
            }
        }
    } else {
        dir.resolve_tenant(segment).ok_or_else(|| {
            err(
                400,
                "invalid_tenant",
                90002,
                format!("Tenant '{}' not found.", crate::error::echo(segment)),
            )
        })?
    };
    if let Some(a) = admin {
        if a.tenant != tid {
            return Err(err(
                400,
                "access_denied",
                50020,
                format!(
                    "User account '{}' from identity provider does not exist in tenant '{tid}'.",
                    a.upn
                ),
            ));
        }
        if !a.admin {
            return Err(err(
                400,
                "access_denied",
                90094,
                format!(
                    "The grant requires admin permission: '{}' is not an administrator of tenant '{tid}'.",
                    a.upn
                ),
            ));
        }
    }
    Ok(tid)
}

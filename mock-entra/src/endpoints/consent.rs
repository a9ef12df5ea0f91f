//! Admin consent: `GET /{tenant|organizations}/v2.0/adminconsent` and v1
//! `/{tenant}/adminconsent`. Consent is recorded in the named tenant, or in the signed-in
//! admin's tenant for `organizations`; the browser goes back with
//! `admin_consent=True&tenant={tid}&state=..` (v2 adds `scope`), or with `error=access_denied`
//! when the admin declines or the user is not an admin.

use crate::MockEndpoint;
use crate::endpoints::authorize::{page_user, sign_in_page};
use crate::endpoints::params::{self, Known};
use crate::endpoints::{
    Form, browser_error, check_redirect, is_multi_tenant, page_action, record_browser, refuse,
    respond_to_browser, session,
};
use crate::server::Shared;
use crate::state::{Directory, User};
use crate::wire::{EntraErr, MockRequest, Reply, err};

/// The admin consent endpoint. `GET` is the app's request; `POST` (to the same URL) is the
/// sign-in page's form or the consent page's Accept or Cancel.
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

/// Where the answer goes.
struct Back<'r> {
    redirect: String,
    state: Option<&'r str>,
    scope: Option<&'r str>,
    client_id: &'r str,
    v2: bool,
}

impl Back<'_> {
    fn fail(&self, e: &EntraErr) -> Reply {
        browser_error(
            &self.redirect,
            "query",
            self.state,
            e.error,
            e,
            self.v2,
            &[],
        )
    }

    /// The admin declined (Cancel): AADSTS65004, `error_subcode=cancel`.
    fn declined(&self) -> Reply {
        let e = err(
            400,
            "access_denied",
            65004,
            "User declined to consent to access the app.",
        );
        let extra = [("error_subcode", "cancel")];
        browser_error(
            &self.redirect,
            "query",
            self.state,
            e.error,
            &e,
            self.v2,
            &extra,
        )
    }

    fn consented(&self, tid: &str) -> Reply {
        let mut pairs = vec![("admin_consent", "True"), ("tenant", tid)];
        if let Some(s) = self.state {
            pairs.push(("state", s));
        }
        if self.v2
            && let Some(scope) = self.scope
        {
            pairs.push(("scope", scope));
        }
        respond_to_browser(&self.redirect, "query", &pairs)
    }
}

fn consent_inner(shared: &Shared, request: &MockRequest, segment: &str, v2: bool) -> Reply {
    let now = shared.now();
    if shared.strict
        && let Err(e) = params::check(Known::AdminConsent, &request.query)
    {
        return refuse(request, &e, now);
    }
    let q = |name: &str| request.query(name);
    let mut dir = shared.dir();
    let redirect = match check_redirect(&dir, q("client_id"), q("redirect_uri")) {
        Ok(r) => r,
        Err(e) => return refuse(request, &e, now),
    };
    let back = Back {
        redirect,
        state: q("state"),
        scope: q("scope"),
        client_id: q("client_id").unwrap_or_default(),
        v2,
    };
    // A scripted user (login_hint, or one preset with MockEntra::sign_in) answers at once.
    let hint = q("login_hint");
    if hint.is_some() || dir.session.is_some() {
        let admin = match hint {
            Some(h) => match dir.user(h) {
                Ok(u) => Some(u.clone()),
                Err(e) => return back.fail(&err(400, "access_denied", 50034, e.to_string())),
            },
            None => dir
                .session
                .as_ref()
                .and_then(|oid| dir.users.get(oid))
                .cloned(),
        };
        let tid = match consenting_tenant(&dir, segment, admin.as_ref()) {
            Ok(t) => t,
            Err(e) => return back.fail(&e),
        };
        if std::mem::take(&mut dir.decline_next_consent) {
            return back.declined();
        }
        return grant(&mut dir, &back, &tid);
    }
    // A person in a browser: signs in on the page if need be, then Accept or Cancel.
    let form = (request.method == hyper::Method::POST).then(|| Form(request.form()));
    let signing_in = form
        .as_ref()
        .filter(|f| f.get("user").is_some() || f.get("username").is_some());
    let mut opened = None;
    let person = match signing_in {
        Some(f) => match page_user(&dir, segment, f) {
            Ok(user) => {
                opened = Some(dir.browser_sessions.open(&user.object_id));
                Some(user)
            }
            Err(why) => {
                let typed = f.get("username").unwrap_or_default().to_owned();
                return sign_in_page(&dir, request, segment, true, &typed, Some(&why));
            }
        },
        None => session::user(shared, &dir, request).cloned(),
    };
    let Some(person) = person else {
        if !is_multi_tenant(segment) && dir.resolve_tenant(segment).is_none() {
            return refuse(request, &unknown_tenant(segment), now);
        }
        return sign_in_page(&dir, request, segment, true, "", None);
    };
    let decision = form
        .as_ref()
        .filter(|_| signing_in.is_none())
        .and_then(|f| f.get("action"));
    let reply = person_decides(&mut dir, request, segment, &back, &person, decision);
    match opened {
        Some(id) => reply.header("set-cookie", &session::set(shared, &id)),
        None => reply,
    }
}

/// A signed-in person at the consent step: refused (not an admin of that tenant), the
/// consent page, or their Accept or Cancel.
fn person_decides(
    dir: &mut Directory,
    request: &MockRequest,
    segment: &str,
    back: &Back<'_>,
    person: &User,
    decision: Option<&str>,
) -> Reply {
    if std::mem::take(&mut dir.decline_next_consent) {
        return back.declined();
    }
    let tid = match consenting_tenant(dir, segment, Some(person)) {
        Ok(t) => t,
        Err(e) => return back.fail(&e),
    };
    match decision {
        Some("accept") => grant(dir, back, &tid),
        Some("cancel") => back.declined(),
        _ => consent_page(dir, request, back, person, &tid),
    }
}

/// Records consent in `tid` and sends the browser back.
fn grant(dir: &mut Directory, back: &Back<'_>, tid: &str) -> Reply {
    match dir.consent(tid, back.client_id) {
        Ok(_) => back.consented(tid),
        Err(e) => back.fail(&err(400, "access_denied", 65001, e.to_string())),
    }
}

fn consent_page(
    dir: &Directory,
    request: &MockRequest,
    back: &Back<'_>,
    admin: &User,
    tid: &str,
) -> Reply {
    let label = |tid: &str| {
        dir.tenants
            .get(tid)
            .and_then(|t| t.domains.first().cloned())
            .unwrap_or_else(|| tid.to_owned())
    };
    let app = dir.app(back.client_id).ok();
    let roles: Vec<(String, String)> = app.map(|a| a.required_roles.clone()).unwrap_or_default();
    let action = page_action(request);
    let page = crate::pages::Consent {
        action: &action,
        app: app.map_or("", |a| a.display_name.as_str()),
        client_id: back.client_id,
        publisher: &app.map(|a| label(&a.home_tenant)).unwrap_or_default(),
        tenant: &label(tid),
        tenant_id: tid,
        admin_upn: &admin.upn,
        roles: &roles,
        scope: back.scope.filter(|_| back.v2),
    };
    crate::pages::reply(200, page.render())
}

fn unknown_tenant(segment: &str) -> EntraErr {
    err(
        400,
        "invalid_tenant",
        90002,
        format!("Tenant '{}' not found.", crate::error::echo(segment)),
    )
}

/// The tenant consent is recorded in: the named one, or the signed-in admin's for
/// `organizations`/`common`. A signed-in user must be an admin of that tenant.
fn consenting_tenant(
    dir: &Directory,
    segment: &str,
    admin: Option<&User>,
) -> Result<String, EntraErr> {
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
        dir.resolve_tenant(segment)
            .ok_or_else(|| unknown_tenant(segment))?
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

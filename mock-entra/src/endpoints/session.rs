//! The browser session cookie of the mock's pages: set when a person signs in on the
//! sign-in page, read by the next sign-in (single sign-on, as Entra's own cookie does) and
//! by admin consent, dropped by sign-out. `HttpOnly`, `SameSite=Lax` (sent when an app
//! sends the browser here, never on another site's form post) and `Secure` over https.

use crate::server::Shared;
use crate::state::{Directory, User};
use crate::wire::MockRequest;

/// The session id the request's cookie names, if any.
pub(crate) fn id(shared: &Shared, request: &MockRequest) -> Option<String> {
    // h2 may split cookies over several `cookie` headers.
    request
        .headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == shared.cookie_name)
        .map(|(_, value)| value.trim().to_owned())
}

/// The user the request's session cookie signs in, if the session is still open.
pub(crate) fn user<'d>(
    shared: &Shared,
    dir: &'d Directory,
    request: &MockRequest,
) -> Option<&'d User> {
    let id = id(shared, request)?;
    let oid = dir.browser_sessions.user(&id)?;
    dir.users.get(oid)
}

/// The `Set-Cookie` value that opens session `id` in this browser.
pub(crate) fn set(shared: &Shared, id: &str) -> String {
    format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Lax{}",
        shared.cookie_name,
        if shared.tls { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that drops the session cookie.
pub(crate) fn clear(shared: &Shared) -> String {
    format!(
        "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
        shared.cookie_name,
        if shared.tls { "; Secure" } else { "" }
    )
}

/// `/{tenant}/oauth2/v2.0/logout` and v1 `/{tenant}/oauth2/logout` (the metadata's
/// `end_session_endpoint`): ends this browser's session and drops its cookie, then sends
/// the browser to `post_logout_redirect_uri` (with `state`) when it is one the mock would
/// send codes to (https, or http on loopback), else shows the signed-out page. The
/// scripted user (`MockEntra::sign_in`) stays signed in.
pub(crate) fn logout(shared: &Shared, request: &MockRequest) -> crate::wire::Reply {
    if let Some(id) = id(shared, request) {
        shared.dir().browser_sessions.close(&id);
    }
    let back = request
        .query("post_logout_redirect_uri")
        .filter(|uri| super::acceptable_redirect_uri(uri));
    let reply = match back {
        Some(uri) => {
            let state: Vec<(&str, &str)> = request
                .query("state")
                .map(|s| ("state", s))
                .into_iter()
                .collect();
            crate::wire::Reply::redirect(&crate::wire::with_query(uri, &state))
        }
        None => crate::pages::reply(200, crate::pages::signed_out()),
    };
    reply.header("set-cookie", &clear(shared))
}

//! The pages a person (or a WebDriver test) clicks through: sign-in, consent, the
//! `form_post` hand-off back to the app, errors and sign-out. Plain server-rendered HTML,
//! one form per page and no JavaScript, so any browser and any test tool drive them;
//! every value is HTML-escaped; element ids are stable (README.md lists them); every page
//! says it is a test tool.

use crate::wire::Reply;

/// Escapes text for HTML element content and for quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}\
.test-only{background:#fff4ce;border:1px solid #c19c00;padding:.5rem .75rem}\
.error{background:#fde7e9;border:1px solid #a80000;padding:.5rem .75rem}\
button{font:inherit;padding:.35rem 1rem;margin:.15rem 0}\
input[type=text],input[type=password]{font:inherit;width:100%;box-sizing:border-box;padding:.3rem}\
ul.users{list-style:none;padding:0}code{word-break:break-all}dd{margin:0 0 .5rem 0}";

/// A whole page: the test-only banner, then `main`. `page` names it (`<body
/// data-page=..>`: `sign-in`, `consent`, `form-post`, `error`, `signed-out`).
fn document(page: &str, title: &str, main: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\">\
<title>{title} · MockEntra (test only)</title><style>{STYLE}</style></head>\n\
<body data-page=\"{page}\">\n\
<p id=\"test-only\" class=\"test-only\"><strong>Test only.</strong> This is MockEntra, a fake \
Microsoft Entra ID for tests. It checks no password and hands tokens to anyone who can reach \
it: never use a real account, password or secret here.</p>\n<main>\n{main}\n</main>\n</body></html>\n",
        title = escape(title),
    )
}

/// A page as an answer: never cached, never framed, and no script may run in it.
pub(crate) fn reply(status: u16, html: String) -> Reply {
    Reply::raw(status, "text/html; charset=utf-8", html)
        .header("cache-control", "no-store, no-cache")
        .header("pragma", "no-cache")
        .header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        )
        .header("x-frame-options", "DENY")
        .header("referrer-policy", "no-referrer")
}

/// A user the sign-in page offers.
#[derive(Debug)]
pub(crate) struct UserChoice {
    pub(crate) upn: String,
    pub(crate) display_name: String,
    pub(crate) admin: bool,
    /// The user's tenant, as the page shows it (its first domain, else its id).
    pub(crate) tenant: String,
}

/// The sign-in page: type a user name (any password, or none) or pick a user.
#[derive(Debug)]
pub(crate) struct SignIn<'a> {
    /// Where the form posts: the URL the page was served from (path and query).
    pub(crate) action: &'a str,
    pub(crate) app: &'a str,
    pub(crate) client_id: &'a str,
    /// The authority's tenant segment (`organizations`, a domain, a GUID).
    pub(crate) tenant: &'a str,
    /// Shown before admin consent rather than before sign-in to the app.
    pub(crate) for_consent: bool,
    pub(crate) users: &'a [UserChoice],
    /// Prefilled user name (`login_hint`, or what the person typed before).
    pub(crate) username: &'a str,
    /// Why the last attempt failed.
    pub(crate) error: Option<&'a str>,
}

impl SignIn<'_> {
    pub(crate) fn render(&self) -> String {
        let purpose = if self.for_consent {
            "to grant admin consent"
        } else {
            "to sign in"
        };
        let error = self
            .error
            .map(|e| {
                format!(
                    "<p id=\"error\" class=\"error\" role=\"alert\">{}</p>\n",
                    escape(e)
                )
            })
            .unwrap_or_default();
        let users = if self.users.is_empty() {
            "<p id=\"no-users\">No users here yet: add one (<code>POST /_mock/users</code>, or \
<code>users</code> in the scenario).</p>"
                .to_owned()
        } else {
            let items: String = self
                .users
                .iter()
                .map(|u| {
                    let role = if u.admin { "administrator" } else { "user" };
                    format!(
                        "<li><button type=\"submit\" class=\"user\" name=\"user\" value=\"{upn}\" \
data-upn=\"{upn}\">{upn}</button> {name}, {role} of <code>{tenant}</code></li>\n",
                        upn = escape(&u.upn),
                        name = escape(&u.display_name),
                        tenant = escape(&u.tenant),
                    )
                })
                .collect();
            format!("<ul class=\"users\">\n{items}</ul>")
        };
        let main = format!(
            "<h1 id=\"title\">Sign in</h1>\n\
<p id=\"request\">The app <b id=\"app-name\">{app}</b> (<code id=\"client-id\">{client_id}</code>) \
asks you {purpose} at the authority <code id=\"tenant\">{tenant}</code>.</p>\n{error}\
<form id=\"sign-in-form\" method=\"post\" action=\"{action}\">\n\
<p><label for=\"username\">User name</label><br>\
<input id=\"username\" name=\"username\" type=\"text\" value=\"{username}\" autocomplete=\"username\" autofocus></p>\n\
<p><label for=\"password\">Password</label> (anything or nothing: MockEntra checks no password)<br>\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"off\"></p>\n\
<p><button id=\"sign-in\" type=\"submit\">Sign in</button></p>\n\
<fieldset id=\"users\"><legend>Or pick a user</legend>\n{users}\n</fieldset>\n</form>",
            app = escape(self.app),
            client_id = escape(self.client_id),
            tenant = escape(self.tenant),
            action = escape(self.action),
            username = escape(self.username),
        );
        document("sign-in", "Sign in", &main)
    }
}

/// The admin consent page: the permissions asked, Accept and Cancel.
#[derive(Debug)]
pub(crate) struct Consent<'a> {
    pub(crate) action: &'a str,
    pub(crate) app: &'a str,
    pub(crate) client_id: &'a str,
    /// The tenant the app is registered in (its first domain, else its id).
    pub(crate) publisher: &'a str,
    /// The tenant consent is for (its first domain, else its id) and its id.
    pub(crate) tenant: &'a str,
    pub(crate) tenant_id: &'a str,
    pub(crate) admin_upn: &'a str,
    /// App roles admin consent grants: (resource, role).
    pub(crate) roles: &'a [(String, String)],
    /// The v2 `scope` parameter, as asked.
    pub(crate) scope: Option<&'a str>,
}

impl Consent<'_> {
    pub(crate) fn render(&self) -> String {
        let permissions: String = if self.roles.is_empty() {
            "<li class=\"permission\" id=\"no-roles\">Sign in to your organization as the app \
itself (a service principal), with no app roles</li>\n"
                .to_owned()
        } else {
            self.roles
                .iter()
                .map(|(resource, role)| {
                    format!(
                        "<li class=\"permission\" data-resource=\"{resource}\" data-role=\"{role}\">\
<code>{role}</code> on <code>{resource}</code> (application permission)</li>\n",
                        resource = escape(resource),
                        role = escape(role),
                    )
                })
                .collect()
        };
        let scope = self
            .scope
            .map(|s| {
                format!(
                    "<p id=\"scope\">Scope asked: <code>{}</code></p>\n",
                    escape(s)
                )
            })
            .unwrap_or_default();
        let main = format!(
            "<h1 id=\"title\">Permissions requested</h1>\n\
<p id=\"request\">The app <b id=\"app-name\">{app}</b> (<code id=\"client-id\">{client_id}</code>, \
registered in <code id=\"publisher\">{publisher}</code>) asks an administrator to consent for the \
organization <code id=\"tenant\" data-tenant-id=\"{tenant_id}\">{tenant}</code>.</p>\n\
<p id=\"signed-in-as\">Signed in as <b>{admin}</b>.</p>\n\
<h2>It will be able to</h2>\n<ul id=\"permissions\">\n{permissions}</ul>\n{scope}\
<p>Accepting grants this for the whole organization, as an administrator's consent in Entra does.</p>\n\
<form id=\"consent-form\" method=\"post\" action=\"{action}\">\n\
<button id=\"accept\" type=\"submit\" name=\"action\" value=\"accept\">Accept</button>\n\
<button id=\"cancel\" type=\"submit\" name=\"action\" value=\"cancel\">Cancel</button>\n</form>",
            app = escape(self.app),
            client_id = escape(self.client_id),
            publisher = escape(self.publisher),
            tenant = escape(self.tenant),
            tenant_id = escape(self.tenant_id),
            admin = escape(self.admin_upn),
            action = escape(self.action),
        );
        document("consent", "Permissions requested", &main)
    }
}

/// The `form_post` hand-off: the answer as hidden fields posted to the app. Entra submits
/// it by script; the mock runs none, so the page shows a Continue button to press.
pub(crate) fn form_post(redirect: &str, fields: &[(&str, &str)]) -> String {
    let hidden: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let names: Vec<String> = fields
        .iter()
        .map(|(k, _)| format!("<code>{}</code>", escape(k)))
        .collect();
    let main = format!(
        "<h1 id=\"title\">Back to the app</h1>\n\
<p id=\"message\">MockEntra answers the app with a form post (<code>response_mode=form_post</code>) \
to <code id=\"destination\">{redirect}</code>, carrying {names}. Entra submits this page by \
script; MockEntra runs none: press Continue.</p>\n\
<form id=\"form-post\" name=\"hiddenform\" method=\"post\" action=\"{redirect}\">\n{hidden}\
<button id=\"continue\" type=\"submit\">Continue</button>\n</form>",
        redirect = escape(redirect),
        names = names.join(", "),
    );
    document("form-post", "Back to the app", &main)
}

/// An error the mock cannot send back to the app (unknown app, a redirect URI it refuses,
/// a malformed request), as Entra shows one on its own page.
#[derive(Debug)]
pub(crate) struct ErrorPage<'a> {
    pub(crate) error: &'a str,
    pub(crate) code: u32,
    pub(crate) message: &'a str,
    pub(crate) trace_id: &'a str,
    pub(crate) correlation_id: &'a str,
}

impl ErrorPage<'_> {
    pub(crate) fn render(&self) -> String {
        let main = format!(
            "<h1 id=\"title\">Sorry, MockEntra cannot go on</h1>\n\
<p id=\"message\">AADSTS{code}: {message}</p>\n<dl>\n\
<dt>Error</dt><dd id=\"error\">{error}</dd>\n\
<dt>Code</dt><dd id=\"error-code\">AADSTS{code}</dd>\n\
<dt>Description</dt><dd id=\"error-description\">{message}</dd>\n\
<dt>Trace ID</dt><dd id=\"trace-id\">{trace_id}</dd>\n\
<dt>Correlation ID</dt><dd id=\"correlation-id\">{correlation_id}</dd>\n</dl>\n\
<p>The app's request was refused here, so the browser is not sent back to it.</p>",
            code = self.code,
            error = escape(self.error),
            message = escape(self.message),
            trace_id = escape(self.trace_id),
            correlation_id = escape(self.correlation_id),
        );
        document("error", "Error", &main)
    }
}

/// After sign-out with no (acceptable) `post_logout_redirect_uri`.
pub(crate) fn signed_out() -> String {
    document(
        "signed-out",
        "Signed out",
        "<h1 id=\"title\">Signed out</h1>\n<p id=\"message\">This browser is signed out of MockEntra.</p>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "\"><script>alert('x')</script>&";

    #[test]
    fn every_value_on_every_page_is_escaped() {
        let users = [UserChoice {
            upn: HOSTILE.into(),
            display_name: HOSTILE.into(),
            admin: true,
            tenant: HOSTILE.into(),
        }];
        let roles = [(HOSTILE.to_owned(), HOSTILE.to_owned())];
        let pages = [
            SignIn {
                action: HOSTILE,
                app: HOSTILE,
                client_id: HOSTILE,
                tenant: HOSTILE,
                for_consent: true,
                users: &users,
                username: HOSTILE,
                error: Some(HOSTILE),
            }
            .render(),
            Consent {
                action: HOSTILE,
                app: HOSTILE,
                client_id: HOSTILE,
                publisher: HOSTILE,
                tenant: HOSTILE,
                tenant_id: HOSTILE,
                admin_upn: HOSTILE,
                roles: &roles,
                scope: Some(HOSTILE),
            }
            .render(),
            form_post(HOSTILE, &[(HOSTILE, HOSTILE)]),
            ErrorPage {
                error: HOSTILE,
                code: 50011,
                message: HOSTILE,
                trace_id: HOSTILE,
                correlation_id: HOSTILE,
            }
            .render(),
        ];
        for page in pages {
            assert!(!page.contains("<script"), "{page}");
            assert!(!page.contains("'x'"), "{page}");
            assert!(
                page.contains("&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;")
            );
            assert!(page.contains("id=\"test-only\""), "{page}");
        }
    }
}

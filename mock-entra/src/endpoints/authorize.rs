//! OpenID Connect sign-in: `GET /{tenant|organizations|common}/oauth2/v2.0/authorize`
//! (authorization code with PKCE, `query` or `form_post`), and the token endpoint's
//! `authorization_code` grant returning an `id_token`: the admin sign-in that proves which
//! tenant an admin belongs to before consent.

use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::MockEndpoint;
use crate::clock::unix_secs;
use crate::endpoints::client_auth::{ClientAuth, authenticate};
use crate::endpoints::issue::{Minted, missing};
use crate::endpoints::params::{self, Known};
use crate::endpoints::{
    Form, browser_error, check_redirect, is_multi_tenant, page_action, record_browser, refuse,
    respond_to_browser, session,
};
use crate::server::Shared;
use crate::state::{AuthCode, Directory, User};
use crate::wire::{EntraErr, MockRequest, Reply, err};

const CODE_LIFETIME: Duration = Duration::from_secs(600);
const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// The authorize endpoint: v2 `/oauth2/v2.0/authorize`, or v1 `/oauth2/authorize` (whose
/// code yields a v1 `id_token` at the v1 token endpoint). `GET` is the app's request;
/// `POST` (to the same URL) is the sign-in page's form.
pub(crate) fn authorize(shared: &Shared, request: &MockRequest, segment: &str, v1: bool) -> Reply {
    let reply = authorize_inner(shared, request, segment, v1);
    record_browser(shared, request, segment, MockEndpoint::Authorize, &reply);
    reply
}

/// A checked authorization request: where and how to answer, and what was asked.
struct Asked<'r> {
    redirect: String,
    mode: &'r str,
    state: Option<&'r str>,
    scope: String,
    pkce: Option<(String, String)>,
}

impl Asked<'_> {
    fn fail(&self, error: &str, e: EntraErr) -> Reply {
        browser_error(&self.redirect, self.mode, self.state, error, &e, false, &[])
    }
}

/// The request's own checks, before anyone signs in: refused on a page (or as JSON) when
/// the browser cannot be sent back, else back to the app with an error.
fn check_request<'r>(
    shared: &Shared,
    dir: &Directory,
    request: &'r MockRequest,
    v1: bool,
) -> Result<Asked<'r>, Reply> {
    let now = shared.now();
    if shared.strict
        && let Err(e) = params::check(Known::Authorize, &request.query)
    {
        return Err(refuse(request, &e, now));
    }
    let q = |name: &str| request.query(name);
    let redirect = check_redirect(dir, q("client_id"), q("redirect_uri"))
        .map_err(|e| refuse(request, &e, now))?;
    let mut asked = Asked {
        redirect,
        mode: q("response_mode").unwrap_or("query"),
        state: q("state"),
        scope: String::new(),
        pkce: None,
    };
    if q("response_type") != Some("code") {
        return Err(asked.fail(
            "unsupported_response_type",
            err(
                400,
                "unsupported_response_type",
                700054,
                "response_type must be 'code' here (MockEntra models the authorization code flow).",
            ),
        ));
    }
    let Some(scope) = q("scope").or(v1.then_some("openid")) else {
        return Err(asked.fail("invalid_request", missing("scope")));
    };
    asked.scope = scope.to_owned();
    asked.pkce = match (q("code_challenge"), q("code_challenge_method")) {
        (None, None) => None,
        (Some(c), m @ (None | Some("S256") | Some("plain"))) => {
            Some((c.to_owned(), m.unwrap_or("plain").to_owned()))
        }
        _ => {
            return Err(asked.fail(
                "invalid_request",
                err(
                    400,
                    "invalid_request",
                    501491,
                    "Invalid code_challenge or code_challenge_method (S256 or plain).",
                ),
            ));
        }
    };
    Ok(asked)
}

fn authorize_inner(shared: &Shared, request: &MockRequest, segment: &str, v1: bool) -> Reply {
    let mut dir = shared.dir();
    let asked = match check_request(shared, &dir, request, v1) {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    let hint = request.query("login_hint");
    if request.method == hyper::Method::POST {
        // The sign-in page's form: the person chose a user.
        let form = Form(request.form());
        return match page_user(&dir, segment, &form) {
            Ok(user) => {
                let session = dir.browser_sessions.open(&user.object_id);
                issue_code(shared, &mut dir, request, &asked, &user, v1)
                    .header("set-cookie", &session::set(shared, &session))
            }
            Err(why) => {
                let typed = form.get("username").unwrap_or_default().to_owned();
                sign_in_page(&dir, request, segment, false, &typed, Some(&why))
            }
        };
    }
    // A scripted user (login_hint, or one preset with MockEntra::sign_in) needs no page.
    if hint.is_some() || dir.session.is_some() {
        let user = match signed_in_user(&dir, segment, hint) {
            Ok(u) => u,
            Err((error, e)) => return asked.fail(error, e),
        };
        dir.session = Some(user.object_id.clone());
        return issue_code(shared, &mut dir, request, &asked, &user, v1);
    }
    // A person in a browser: signed in already (single sign-on), or the sign-in page.
    let prompt = request.query("prompt");
    let choose_again = matches!(prompt, Some("login" | "select_account"));
    if !choose_again
        && let Some(user) = session::user(shared, &dir, request)
            .filter(|u| member_of(&dir, segment, u))
            .cloned()
    {
        return issue_code(shared, &mut dir, request, &asked, &user, v1);
    }
    if prompt == Some("none") {
        return asked.fail(
            "login_required",
            err(
                400,
                "login_required",
                50058,
                "A silent sign-in request was sent but no user is signed in (prompt=none).",
            ),
        );
    }
    if !is_multi_tenant(segment) && dir.resolve_tenant(segment).is_none() {
        return refuse(request, &unknown_tenant(segment), shared.now());
    }
    sign_in_page(&dir, request, segment, false, "", None)
}

/// Issues a code for `user` and sends the browser back with it.
fn issue_code(
    shared: &Shared,
    dir: &mut Directory,
    request: &MockRequest,
    asked: &Asked<'_>,
    user: &User,
    v1: bool,
) -> Reply {
    dir.prune_codes();
    let code = format!(
        "mock.{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let client_id = request
        .query("client_id")
        .unwrap_or_default()
        .to_ascii_lowercase();
    dir.codes.insert(
        code.clone(),
        AuthCode {
            client_id,
            redirect_uri: asked.redirect.clone(),
            scope: asked.scope.clone(),
            nonce: request.query("nonce").map(str::to_owned),
            pkce: asked.pkce.clone(),
            user: user.object_id.clone(),
            tid: user.tenant.clone(),
            expires: shared.now() + CODE_LIFETIME,
            redeemed: false,
            v1,
        },
    );
    let session_state = uuid::Uuid::new_v4().to_string();
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = asked.state {
        pairs.push(("state", s));
    }
    pairs.push(("session_state", &session_state));
    respond_to_browser(&asked.redirect, asked.mode, &pairs)
}

/// Whether `user` may sign in at the authority `segment` (any tenant's user for
/// `organizations`/`common`).
fn member_of(dir: &Directory, segment: &str, user: &User) -> bool {
    is_multi_tenant(segment) || dir.resolve_tenant(segment).as_deref() == Some(user.tenant.as_str())
}

fn unknown_tenant(segment: &str) -> EntraErr {
    err(
        400,
        "invalid_tenant",
        90002,
        format!(
            "Tenant '{}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
            crate::error::echo(segment)
        ),
    )
}

/// The user a person chose on the sign-in page (`user`: a picked user's button;
/// `username`: what they typed), or why they cannot sign in here.
pub(super) fn page_user(dir: &Directory, segment: &str, form: &Form) -> Result<User, String> {
    let name = form
        .get("user")
        .filter(|u| !u.trim().is_empty())
        .or(form.get("username"))
        .unwrap_or_default()
        .trim();
    if name.is_empty() {
        return Err("Type a user name, or pick a user below.".into());
    }
    let user = dir.user(name).map_err(|_| {
        format!(
            "AADSTS50034: The user account {} does not exist in the directory. Pick a user below, or add one first.",
            crate::error::echo(name)
        )
    })?;
    if !member_of(dir, segment, user) {
        return Err(format!(
            "AADSTS50020: User account '{}' from identity provider does not exist in tenant '{}'. Sign in with a user of that tenant.",
            user.upn,
            crate::error::echo(segment)
        ));
    }
    Ok(user.clone())
}

/// The sign-in page for this request: the users of the authority's tenant (of every
/// tenant for `organizations`/`common`) to pick from, or a user name to type.
pub(super) fn sign_in_page(
    dir: &Directory,
    request: &MockRequest,
    segment: &str,
    for_consent: bool,
    typed: &str,
    error: Option<&str>,
) -> Reply {
    let client_id = request.query("client_id").unwrap_or_default();
    let app = dir
        .app(client_id)
        .map(|a| a.display_name.clone())
        .unwrap_or_default();
    let tenant_label = |tid: &str| {
        dir.tenants
            .get(tid)
            .and_then(|t| t.domains.first().cloned())
            .unwrap_or_else(|| tid.to_owned())
    };
    let mut users: Vec<crate::pages::UserChoice> = dir
        .users
        .values()
        .filter(|u| member_of(dir, segment, u))
        .map(|u| crate::pages::UserChoice {
            upn: u.upn.clone(),
            display_name: u.display_name.clone(),
            admin: u.admin,
            tenant: tenant_label(&u.tenant),
        })
        .collect();
    users.sort_by(|a, b| (&a.tenant, &a.upn).cmp(&(&b.tenant, &b.upn)));
    let prefill = if typed.is_empty() {
        request.query("login_hint").unwrap_or_default()
    } else {
        typed
    };
    let action = page_action(request);
    let page = crate::pages::SignIn {
        action: &action,
        app: &app,
        client_id,
        tenant: segment,
        for_consent,
        users: &users,
        username: prefill,
        error,
    };
    crate::pages::reply(200, page.render())
}

/// The user who signs in without a page: `login_hint`, else the scripted user. They must
/// belong to the tenant named in the path (any tenant for `organizations`/`common`).
fn signed_in_user(
    dir: &Directory,
    segment: &str,
    hint: Option<&str>,
) -> Result<User, (&'static str, EntraErr)> {
    let user = match hint {
        Some(h) => dir.user(h).cloned().map_err(|_| {
            ("login_required", err(400, "login_required", 50034, format!("The user account {} does not exist in the directory (add it with add_user).", crate::error::echo(h))))
        })?,
        None => dir
            .session
            .as_ref()
            .and_then(|oid| dir.users.get(oid))
            .cloned()
            .ok_or(("login_required", err(400, "login_required", 50058, "No user is signed in (give login_hint, or sign a user in with MockEntra::sign_in or POST /_mock/sign-in).")))?,
    };
    if !member_of(dir, segment, &user) {
        return Err((
            "access_denied",
            err(
                400,
                "access_denied",
                50020,
                format!(
                    "User account '{}' from identity provider does not exist in tenant '{}'.",
                    user.upn,
                    crate::error::echo(segment)
                ),
            ),
        ));
    }
    Ok(user)
}

fn invalid_grant(code: u32, message: &str) -> EntraErr {
    err(400, "invalid_grant", code, message)
}

/// The `authorization_code` grant: the code once, the same client and redirect URI, the
/// PKCE verifier, client authentication; then an `id_token` (with `openid`) and an access token.
pub(crate) fn redeem(
    dir: &mut Directory,
    base: &str,
    segment: &str,
    tid: Option<&str>,
    form: &Form,
    auth: &ClientAuth,
    v1: bool,
) -> Result<Minted, EntraErr> {
    let code = take_code(dir, form.get("code").ok_or_else(|| missing("code"))?)?;
    let client_id = auth
        .client_id
        .as_deref()
        .ok_or_else(|| missing("client_id"))?;
    if !client_id.eq_ignore_ascii_case(&code.client_id)
        || tid.is_some_and(|t| t != code.tid)
        || code.v1 != v1
    {
        return Err(invalid_grant(
            70000,
            "The provided grant was issued to another client, tenant or endpoint version.",
        ));
    }
    if form.get("redirect_uri") != Some(code.redirect_uri.as_str()) {
        return Err(invalid_grant(
            50148,
            "The redirect_uri does not match the one used in the authorization request.",
        ));
    }
    check_pkce(&code, form.get("code_verifier"))?;
    let app = dir
        .app(&code.client_id)
        .map_err(|_| invalid_grant(700016, "The application was deleted."))?;
    let authenticated = authenticate(dir, base, app, &code.tid, segment, auth)?;
    let user = dir
        .users
        .get(&code.user)
        .cloned()
        .ok_or_else(|| invalid_grant(50034, "The user was deleted."))?;
    let minted = mint_sign_in(
        dir,
        base,
        &code,
        &user,
        form.get("client_info") == Some("1"),
    );
    if let Some((jti, at)) = authenticated.jti
        && !dir.first_use_of_jti(&jti, at)
    {
        return Err(err(
            401,
            "invalid_client",
            700027,
            "Client assertion failed signature validation. The assertion's jti was already used (replay).",
        ));
    }
    Ok(minted)
}

/// The code, marked redeemed: unknown, expired and second redemptions are refused.
fn take_code(dir: &mut Directory, value: &str) -> Result<AuthCode, EntraErr> {
    let now = dir.now();
    match dir.codes.get_mut(value) {
        Some(c) if c.redeemed => Err(invalid_grant(
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code.",
        )),
        Some(c) if c.expires <= now => Err(invalid_grant(
            70008,
            "The provided authorization code or refresh token has expired due to inactivity.",
        )),
        Some(c) => {
            c.redeemed = true;
            Ok(c.clone())
        }
        None => Err(invalid_grant(
            9002313,
            "Invalid request. The authorization code is malformed or was not issued by this mock.",
        )),
    }
}

/// PKCE: the verifier must hash (S256) or equal (plain) the code's challenge.
fn check_pkce(code: &AuthCode, verifier: Option<&str>) -> Result<(), EntraErr> {
    let Some((challenge, method)) = &code.pkce else {
        return Ok(());
    };
    let verifier = verifier.ok_or_else(|| missing("code_verifier"))?;
    let computed = if method == "S256" {
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
    } else {
        verifier.to_owned()
    };
    if computed != *challenge {
        return Err(invalid_grant(
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        ));
    }
    Ok(())
}

fn mint_sign_in(
    dir: &mut Directory,
    base: &str,
    code: &AuthCode,
    user: &User,
    client_info: bool,
) -> Minted {
    let now = dir.now();
    let iat = unix_secs(now);
    let life = dir.settings.token_lifetime.as_secs();
    let scopes: Vec<&str> = code.scope.split_whitespace().collect();
    let api_scopes: Vec<&str> = scopes
        .iter()
        .copied()
        .filter(|s| !OIDC_SCOPES.contains(s))
        .collect();
    let scp = if api_scopes.is_empty() {
        "User.Read".to_owned()
    } else {
        api_scopes.join(" ")
    };
    let sub = URL_SAFE_NO_PAD.encode(digest::digest(
        &digest::SHA256,
        format!("{}|{}", user.object_id, code.client_id).as_bytes(),
    ));
    let tid = &code.tid;
    let emit_wids = dir.apps.get(&code.client_id).is_some_and(|a| a.emit_wids);
    let id_token = scopes.contains(&"openid").then(|| {
        let mut claims = id_token_claims(base, code, user, &sub, iat);
        // Entra emits `wids` only when the app's token configuration asks for it, and
        // only for a user who holds a directory role.
        if emit_wids && !user.directory_roles.is_empty() {
            claims["wids"] = json!(user.directory_roles);
        }
        claims
    });
    let access = json!({
        "aud": "00000003-0000-0000-c000-000000000000",
        "iss": format!("https://sts.windows.net/{tid}/"),
        "iat": iat, "nbf": iat, "exp": iat + life,
        "appid": code.client_id, "idtyp": "user", "name": user.display_name,
        "oid": user.object_id, "scp": scp, "sub": sub, "tid": tid,
        "upn": user.upn, "unique_name": user.upn, "ver": "1.0",
    });
    let mut body = if code.v1 {
        json!({
            "token_type": "Bearer", "expires_in": life.to_string(), "ext_expires_in": life.to_string(),
            "expires_on": (iat + life).to_string(), "not_before": iat.to_string(),
            "resource": "00000003-0000-0000-c000-000000000000",
        })
    } else {
        super::issue::v2_body(dir, life)
    };
    let granted: Vec<&str> = scopes
        .iter()
        .copied()
        .filter(|s| *s != "offline_access")
        .collect();
    body["scope"] = json!(granted.join(" "));
    if client_info {
        let info = json!({"uid": user.object_id, "utid": tid}).to_string();
        body["client_info"] = Value::String(URL_SAFE_NO_PAD.encode(info));
    }
    Minted {
        key: dir.keys.signing(now),
        access,
        x5t: true,
        id_token,
        id_x5t: code.v1,
        body,
    }
}

/// An `id_token` as the endpoint version gives it: v2 (`iss` `{authority}{tid}/v2.0`,
/// `preferred_username`) or v1 (`iss` `https://sts.windows.net/{tid}/`, `unique_name`,
/// `amr`; signed with an `x5t` header).
fn id_token_claims(base: &str, code: &AuthCode, user: &User, sub: &str, iat: u64) -> Value {
    let tid = &code.tid;
    let mut c = json!({
        "aud": code.client_id, "iat": iat, "nbf": iat, "exp": iat + 3600,
        "name": user.display_name, "oid": user.object_id, "sub": sub, "tid": tid,
    });
    if code.v1 {
        c["iss"] = json!(format!("https://sts.windows.net/{tid}/"));
        c["amr"] = json!(["pwd"]);
        c["unique_name"] = json!(user.upn);
        c["upn"] = json!(user.upn);
        c["ver"] = json!("1.0");
    } else {
        c["iss"] = json!(format!("{base}{tid}/v2.0"));
        c["preferred_username"] = json!(user.upn);
        c["uti"] = json!(uuid::Uuid::new_v4().simple().to_string());
        c["rh"] = json!("0.mock.");
        c["ver"] = json!("2.0");
    }
    if let Some(n) = &code.nonce {
        c["nonce"] = json!(n);
    }
    c
}

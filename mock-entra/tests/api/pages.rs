//! The pages a person clicks through, driven as a browser drives them (HTML forms, the
//! mock's session cookie, no JavaScript): sign-in, admin consent with Accept and Cancel,
//! the `form_post` hand-off, error pages, sign-out; and a scripted user skipping them.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::wire::{ResponseExt, claims_of};

use azure_cross_tenant::TenantId;
use mock_entra::{MockApp, MockEntra, MockError, MockUser};

const REDIRECT: &str = "https://saas.example/callback";

/// A browser, as far as the mock's pages need one: it asks for HTML, keeps the mock's
/// session cookie, submits forms and follows no redirect (the test reads where it goes).
struct Browser {
    entra: MockEntra,
    http: reqwest::Client,
    cookie: Option<String>,
}

/// What the mock answered.
struct Answer {
    status: u16,
    location: Option<String>,
    set_cookie: Option<String>,
    headers: reqwest::header::HeaderMap,
    html: String,
}

impl Browser {
    fn new(entra: &MockEntra) -> Self {
        Self {
            entra: entra.clone(),
            http: entra.http_client(),
            cookie: None,
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let mut request = request.header("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let r = request.send().await.unwrap();
        let headers = r.headers().clone();
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let set_cookie = text("set-cookie");
        if let Some(set) = &set_cookie {
            let pair = set.split(';').next().unwrap().trim();
            self.cookie = if set.contains("Max-Age=0") {
                None
            } else {
                Some(pair.to_owned())
            };
        }
        Answer {
            status: r.status().as_u16(),
            location: text("location"),
            set_cookie,
            html: r.text().await.unwrap(),
            headers,
        }
    }

    async fn open(&mut self, url: &str) -> Answer {
        let request = self.http.get(url);
        self.send(request).await
    }

    /// Submits form `form_id` of `page` with `fields` (the button pressed included).
    async fn submit(&mut self, page: &Answer, form_id: &str, fields: &[(&str, &str)]) -> Answer {
        let action = page.attr(&format!("id=\"{form_id}\""), "action");
        let url = self.entra.uri().join(&action).unwrap();
        let request = self.http.post(url).form(fields);
        self.send(request).await
    }
}

impl Answer {
    /// Which of the mock's pages this is (`<body data-page=..>`).
    fn page(&self) -> &str {
        let start = self.html.find("<body data-page=\"").map(|i| i + 17);
        start
            .and_then(|s| self.html[s..].find('"').map(|e| &self.html[s..s + e]))
            .unwrap_or("")
    }

    /// Attribute `name` of the tag holding `marker` (e.g. `id="x"`), unescaped.
    fn attr(&self, marker: &str, name: &str) -> String {
        let at = self
            .html
            .find(marker)
            .unwrap_or_else(|| panic!("no {marker} in {}", self.html));
        let tag_start = self.html[..at].rfind('<').unwrap();
        let tag_end = at + self.html[at..].find('>').unwrap();
        let tag = &self.html[tag_start..tag_end];
        let key = format!("{name}=\"");
        let start = tag.find(&key).unwrap() + key.len();
        let end = start + tag[start..].find('"').unwrap();
        unescape(&tag[start..end])
    }

    fn has(&self, id: &str) -> bool {
        self.html.contains(&format!("id=\"{id}\""))
    }

    /// The text right inside the element with id `id` (up to its first child tag).
    fn text(&self, id: &str) -> String {
        let marker = format!("id=\"{id}\"");
        let at = self
            .html
            .find(&marker)
            .unwrap_or_else(|| panic!("no #{id} in {}", self.html));
        let start = at + self.html[at..].find('>').unwrap() + 1;
        let end = start + self.html[start..].find('<').unwrap();
        unescape(&self.html[start..end])
    }

    /// Where a 302 sends the browser: the URL without its query, and the query.
    fn back(&self) -> (String, Vec<(String, String)>) {
        assert_eq!(self.status, 302, "{}", self.html);
        let mut url = url::Url::parse(self.location.as_deref().unwrap()).unwrap();
        let params = url.query_pairs().into_owned().collect();
        url.set_query(None);
        (url.to_string(), params)
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

struct World {
    entra: MockEntra,
    customer: TenantId,
    app: MockApp,
    secret: String,
    admin: MockUser,
    member: MockUser,
}

async fn world() -> World {
    world_on(MockEntra::start().await)
}

fn world_on(entra: MockEntra) -> World {
    let home = entra.add_tenant("provider.example");
    let customer = entra.add_tenant("customer.example");
    let app = entra.register_app(&home, "saas");
    let secret = entra.add_secret(&app);
    entra.require_role(&app, "https://vault.azure.net", "Secrets.Read");
    let admin = entra.add_admin(&customer, "admin@customer.example");
    let member = entra.add_user(&customer, "member@customer.example");
    World {
        entra,
        customer,
        app,
        secret,
        admin,
        member,
    }
}

fn authorize_url(w: &World, authority: &str, extra: &str) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, b"the-verifier"));
    format!(
        "{}{authority}/oauth2/v2.0/authorize?client_id={}&response_type=code&redirect_uri={REDIRECT}&scope=openid%20profile&state=S1&nonce=N1&code_challenge={challenge}&code_challenge_method=S256{extra}",
        w.entra.uri(),
        w.app.client_id()
    )
}

fn consent_url(w: &World, authority: &str) -> String {
    format!(
        "{}{authority}/v2.0/adminconsent?client_id={}&scope=https://vault.azure.net/.default&redirect_uri={REDIRECT}&state=S2",
        w.entra.uri(),
        w.app.client_id()
    )
}

async fn redeem(w: &World, code: &str) -> Value {
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", w.app.client_id()),
        ("client_secret", w.secret.as_str()),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", "the-verifier"),
        ("scope", "openid profile"),
    ];
    let r = crate::http()
        .post(format!("{}organizations/oauth2/v2.0/token", w.entra.uri()))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json_value().await
}

/// What every page shares: the test-only banner, no script, never cached or framed.
fn assert_plain_test_page(a: &Answer) {
    assert!(a.has("test-only"), "{}", a.html);
    assert!(a.html.contains("<strong>Test only.</strong>"), "{}", a.html);
    assert!(
        !a.html.to_ascii_lowercase().contains("<script"),
        "{}",
        a.html
    );
    let csp = a.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(a.headers["cache-control"], "no-store, no-cache");
    assert!(
        a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn a_person_signs_in_on_the_page_and_the_browser_stays_signed_in() {
    let w = world().await;
    let mut browser = Browser::new(&w.entra);
    let page = browser.open(&authorize_url(&w, "organizations", "")).await;
    assert_eq!(
        (page.status, page.page()),
        (200, "sign-in"),
        "{}",
        page.html
    );
    assert_plain_test_page(&page);
    for id in [
        "username",
        "password",
        "sign-in",
        "sign-in-form",
        "users",
        "app-name",
    ] {
        assert!(page.has(id), "#{id} in {}", page.html);
    }
    assert_eq!(page.text("app-name"), "saas");
    assert_eq!(page.text("client-id"), w.app.client_id());
    // Every user of every tenant is offered at `organizations`, admins marked.
    assert_eq!(
        page.attr("data-upn=\"admin@customer.example\"", "value"),
        "admin@customer.example"
    );
    assert!(page.html.contains("data-upn=\"member@customer.example\""));
    assert!(
        page.html
            .contains("administrator of <code>customer.example</code>")
    );

    let back = browser
        .submit(
            &page,
            "sign-in-form",
            &[
                ("username", "Admin@Customer.example"),
                ("password", "hunter2-anything"),
            ],
        )
        .await;
    let (target, params) = back.back();
    assert_eq!(target, REDIRECT);
    assert_eq!(param(&params, "state"), Some("S1"));
    let cookie = back.set_cookie.clone().unwrap();
    assert!(
        cookie.starts_with(&format!("mock_entra_session_{}=", w.entra.address().port()))
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Path=/")
            && !cookie.contains("Secure"),
        "over http: {cookie}"
    );
    let body = redeem(&w, param(&params, "code").unwrap()).await;
    let id = claims_of(body["id_token"].as_str().unwrap());
    assert_eq!(id["oid"], w.admin.object_id.as_str());
    assert_eq!(id["nonce"], "N1");
    // The password is neither checked nor kept.
    assert!(!format!("{:?}", w.entra.requests()).contains("hunter2"));

    // Signed in: the next sign-in needs no page (single sign-on), unless the app asks
    // to choose again.
    let again = browser.open(&authorize_url(&w, "organizations", "")).await;
    assert!(param(&again.back().1, "code").is_some());
    let choose = browser
        .open(&authorize_url(
            &w,
            "organizations",
            "&prompt=select_account",
        ))
        .await;
    assert_eq!(choose.page(), "sign-in");
    // Picking a user is a button of its own.
    let back = browser
        .submit(
            &choose,
            "sign-in-form",
            &[("username", ""), ("user", "member@customer.example")],
        )
        .await;
    let body = redeem(&w, param(&back.back().1, "code").unwrap()).await;
    assert_eq!(
        claims_of(body["id_token"].as_str().unwrap())["oid"],
        w.member.object_id.as_str()
    );
    // Another browser has no session: the page again; prompt=none is refused.
    let mut other = Browser::new(&w.entra);
    assert_eq!(
        other
            .open(&authorize_url(&w, "organizations", ""))
            .await
            .page(),
        "sign-in"
    );
    let silent = other
        .open(&authorize_url(&w, "organizations", "&prompt=none"))
        .await;
    assert_eq!(param(&silent.back().1, "error"), Some("login_required"));
}

#[tokio::test]
async fn the_sign_in_page_stays_put_and_says_why_for_an_unknown_or_foreign_user() {
    let w = world().await;
    let stranger_tenant = w.entra.add_tenant("stranger.example");
    w.entra
        .add_admin(&stranger_tenant, "admin@stranger.example");
    let mut browser = Browser::new(&w.entra);
    let at_customer = authorize_url(&w, w.customer.as_str(), "");
    let page = browser.open(&at_customer).await;
    // A tenant's authority offers that tenant's users only.
    assert!(page.html.contains("data-upn=\"admin@customer.example\""));
    assert!(!page.html.contains("admin@stranger.example"));
    for (typed, code) in [
        ("nobody@customer.example", "AADSTS50034"),
        ("admin@stranger.example", "AADSTS50020"),
        ("\"><script>alert(1)</script>", "AADSTS50034"),
    ] {
        let again = browser
            .submit(&page, "sign-in-form", &[("username", typed)])
            .await;
        assert_eq!((again.status, again.page()), (200, "sign-in"));
        assert!(again.text("error").starts_with(code), "{}", again.html);
        assert_eq!(
            again.attr("id=\"username\"", "value"),
            typed,
            "kept to correct"
        );
        assert!(!again.html.contains("<script>alert"), "escaped");
        assert!(again.set_cookie.is_none());
    }
    let empty = browser
        .submit(&page, "sign-in-form", &[("username", "  ")])
        .await;
    assert!(empty.text("error").contains("Type a user name"));
    // An unknown tenant has no sign-in page: Entra's error page.
    let unknown = browser.open(&authorize_url(&w, "nosuch.example", "")).await;
    assert_eq!((unknown.status, unknown.page()), (400, "error"));
    assert_eq!(unknown.text("error-code"), "AADSTS90002");
}

#[tokio::test]
async fn an_admin_signs_in_then_accepts_the_permissions_on_the_consent_page() {
    let w = world().await;
    let mut browser = Browser::new(&w.entra);
    let signed_in = browser.open(&authorize_url(&w, "organizations", "")).await;
    let back = browser
        .submit(
            &signed_in,
            "sign-in-form",
            &[("username", "admin@customer.example")],
        )
        .await;
    assert_eq!(back.status, 302);

    let page = browser.open(&consent_url(&w, w.customer.as_str())).await;
    assert_eq!(
        (page.status, page.page()),
        (200, "consent"),
        "{}",
        page.html
    );
    assert_plain_test_page(&page);
    assert!(page.has("accept") && page.has("cancel") && page.has("permissions"));
    assert_eq!(page.text("app-name"), "saas");
    assert_eq!(page.text("tenant"), "customer.example");
    assert_eq!(
        page.attr("id=\"tenant\"", "data-tenant-id"),
        w.entra.tenant_guid(&w.customer)
    );
    assert_eq!(
        page.attr("class=\"permission\"", "data-role"),
        "Secrets.Read"
    );
    assert_eq!(
        page.attr("class=\"permission\"", "data-resource"),
        "https://vault.azure.net"
    );
    assert!(
        page.html
            .contains("<code>https://vault.azure.net/.default</code>")
    );
    assert_eq!(
        w.entra.service_principal_id(&w.customer, &w.app),
        None,
        "not before Accept"
    );

    let back = browser
        .submit(&page, "consent-form", &[("action", "accept")])
        .await;
    let (target, params) = back.back();
    assert_eq!(target, REDIRECT);
    let tid = w.entra.tenant_guid(&w.customer);
    assert_eq!(
        (
            param(&params, "admin_consent"),
            param(&params, "tenant"),
            param(&params, "state"),
            param(&params, "scope"),
        ),
        (
            Some("True"),
            Some(tid.as_str()),
            Some("S2"),
            Some("https://vault.azure.net/.default")
        )
    );
    assert!(w.entra.service_principal_id(&w.customer, &w.app).is_some());
}

#[tokio::test]
async fn cancel_on_the_consent_page_is_access_denied_65004_and_nothing_is_consented() {
    let w = world().await;
    let mut browser = Browser::new(&w.entra);
    // Nobody signed in: the sign-in page first, then (same URL) the consent page.
    let sign_in = browser.open(&consent_url(&w, "organizations")).await;
    assert_eq!(sign_in.page(), "sign-in");
    assert!(sign_in.html.contains("asks you to grant admin consent"));
    let page = browser
        .submit(
            &sign_in,
            "sign-in-form",
            &[("user", "admin@customer.example")],
        )
        .await;
    assert_eq!(
        (page.status, page.page()),
        (200, "consent"),
        "{}",
        page.html
    );
    assert!(page.set_cookie.is_some(), "signed in on the way");
    let back = browser
        .submit(&page, "consent-form", &[("action", "cancel")])
        .await;
    let (_, params) = back.back();
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(param(&params, "error_subcode"), Some("cancel"));
    assert!(
        param(&params, "error_description")
            .unwrap()
            .starts_with("AADSTS65004:")
    );
    assert_eq!(param(&params, "state"), Some("S2"));
    assert_eq!(w.entra.service_principal_id(&w.customer, &w.app), None);
}

#[tokio::test]
async fn a_member_who_is_not_an_admin_is_sent_back_with_access_denied_90094() {
    let w = world().await;
    let mut browser = Browser::new(&w.entra);
    let sign_in = browser.open(&consent_url(&w, w.customer.as_str())).await;
    let back = browser
        .submit(
            &sign_in,
            "sign-in-form",
            &[("username", "member@customer.example")],
        )
        .await;
    let (target, params) = back.back();
    assert_eq!(target, REDIRECT);
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert!(
        param(&params, "error_description")
            .unwrap()
            .starts_with("AADSTS90094")
    );
    assert_eq!(w.entra.service_principal_id(&w.customer, &w.app), None);
}

#[tokio::test]
async fn form_post_is_a_page_whose_continue_button_posts_the_code_without_script() {
    let w = world().await;
    let mut browser = Browser::new(&w.entra);
    let page = browser
        .open(
            &authorize_url(&w, "organizations", "&response_mode=form_post")
                .replace("state=S1", "state=%22%3E%3Cb%3E"),
        )
        .await;
    let posted = browser
        .submit(
            &page,
            "sign-in-form",
            &[("username", "admin@customer.example")],
        )
        .await;
    assert_eq!(
        (posted.status, posted.page()),
        (200, "form-post"),
        "{}",
        posted.html
    );
    assert_plain_test_page(&posted);
    assert!(posted.has("continue"));
    assert_eq!(posted.attr("id=\"form-post\"", "action"), REDIRECT);
    assert_eq!(posted.attr("id=\"form-post\"", "method"), "post");
    assert_eq!(posted.attr("name=\"state\"", "value"), "\"><b>");
    assert!(!posted.html.contains("\"><b>"), "escaped");
    assert!(posted.attr("name=\"code\"", "value").starts_with("mock."));
    // follow() reads the same page for tests without a browser.
    w.entra.sign_in(&w.admin);
    let back = w
        .entra
        .follow(&authorize_url(
            &w,
            "organizations",
            "&response_mode=form_post",
        ))
        .await
        .unwrap();
    assert_eq!(back.target.as_str(), REDIRECT);
    assert!(back.get("code").is_some());
}

#[tokio::test]
async fn a_request_the_browser_cannot_be_sent_back_from_ends_on_an_error_page() {
    let w = world().await;
    w.entra.add_redirect_uri(&w.app, REDIRECT);
    let mut browser = Browser::new(&w.entra);
    let url = format!(
        "{}organizations/v2.0/adminconsent?client_id={}&redirect_uri=https://evil.example/cb&state=S",
        w.entra.uri(),
        w.app.client_id()
    );
    let page = browser.open(&url).await;
    assert_eq!((page.status, page.page()), (400, "error"), "{}", page.html);
    assert_plain_test_page(&page);
    assert_eq!(page.text("error"), "invalid_request");
    assert_eq!(page.text("error-code"), "AADSTS50011");
    assert!(page.text("error-description").contains("evil.example"));
    assert_eq!(
        page.text("trace-id"),
        page.headers["x-ms-request-id"].to_str().unwrap()
    );
    // A client that does not read HTML gets Entra's error JSON.
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json_value().await["error_codes"][0], 50011);
}

#[tokio::test]
async fn a_scripted_user_skips_the_pages_and_follow_without_one_names_the_sign_in_page() {
    let w = world().await;
    match w
        .entra
        .follow(&authorize_url(&w, "organizations", ""))
        .await
    {
        Err(e @ MockError::Page { .. }) => {
            assert!(e.to_string().contains("sign-in page"), "{e}");
            assert!(e.to_string().contains("sign_in"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    match w.entra.follow(&consent_url(&w, w.customer.as_str())).await {
        Err(MockError::Page { page, .. }) => assert_eq!(page, "sign-in"),
        other => panic!("{other:?}"),
    }
    // A browser too skips both pages while a scripted user is set.
    w.entra.sign_in(&w.admin);
    let mut browser = Browser::new(&w.entra);
    let signed_in = browser.open(&authorize_url(&w, "organizations", "")).await;
    assert!(param(&signed_in.back().1, "code").is_some());
    assert!(
        signed_in.set_cookie.is_none(),
        "no browser session for a scripted user"
    );
    let consented = browser.open(&consent_url(&w, w.customer.as_str())).await;
    assert_eq!(param(&consented.back().1, "admin_consent"), Some("True"));
}

/// The admin signs in on the page at `organizations`.
async fn sign_in(w: &World, browser: &mut Browser) -> Answer {
    let page = browser.open(&authorize_url(w, "organizations", "")).await;
    browser
        .submit(
            &page,
            "sign-in-form",
            &[("username", "admin@customer.example")],
        )
        .await
}

#[tokio::test]
async fn signing_out_ends_the_browsers_session() {
    let w = world().await;
    let mut browser = Browser::new(&w.entra);
    assert_eq!(sign_in(&w, &mut browser).await.status, 302);
    // The end_session_endpoint: back to an acceptable post-logout URI, cookie dropped.
    let out = browser
        .open(&format!(
            "{}organizations/oauth2/v2.0/logout?post_logout_redirect_uri=https://saas.example/bye&state=S9",
            w.entra.uri()
        ))
        .await;
    assert_eq!(
        out.location.as_deref(),
        Some("https://saas.example/bye?state=S9")
    );
    assert!(out.set_cookie.as_deref().unwrap().contains("Max-Age=0"));
    assert_eq!(
        browser
            .open(&authorize_url(&w, "organizations", ""))
            .await
            .page(),
        "sign-in"
    );
    // Without an acceptable URI, the signed-out page; MockEntra::sign_out ends every
    // browser's session.
    assert_eq!(sign_in(&w, &mut browser).await.status, 302);
    let out = browser
        .open(&format!(
            "{}common/oauth2/v2.0/logout?post_logout_redirect_uri=javascript:alert(1)",
            w.entra.uri()
        ))
        .await;
    assert_eq!((out.status, out.page()), (200, "signed-out"));
    assert_eq!(sign_in(&w, &mut browser).await.status, 302);
    w.entra.sign_out();
    assert_eq!(
        browser
            .open(&authorize_url(&w, "organizations", ""))
            .await
            .page(),
        "sign-in"
    );
}

#[tokio::test]
async fn over_https_the_session_cookie_is_secure_and_the_pages_work_the_same() {
    let w = world_on(MockEntra::builder().tls().start().await);
    let mut browser = Browser::new(&w.entra);
    let page = browser.open(&authorize_url(&w, "organizations", "")).await;
    assert_eq!(page.page(), "sign-in");
    assert!(
        page.headers["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    let back = browser
        .submit(
            &page,
            "sign-in-form",
            &[("username", "admin@customer.example")],
        )
        .await;
    assert!(back.set_cookie.as_deref().unwrap().contains("; Secure"));
    let consent = browser.open(&consent_url(&w, "organizations")).await;
    assert_eq!(consent.page(), "consent");
    let back = browser
        .submit(&consent, "consent-form", &[("action", "accept")])
        .await;
    assert_eq!(param(&back.back().1, "admin_consent"), Some("True"));
}

//! Users, the "browser" session, and a helper that plays the browser for sign-in and admin
//! consent URLs, so tests drive those flows without one.

use url::Url;

use crate::error::or_panic;
use crate::{MockEntra, MockError, MockUser};
use azure_cross_tenant::TenantId;

/// Where the mock sent the browser back: the redirect URI and the parameters it carries
/// (from the query, the fragment, or a `form_post` page).
///
/// ```
/// use mock_entra::MockEntra;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let entra = MockEntra::start().await;
/// let home = entra.add_tenant("provider.example");
/// let customer = entra.add_tenant("customer.example");
/// let app = entra.register_app(&home, "saas");
/// let admin = entra.add_admin(&customer, "admin@customer.example");
/// entra.sign_in(&admin);
/// let url = format!(
///     "{}organizations/v2.0/adminconsent?client_id={}&redirect_uri=https://saas.example/cb&state=s1",
///     entra.uri(), app.client_id()
/// );
/// let back = entra.follow(&url).await?;
/// assert_eq!(back.get("admin_consent"), Some("True"));
/// assert_eq!(back.get("tenant"), Some(customer.as_str()));
/// assert!(entra.service_principal_id(&customer, &app).is_some());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MockRedirect {
    /// The URL the browser was sent to, without the parameters.
    pub target: Url,
    /// The parameters, in order.
    pub params: Vec<(String, String)>,
}

impl MockRedirect {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl MockEntra {
    /// Adds a user to `tenant`: not an admin, no directory role. The admin consent page
    /// refuses them (AADSTS90094), as Entra does.
    ///
    /// # Panics
    /// If the tenant is unknown or the UPN taken or malformed.
    pub fn add_user(&self, tenant: &TenantId, upn: &str) -> MockUser {
        self.user(tenant, upn, false, None)
    }

    /// Adds a user to `tenant` who may grant admin consent for it: a Global Administrator
    /// (directory role `62e90394-69f5-4237-9190-012177145e10`).
    ///
    /// # Panics
    /// If the tenant is unknown or the UPN taken or malformed.
    pub fn add_admin(&self, tenant: &TenantId, upn: &str) -> MockUser {
        self.user(tenant, upn, true, None)
    }

    /// Adds a user to `tenant` holding the directory roles `roles` (role template ids).
    /// They may grant admin consent if one of them is Global, Privileged Role, Cloud
    /// Application or Application Administrator.
    ///
    /// ```
    /// use mock_entra::MockEntra;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let entra = MockEntra::start().await;
    /// let customer = entra.add_tenant("customer.example");
    /// const APPLICATION_ADMINISTRATOR: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
    /// let admin = entra.add_user_with_roles(&customer, "apps@customer.example", &[APPLICATION_ADMINISTRATOR]);
    /// assert!(admin.is_admin);
    /// const REPORTS_READER: &str = "4a5d8f65-41da-4de4-8968-e035b65339cf";
    /// let reader = entra.add_user_with_roles(&customer, "reports@customer.example", &[REPORTS_READER]);
    /// assert!(!reader.is_admin);
    /// # }
    /// ```
    ///
    /// # Panics
    /// If the tenant is unknown, the UPN taken or malformed, or a role not a GUID.
    pub fn add_user_with_roles(&self, tenant: &TenantId, upn: &str, roles: &[&str]) -> MockUser {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        self.user(tenant, upn, false, Some(&roles))
    }

    fn user(
        &self,
        tenant: &TenantId,
        upn: &str,
        admin: bool,
        roles: Option<&[String]>,
    ) -> MockUser {
        let user = or_panic(
            self.lock()
                .add_user(tenant.as_str(), upn, None, admin, None, roles),
        );
        MockUser {
            object_id: user.object_id,
            upn: user.upn,
            display_name: user.display_name,
            tenant: user
                .tenant
                .parse()
                .unwrap_or_else(|_| unreachable!("a GUID is a tenant id")),
            is_admin: user.admin,
            directory_roles: user.directory_roles,
        }
    }

    /// Presets the scripted user: sign-in (without `login_hint`) and admin consent act as
    /// `user` with no page, until another signs in. A real browser skips the sign-in and
    /// consent pages too while a scripted user is set.
    pub fn sign_in(&self, user: &MockUser) {
        self.lock().session = Some(user.object_id.clone());
    }

    /// Signs everyone out: the scripted user, and every browser signed in on the
    /// sign-in page (their next visit shows the sign-in page again).
    pub fn sign_out(&self) {
        let mut dir = self.lock();
        dir.session = None;
        dir.browser_sessions.clear();
    }

    /// The next admin consent is declined by the admin (`error=access_denied`, AADSTS65004).
    pub fn decline_next_admin_consent(&self) {
        self.lock().decline_next_consent = true;
    }

    /// Opens `url` (an authorize or admin consent URL of this mock) as a browser would
    /// and returns where the mock sent the browser back, without following it.
    ///
    /// A `form_post` answer is read from the page the mock serves (its Continue button
    /// would post it). Preset the user ([`sign_in`](Self::sign_in) or `login_hint`): with
    /// nobody signed in, the mock shows its sign-in page, which needs a person.
    ///
    /// # Errors
    /// [`MockError::Http`] when the mock answers with an error instead (unknown app, a
    /// redirect URI it refuses, a malformed request); [`MockError::Page`] when it shows
    /// its sign-in page (nobody is signed in).
    pub async fn follow(&self, url: &str) -> Result<MockRedirect, MockError> {
        let response = self
            .http_client()
            .get(url)
            .send()
            .await
            .map_err(|e| MockError::invalid(format!("GET {url}: {e}")))?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        let page = page_name(&body);
        match (status, location, page) {
            (302, Some(location), _) => parse_location(&location),
            (200, _, Some("form-post")) => parse_form_post(&body),
            (200, _, Some(page)) => Err(MockError::Page {
                page: page.to_owned(),
                body,
            }),
            _ => Err(MockError::Http { status, body }),
        }
    }
}

fn parse_location(location: &str) -> Result<MockRedirect, MockError> {
    let mut target = Url::parse(location)
        .map_err(|e| MockError::invalid(format!("redirect {location}: {e}")))?;
    let mut params: Vec<(String, String)> = target.query_pairs().into_owned().collect();
    if let Some(fragment) = target.fragment() {
        params.extend(url::form_urlencoded::parse(fragment.as_bytes()).into_owned());
    }
    target.set_query(None);
    target.set_fragment(None);
    Ok(MockRedirect { target, params })
}

/// Which of the mock's pages `html` is (`<body data-page="...">`).
fn page_name(html: &str) -> Option<&str> {
    let start = html.find("<body data-page=\"")? + "<body data-page=\"".len();
    let end = html[start..].find('"')? + start;
    Some(&html[start..end])
}

/// The action and hidden fields of the mock's own `form_post` page.
fn parse_form_post(page: &str) -> Result<MockRedirect, MockError> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(unescape(&tag[start..end]))
    };
    let form_tag = page
        .split('<')
        .find(|t| t.starts_with("form "))
        .ok_or_else(|| MockError::invalid("form_post page without a form"))?;
    let action =
        attr(form_tag, "action").ok_or_else(|| MockError::invalid("form without action"))?;
    let params = page
        .split('<')
        .filter(|t| t.starts_with("input type=\"hidden\" "))
        .filter_map(|t| Some((attr(t, "name")?, attr(t, "value")?)))
        .collect();
    let target =
        Url::parse(&action).map_err(|e| MockError::invalid(format!("form action: {e}")))?;
    Ok(MockRedirect { target, params })
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

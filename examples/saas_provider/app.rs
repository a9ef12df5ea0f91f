//! The provider's web app itself: its pages, its routes and the embedded mock world. Both
//! `main.rs` (the example you run) and the browser test (`tests/browser/`, which includes
//! this file with `#[path]`) build it from here, so the test drives the same app a person
//! clicks through.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use azure_cross_tenant::{
    Cached, ClientSecret, Onboarding, OnboardingOutcome, OnboardingRoutes, SignInClient,
    SqlRegistry, TenantCredentialProvider, TenantHealthMonitor, TenantId, TenantRegistry, Watched,
};
use mock_entra::{MockEntra, MockResource, MockUser};

/// What this app's errors are: boxed, and `Send` so that a test can run the app on a
/// spawned task.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub(crate) const VAULT_SCOPE: &str = "https://vault.azure.net/.default";
/// A single-account demo: the app's own login would say who this is.
const ACCOUNT: &str = "demo-account";

type Provider = Watched<Arc<dyn SignInClient>>;

struct AppState {
    registry: Arc<dyn TenantRegistry>,
    provider: Provider,
    vaults: Vaults,
    http: reqwest::Client,
}

/// Where each tenant's Key Vault is.
pub(crate) enum Vaults {
    /// A vault URL in which `{tenant}` is replaced by the tenant id (or one vault).
    Real(String),
    /// Mock: one fake vault per tenant, started on first use.
    Mock {
        entra: MockEntra,
        started: Mutex<HashMap<TenantId, Arc<MockResource>>>,
    },
}

impl Vaults {
    async fn url_of(&self, tenant: &TenantId) -> String {
        match self {
            Self::Real(template) => template.replace("{tenant}", tenant.as_str()),
            Self::Mock { entra, started } => {
                if let Some(vault) = started.lock().unwrap().get(tenant) {
                    return vault.uri();
                }
                let vault =
                    MockResource::start(entra, tenant, "https://vault.azure.net", |_, _| {
                        mock_entra::ResourceResponse::new(200).set_body_json(
                            serde_json::json!({"value": "s3cr3t-from-the-customer-vault"}),
                        )
                    })
                    .await;
                let uri = vault.uri();
                started
                    .lock()
                    .unwrap()
                    .insert(tenant.clone(), Arc::new(vault));
                uri
            }
        }
    }
}

/// The embedded mock world: the provider's multitenant app registered in its home tenant,
/// and one customer tenant, `contoso.example`, with an admin and a user who is not one.
/// Nobody is signed in to the mock's browser session: its pages ask.
pub(crate) struct MockWorld {
    pub(crate) entra: MockEntra,
    pub(crate) customer: TenantId,
    /// `admin@contoso.example`, a Global Administrator of the customer tenant.
    pub(crate) admin: MockUser,
    /// `user@contoso.example`, a member who may not consent for the tenant.
    pub(crate) member: MockUser,
    credential: Arc<dyn SignInClient>,
}

impl MockWorld {
    /// A mock Entra for an app whose browser-facing address is `public_url` (no trailing
    /// slash): its two onboarding redirect URIs are registered.
    pub(crate) async fn start(public_url: &str) -> Result<Self, BoxError> {
        let entra = MockEntra::start().await;
        let home = entra.add_tenant("provider.example");
        let customer = entra.add_tenant("contoso.example");
        let app = entra.register_app(&home, "saas-provider");
        let secret = entra.add_secret(&app);
        entra.emit_wids(&app, true);
        entra.add_redirect_uri(&app, &format!("{public_url}/onboarding/signed-in"));
        entra.add_redirect_uri(&app, &format!("{public_url}/onboarding/consented"));
        let admin = entra.add_admin(&customer, "admin@contoso.example");
        let member = entra.add_user(&customer, "user@contoso.example");
        let credential: Arc<dyn SignInClient> = Arc::new(Cached::new(
            ClientSecret::new(app.client_id(), secret)
                .authority_host(entra.uri())
                .build()?,
        ));
        Ok(Self {
            entra,
            customer,
            admin,
            member,
            credential,
        })
    }

    /// The app's side of this world: its credential, a fake vault per tenant, SQLite in
    /// memory.
    pub(crate) fn backend(&self) -> Backend {
        Backend {
            credential: self.credential.clone(),
            database: "sqlite::memory:".into(),
            vaults: Vaults::Mock {
                entra: self.entra.clone(),
                started: Mutex::default(),
            },
        }
    }
}

/// What the app runs against: Entra (real or mock) through `credential`, the registry's
/// database, the customers' vaults.
pub(crate) struct Backend {
    pub(crate) credential: Arc<dyn SignInClient>,
    pub(crate) database: String,
    pub(crate) vaults: Vaults,
}

/// The app, ready to serve, and its registry (which a test may read).
pub(crate) struct App {
    pub(crate) router: Router,
    #[allow(
        dead_code,
        reason = "the browser test reads it; the example only serves"
    )]
    pub(crate) registry: Arc<dyn TenantRegistry>,
}

/// The app for a browser that reaches it at `public_url` (no trailing slash): the tenants
/// page at `/`, the onboarding routes under `/onboarding`, the per-tenant secret action.
pub(crate) async fn build(backend: Backend, public_url: &str) -> Result<App, BoxError> {
    let Backend {
        credential,
        database,
        vaults,
    } = backend;
    let registry: Arc<dyn TenantRegistry> = Arc::new(SqlRegistry::connect(&database).await?);
    let health = TenantHealthMonitor::new(registry.clone());
    let onboarding = Onboarding::builder(
        credential.clone(),
        VAULT_SCOPE,
        format!("{public_url}/onboarding/signed-in"),
    )
    .consent_redirect_uri(format!("{public_url}/onboarding/consented"))
    .build()?;
    let onboarding_routes = OnboardingRoutes::builder(onboarding, registry.clone())
        .account(|_| Some(ACCOUNT.to_owned()))
        .done_page("/")
        .build()?;
    let state = Arc::new(AppState {
        registry: registry.clone(),
        provider: health.watch(credential),
        vaults,
        http: reqwest::Client::new(),
    });
    let router = Router::new()
        .route("/", get(page))
        .route("/tenants/{tenant}/secret", post(read_secret))
        .with_state(state)
        .nest("/onboarding", onboarding_routes);
    Ok(App { router, registry })
}

/// Text for HTML: nothing from outside reaches the page unescaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn layout(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em}}</style>\
         </head><body>\n{body}\n</body></html>\n",
        title = escape(title)
    ))
}

async fn page(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Html<String> {
    let mut body = String::from("<h1>Your customer tenants</h1>\n");
    if let Some(outcome) = query.as_deref().and_then(OnboardingOutcome::from_query) {
        let kind = match outcome {
            OnboardingOutcome::Failed { .. } => "failed",
            _ => "ok",
        };
        let _ = writeln!(
            body,
            "<p id=\"outcome\" role=\"status\" data-outcome=\"{kind}\" data-reason=\"{}\">{}</p>",
            outcome.reason().map(|r| r.code()).unwrap_or(""),
            escape(&outcome.message())
        );
    }
    body.push_str(
        "<form method=\"post\" action=\"/onboarding/start\"><button id=\"connect\" type=\"submit\">Connect your Azure tenant</button></form>\n",
    );
    match state.registry.list().await {
        Err(e) => {
            let _ = writeln!(
                body,
                "<p id=\"error\">The registry is unavailable: {}</p>",
                escape(&e.to_string())
            );
        }
        Ok(records) => {
            body.push_str("<table id=\"tenants\"><thead><tr><th>Name</th><th>Tenant</th><th>State</th><th>Health</th><th>Key Vault</th></tr></thead><tbody>\n");
            for r in records
                .iter()
                .filter(|r| r.account.as_deref() == Some(ACCOUNT))
            {
                let t = escape(r.tenant.as_str());
                let health = match &r.health {
                    None => "healthy".to_owned(),
                    Some(h) => format!("{}: {}", h.condition.as_str(), h.condition.advice()),
                };
                let _ = writeln!(
                    body,
                    "<tr id=\"tenant-{t}\"><td class=\"name\">{}</td><td class=\"tenant\">{t}</td><td class=\"state\">{}</td><td class=\"health\">{}</td>\
                     <td><form method=\"post\" action=\"/tenants/{t}/secret\"><button id=\"read-secret-{t}\" type=\"submit\">Read a secret</button></form></td></tr>",
                    escape(&r.display_name),
                    r.state.as_str(),
                    escape(&health),
                );
            }
            body.push_str("</tbody></table>\n");
            if records.is_empty() {
                body.push_str("<p id=\"empty\">No tenant connected yet.</p>\n");
            }
        }
    }
    layout("Customer tenants", &body)
}

async fn read_secret(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
) -> Result<Html<String>, Redirect> {
    let tenant: TenantId = tenant.parse().map_err(|_| Redirect::to("/"))?;
    // Only tenants linked to this account.
    match state.registry.get(&tenant).await {
        Ok(Some(r)) if r.account.as_deref() == Some(ACCOUNT) => {}
        _ => return Err(Redirect::to("/")),
    }
    let result = async {
        let token = state.provider.get_token(&tenant, &[VAULT_SCOPE]).await?;
        let vault = state.vaults.url_of(&tenant).await;
        let answer = state
            .http
            .get(format!("{vault}/secrets/db-password?api-version=7.5"))
            .bearer_auth(token.secret())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = answer.status();
        let bytes = answer.bytes().await.map_err(|e| e.to_string())?;
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        match body.get("value").and_then(|v| v.as_str()) {
            Some(value) if status.is_success() => Ok::<_, BoxError>(format!(
                "db-password read from the tenant's vault ({} characters; not shown)",
                value.len()
            )),
            _ => Err(format!("the vault answered {status}").into()),
        }
    }
    .await;
    let text = match result {
        Ok(text) => text,
        Err(e) => format!("failed: {e}"),
    };
    Ok(layout(
        "Key Vault",
        &format!(
            "<h1>Tenant {}</h1>\n<p id=\"secret-result\">{}</p>\n<p><a id=\"back\" href=\"/\">Back to the tenants</a></p>",
            escape(tenant.as_str()),
            escape(&text)
        ),
    ))
}

//! A SaaS provider's web app: a page listing the linked customer tenants and their
//! health, a "Connect your Azure tenant" button running the drop-in onboarding routes,
//! and a per-tenant button that reads a secret from that tenant's Key Vault through
//! `Cached` (whose errors keep each tenant's health in the registry true).
//!
//! Mock (default): `cargo run --example saas_provider --features sqlite,axum`:
//! an embedded MockEntra (an admin of `contoso.example` is signed in to its browser
//! session, so "Connect" goes straight through), SQLite in memory, a fake Key Vault per
//! tenant. It prints `saas_provider listening at http://127.0.0.1:PORT/` (`PORT` env,
//! default a free port). Open it in a browser: server-rendered HTML, no JavaScript.
//!
//! Real Azure: set `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` (or
//! `AZURE_CLIENT_CERTIFICATE_PATH`, a PEM file with the certificate and its key),
//! `DATABASE_URL` (`sqlite://tenants.db` or `postgres://...`), `PUBLIC_URL` (where the
//! browser reaches this app; register `{PUBLIC_URL}/onboarding/signed-in` and
//! `{PUBLIC_URL}/onboarding/consented` on the app) and `KEY_VAULT_URL` (a vault URL in
//! which `{tenant}` is replaced by the tenant id, or one vault).
//!
//! Stable ids for browser tests: `#connect` (the button), `#outcome`, `#tenants` (the
//! table; a row `#tenant-<guid>` per tenant, cells `.name`, `.state`, `.health`), and
//! `#read-secret-<guid>` (the per-tenant button); the secret page has `#secret-result`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use azure_cross_tenant::{
    Cached, ClientCertificate, ClientSecret, Onboarding, OnboardingOutcome, OnboardingRoutes,
    SignInClient, SqlRegistry, TenantCredentialProvider, TenantHealthMonitor, TenantId,
    TenantRegistry, Watched,
};
use mock_entra::{MockEntra, MockResource};

const VAULT_SCOPE: &str = "https://vault.azure.net/.default";
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
enum Vaults {
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

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = env("PORT").map(|p| p.parse()).transpose()?.unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let local = format!("http://{}", listener.local_addr()?);

    let _mock; // keeps the mock alive in mock mode
    let (credential, database, public_url, vaults): (
        Arc<dyn SignInClient>,
        String,
        String,
        Vaults,
    ) = match (
        env("AZURE_CLIENT_ID"),
        env("DATABASE_URL"),
        env("PUBLIC_URL"),
        env("KEY_VAULT_URL"),
    ) {
        (Some(client_id), Some(database), Some(public_url), Some(vault)) => {
            let credential: Arc<dyn SignInClient> = match (
                env("AZURE_CLIENT_SECRET"),
                env("AZURE_CLIENT_CERTIFICATE_PATH"),
            ) {
                (Some(secret), _) => {
                    Arc::new(Cached::new(ClientSecret::new(client_id, secret).build()?))
                }
                (None, Some(path)) => {
                    let pem = std::fs::read(path)?;
                    Arc::new(Cached::new(
                        ClientCertificate::from_pem(client_id, &pem, &pem).build()?,
                    ))
                }
                (None, None) => {
                    return Err("set AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH".into());
                }
            };
            (
                credential,
                database,
                public_url.trim_end_matches('/').to_owned(),
                Vaults::Real(vault),
            )
        }
        _ => {
            let entra = MockEntra::start().await;
            let home = entra.add_tenant("provider.example");
            let customer = entra.add_tenant("contoso.example");
            let app = entra.register_app(&home, "saas-provider");
            let secret = entra.add_secret(&app);
            entra.emit_wids(&app, true);
            entra.add_redirect_uri(&app, &format!("{local}/onboarding/signed-in"));
            entra.add_redirect_uri(&app, &format!("{local}/onboarding/consented"));
            // The admin who clicks "Connect" in the mock's browser session.
            let admin = entra.add_admin(&customer, "admin@contoso.example");
            entra.sign_in(&admin);
            eprintln!(
                "(no Azure environment set: embedded MockEntra at {}; admin@contoso.example is signed in to it)",
                entra.uri()
            );
            let credential: Arc<dyn SignInClient> = Arc::new(Cached::new(
                ClientSecret::new(app.client_id(), secret)
                    .authority_host(entra.uri())
                    .build()?,
            ));
            let vaults = Vaults::Mock {
                entra: entra.clone(),
                started: Mutex::default(),
            };
            _mock = entra;
            (credential, "sqlite::memory:".into(), local.clone(), vaults)
        }
    };

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
        registry,
        provider: health.watch(credential),
        vaults,
        http: reqwest::Client::new(),
    });
    let app = Router::new()
        .route("/", get(page))
        .route("/tenants/{tenant}/secret", post(read_secret))
        .with_state(state)
        .nest("/onboarding", onboarding_routes);
    println!("saas_provider listening at {local}/");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
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
            Some(value) if status.is_success() => Ok::<_, Box<dyn std::error::Error>>(format!(
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

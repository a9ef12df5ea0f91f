//! A SaaS provider's web app: a page listing the linked customer tenants and their
//! health, a "Connect your Azure tenant" button running the drop-in onboarding routes,
//! and a per-tenant button that reads a secret from that tenant's Key Vault through
//! `Cached` (whose errors keep each tenant's health in the registry true). The app itself
//! is in `app.rs`; this file reads the environment and serves it.
//!
//! Mock (default): `cargo run --example saas_provider --features sqlite,axum`:
//! an embedded MockEntra, SQLite in memory, a fake Key Vault per tenant. The customer
//! tenant `contoso.example` has an admin, `admin@contoso.example`, and a user who is not
//! one, `user@contoso.example`. By default the admin is signed in to the mock's browser
//! session, so "Connect" goes straight through (as `tests/saas_provider/drive.py`
//! expects); with `MOCK_PAGES=1` nobody is, and you sign in and consent on the mock's
//! pages (as the browser test, `tests/browser/`, does). It prints
//! `saas_provider listening at http://127.0.0.1:PORT/` (`PORT` env, default a free port).
//! Open it in a browser: server-rendered HTML, no JavaScript.
//!
//! Real Azure: set `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` (or
//! `AZURE_CLIENT_CERTIFICATE_PATH`, a PEM file with the certificate and its key),
//! `DATABASE_URL` (`sqlite://tenants.db` or `postgres://...`), `PUBLIC_URL` (where the
//! browser reaches this app; register `{PUBLIC_URL}/onboarding/signed-in` and
//! `{PUBLIC_URL}/onboarding/consented` on the app) and `KEY_VAULT_URL` (a vault URL in
//! which `{tenant}` is replaced by the tenant id, or one vault).
//!
//! Stable ids for browser tests: `#connect` (the button), `#outcome` (`data-outcome`
//! `ok` or `failed`, `data-reason` the `OutcomeReason` code), `#tenants` (the table; a
//! row `#tenant-<guid>` per tenant, cells `.name`, `.state`, `.health`; `#empty` when
//! there is none), and `#read-secret-<guid>` (the per-tenant button); the secret page
//! has `#secret-result`.

mod app;

use std::sync::Arc;

use azure_cross_tenant::{Cached, ClientCertificate, ClientSecret, SignInClient};

use crate::app::{Backend, BoxError, MockWorld, Vaults};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let port: u16 = env("PORT").map(|p| p.parse()).transpose()?.unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let local = format!("http://{}", listener.local_addr()?);

    let _mock; // keeps the mock alive in mock mode
    let (backend, public_url) = match (
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
            let backend = Backend {
                credential,
                database,
                vaults: Vaults::Real(vault),
            };
            (backend, public_url.trim_end_matches('/').to_owned())
        }
        _ => {
            let world = MockWorld::start(&local).await?;
            let pages = env("MOCK_PAGES").is_some_and(|v| v != "0");
            let (admin, member) = (&world.admin.upn, &world.member.upn);
            if pages {
                eprintln!(
                    "(no Azure environment set: embedded MockEntra at {}, customer tenant {}; sign in on its pages as {admin}, or as {member} who is not an admin)",
                    world.entra.uri(),
                    world.customer,
                );
            } else {
                // The admin who clicks "Connect" in the mock's browser session.
                world.entra.sign_in(&world.admin);
                eprintln!(
                    "(no Azure environment set: embedded MockEntra at {}, customer tenant {}; {admin} is signed in to it; MOCK_PAGES=1 shows its sign-in and consent pages instead)",
                    world.entra.uri(),
                    world.customer,
                );
            }
            let backend = world.backend();
            _mock = world;
            (backend, local.clone())
        }
    };

    let app = app::build(backend, &public_url).await?;
    println!("saas_provider listening at {local}/");
    axum::serve(listener, app.router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

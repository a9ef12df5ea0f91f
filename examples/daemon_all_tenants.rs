//! A daemon over every onboarded tenant: read the tenant registry, get a token in each
//! active tenant with bounded concurrency, report per tenant. One failing tenant
//! (revoked consent, throttling) never stops the others.
//!
//! Mock (default): `cargo run --example daemon_all_tenants` (five customers, one of
//! which revoked consent).
//! Real Azure: set `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` and `REGISTRY_FILE` (a JSON
//! array of tenant records: `{"tenant": "...", "display_name": "...", "state": "active"}`).

mod support;

use azure_cross_tenant::{
    Cached, ClientSecret, Clock, Error, InMemoryRegistry, JsonFileRegistry, OnboardingState,
    SystemClock, TenantRecord, TenantRegistry, for_each_active,
};
use support::{MockWorld, env};

const SCOPE: &str = "https://vault.azure.net/.default";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _mock;
    let (provider, registry): (_, Box<dyn TenantRegistry>) =
        if let (Some(id), Some(secret), Some(file)) = (
            env("AZURE_CLIENT_ID"),
            env("AZURE_CLIENT_SECRET"),
            env("REGISTRY_FILE"),
        ) {
            let provider = Cached::new(ClientSecret::new(id, secret).build()?);
            (provider, Box::new(JsonFileRegistry::open(file).await?))
        } else {
            let world = MockWorld::start().await;
            let registry = InMemoryRegistry::new();
            for (i, name) in ["Fabrikam", "Contoso", "Northwind", "Tailspin", "Woodgrove"]
                .iter()
                .enumerate()
            {
                let tenant = if i == 0 {
                    world.customer.clone()
                } else {
                    let t = world
                        .entra
                        .add_tenant(&format!("{}.example", name.to_lowercase()));
                    world.entra.consent(&t, &world.app);
                    t
                };
                if *name == "Tailspin" {
                    world.entra.revoke_consent(&tenant, &world.app); // its admin removed the app
                }
                registry
                    .upsert(TenantRecord::new(tenant, *name, OnboardingState::Active))
                    .await?;
            }
            let provider = Cached::new(
                ClientSecret::new(world.app.client_id(), &world.secret)
                    .authority_host(world.entra.uri())
                    .build()?,
            );
            _mock = world;
            (provider, Box::new(registry))
        };

    let names: std::collections::HashMap<_, _> = registry
        .list()
        .await?
        .into_iter()
        .map(|r| (r.tenant.clone(), r.display_name))
        .collect();
    let results = for_each_active(registry.as_ref(), 4, |record| {
        let provider = provider.clone();
        async move { provider.get_token(&record.tenant, &[SCOPE]).await }
    })
    .await?;

    let mut needs_consent = Vec::new();
    for (tenant, result) in &results {
        let name = names.get(tenant).map(String::as_str).unwrap_or("?");
        match result {
            Ok(token) => {
                let left = token
                    .expires_on()
                    .duration_since(SystemClock::default().now())
                    .unwrap_or_default();
                println!(
                    "ok       {name:<10} {tenant}: token valid for {} more minutes",
                    left.as_secs() / 60
                );
            }
            Err(e @ Error::NotConsented { .. }) => {
                println!(
                    "CONSENT  {name:<10} {tenant}: {}",
                    e.consent_url().unwrap_or_default()
                );
                needs_consent.push(tenant.clone());
            }
            Err(e) if e.is_retryable() => println!("RETRY    {name:<10} {tenant}: {e}"),
            Err(e) => println!("FAILED   {name:<10} {tenant}: {e}"),
        }
    }
    // Stop asking tenants that need consent until their admin acts.
    for tenant in &needs_consent {
        registry.set_state(tenant, OnboardingState::Revoked).await?;
    }
    let ok = results.iter().filter(|(_, r)| r.is_ok()).count();
    println!(
        "\n{ok} of {} active tenants served; {} marked as needing consent",
        results.len(),
        needs_consent.len()
    );
    Ok(())
}

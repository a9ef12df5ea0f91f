//! A daemon over every onboarded tenant: read the tenant registry, get a token in each
//! active tenant with bounded concurrency, report per tenant. One failing tenant
//! (revoked consent, throttling) never stops the others.
//!
//! Mock (default): `cargo run --example daemon_all_tenants` (five customers, one of
//! which revoked consent).
//! Real Azure: set `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` and `REGISTRY_FILE` (a JSON
//! array of tenant records: `{"tenant": "...", "display_name": "...", "state": "active"}`).
//!
//! The registry here is a JSON file, rewritten atomically on each change: enough for an
//! example or a handful of tenants. A real service implements `TenantRegistry` on its
//! own database, next to its customer accounts (`link` in one transaction).

mod support;

use std::path::PathBuf;

use azure_cross_tenant::{
    Cached, ClientSecret, Clock, Error, InMemoryRegistry, LinkError, OnboardingState, Relink,
    SystemClock, TenantId, TenantRecord, TenantRegistry, decide_link, for_each_active,
};
use support::{MockWorld, env};

const SCOPE: &str = "https://vault.azure.net/.default";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _mock;
    let mut scratch_file = None;
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
            let path = std::env::temp_dir()
                .join(format!("daemon-all-tenants-{}.json", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let registry = JsonFileRegistry::open(&path).await?;
            scratch_file = Some(path);
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
                let account = format!("account-{}", name.to_lowercase());
                let record = TenantRecord::new(tenant, *name, OnboardingState::Active);
                registry.link(&account, record, Relink::Refuse).await?;
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
    if let Some(path) = scratch_file {
        // The marks survive a restart: read the file back.
        let reopened = JsonFileRegistry::open(&path).await?;
        let revoked = reopened
            .list()
            .await?
            .iter()
            .filter(|r| r.state == OnboardingState::Revoked)
            .count();
        assert_eq!(
            revoked,
            needs_consent.len(),
            "the registry file keeps the marks"
        );
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

/// A registry in a JSON file (an array of [`TenantRecord`]), rewritten atomically (temp
/// file, then rename) on every change.
#[derive(Debug)]
struct JsonFileRegistry {
    path: PathBuf,
    memory: InMemoryRegistry,
    /// One writer at a time: a link's check and write, and each rewrite, never interleave.
    write: tokio::sync::Mutex<()>,
}

impl JsonFileRegistry {
    /// Opens `path`, or starts empty if it does not exist.
    async fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        let memory = InMemoryRegistry::new();
        match tokio::fs::read(&path).await {
            Ok(bytes) => {
                let records: Vec<TenantRecord> = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::InvalidConfiguration(format!(
                        "tenant registry {} is not valid JSON: {e}",
                        path.display()
                    ))
                })?;
                for r in records {
                    memory.upsert(r).await?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::InvalidConfiguration(format!(
                    "cannot read tenant registry {}: {e}",
                    path.display()
                )));
            }
        }
        Ok(Self {
            path,
            memory,
            write: tokio::sync::Mutex::new(()),
        })
    }

    async fn save(&self) -> Result<(), Error> {
        let records = self.memory.list().await?;
        let json = serde_json::to_vec_pretty(&records)
            .map_err(|e| Error::InvalidConfiguration(format!("cannot encode registry: {e}")))?;
        let tmp = self.path.with_extension("json.tmp");
        let io = |e: std::io::Error| {
            Error::InvalidConfiguration(format!(
                "cannot write tenant registry {}: {e}",
                self.path.display()
            ))
        };
        tokio::fs::write(&tmp, json).await.map_err(io)?;
        tokio::fs::rename(&tmp, &self.path).await.map_err(io)
    }
}

#[async_trait::async_trait]
impl TenantRegistry for JsonFileRegistry {
    async fn list(&self) -> Result<Vec<TenantRecord>, Error> {
        self.memory.list().await
    }

    async fn get(&self, tenant: &TenantId) -> Result<Option<TenantRecord>, Error> {
        self.memory.get(tenant).await
    }

    async fn upsert(&self, record: TenantRecord) -> Result<(), Error> {
        let _writer = self.write.lock().await;
        self.memory.upsert(record).await?;
        self.save().await
    }

    async fn link(
        &self,
        account: &str,
        record: TenantRecord,
        relink: Relink,
    ) -> Result<TenantRecord, LinkError> {
        let _writer = self.write.lock().await;
        let existing = self.memory.get(&record.tenant).await?;
        let record = decide_link(account, existing.as_ref(), record, relink)?;
        self.memory.upsert(record.clone()).await?;
        self.save().await?;
        Ok(record)
    }
}

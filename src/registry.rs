//! The provider's list of customer tenants. Entra cannot list the tenants that consented
//! to an app, so the provider keeps that list: [`TenantRegistry`], kept in memory or in a
//! JSON file, and [`for_each_active`] to drive a daemon over every active tenant.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::RwLock;
use std::task::Poll;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::tenant::TenantId;

/// Where a tenant stands in onboarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnboardingState {
    /// The admin consent URL was sent; no token confirmed it yet.
    Pending,
    /// Consent confirmed; the daemon serves it.
    Active,
    /// Consent revoked or the customer offboarded; skipped.
    Revoked,
}

/// One customer tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TenantRecord {
    /// The tenant.
    pub tenant: TenantId,
    /// A name for people.
    pub display_name: String,
    /// Where it stands.
    pub state: OnboardingState,
    /// The app's service principal object id there (the `oid` its tokens must carry).
    #[serde(default)]
    pub service_principal_object_id: Option<String>,
    /// Scopes the provider may ask in this tenant (empty: any).
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
}

impl TenantRecord {
    /// A record in state `state`.
    pub fn new(tenant: TenantId, display_name: impl Into<String>, state: OnboardingState) -> Self {
        Self {
            tenant,
            display_name: display_name.into(),
            state,
            service_principal_object_id: None,
            allowed_scopes: Vec::new(),
        }
    }

    /// Whether `scope` may be asked in this tenant.
    pub fn allows(&self, scope: &str) -> bool {
        self.allowed_scopes.is_empty() || self.allowed_scopes.iter().any(|s| s == scope)
    }
}

/// Stores the provider's customer tenants.
#[async_trait::async_trait]
pub trait TenantRegistry: Send + Sync + fmt::Debug {
    /// Every tenant, in a stable order.
    async fn list(&self) -> Result<Vec<TenantRecord>, Error>;
    /// One tenant, if known.
    async fn get(&self, tenant: &TenantId) -> Result<Option<TenantRecord>, Error>;
    /// Adds or replaces a tenant.
    async fn upsert(&self, record: TenantRecord) -> Result<(), Error>;
    /// Sets a known tenant's state; returns false if the tenant is unknown.
    async fn set_state(&self, tenant: &TenantId, state: OnboardingState) -> Result<bool, Error> {
        match self.get(tenant).await? {
            Some(mut record) => {
                record.state = state;
                self.upsert(record).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// A registry in memory.
#[derive(Debug, Default)]
pub struct InMemoryRegistry {
    records: RwLock<BTreeMap<TenantId, TenantRecord>>,
}

impl InMemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl TenantRegistry for InMemoryRegistry {
    async fn list(&self) -> Result<Vec<TenantRecord>, Error> {
        let records = self.records.read().unwrap_or_else(|p| p.into_inner());
        Ok(records.values().cloned().collect())
    }

    async fn get(&self, tenant: &TenantId) -> Result<Option<TenantRecord>, Error> {
        let records = self.records.read().unwrap_or_else(|p| p.into_inner());
        Ok(records.get(tenant).cloned())
    }

    async fn upsert(&self, record: TenantRecord) -> Result<(), Error> {
        let mut records = self.records.write().unwrap_or_else(|p| p.into_inner());
        records.insert(record.tenant.clone(), record);
        Ok(())
    }
}

/// A registry in a JSON file (an array of [`TenantRecord`]), rewritten atomically (temp
/// file, then rename) on every change. For small fleets and examples; use a database
/// behind [`TenantRegistry`] for more.
#[derive(Debug)]
pub struct JsonFileRegistry {
    path: PathBuf,
    memory: InMemoryRegistry,
    /// Serializes writers so two upserts never interleave their renames.
    write: tokio::sync::Mutex<()>,
}

impl JsonFileRegistry {
    /// Opens `path`, or starts empty if it does not exist.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
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
}

/// Runs `work` for every active tenant, at most `concurrency` at a time, and returns each
/// tenant's result, ordered by tenant: one failing tenant (revoked consent, throttling) never stops the
/// others.
///
/// ```
/// use azure_cross_tenant::{InMemoryRegistry, OnboardingState, TenantRecord, TenantRegistry, for_each_active};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), azure_cross_tenant::Error> {
/// let registry = InMemoryRegistry::new();
/// registry.upsert(TenantRecord::new("contoso.com".parse()?, "Contoso", OnboardingState::Active)).await?;
/// registry.upsert(TenantRecord::new("fabrikam.com".parse()?, "Fabrikam", OnboardingState::Revoked)).await?;
/// let results = for_each_active(&registry, 8, |record| async move {
///     Ok::<_, azure_cross_tenant::Error>(record.display_name.len())
/// })
/// .await?;
/// assert_eq!(results.len(), 1);
/// # Ok(()) }
/// ```
pub async fn for_each_active<R, F, Fut, T>(
    registry: &R,
    concurrency: usize,
    work: F,
) -> Result<Vec<(TenantId, Result<T, Error>)>, Error>
where
    R: TenantRegistry + ?Sized,
    F: Fn(TenantRecord) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let active: Vec<TenantRecord> = registry
        .list()
        .await?
        .into_iter()
        .filter(|r| r.state == OnboardingState::Active)
        .collect();
    let concurrency = concurrency.max(1);
    let mut pending = active.into_iter();
    let mut running: Vec<(TenantId, Pin<Box<Fut>>)> = Vec::new();
    let mut done = Vec::new();
    std::future::poll_fn(|cx| {
        loop {
            while running.len() < concurrency {
                match pending.next() {
                    Some(record) => {
                        let tenant = record.tenant.clone();
                        running.push((tenant, Box::pin(work(record))));
                    }
                    None => break,
                }
            }
            let mut progressed = false;
            let mut i = 0;
            while i < running.len() {
                if let Poll::Ready(result) = running[i].1.as_mut().poll(cx) {
                    let (tenant, _) = running.swap_remove(i);
                    if let Err(e) = &result {
                        tracing::warn!(tenant = %tenant, error = %e, "tenant failed; continuing with the others");
                    }
                    done.push((tenant, result));
                    progressed = true;
                } else {
                    i += 1;
                }
            }
            if running.is_empty() && pending.len() == 0 {
                return Poll::Ready(());
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    })
    .await;
    done.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Work that finishes at once: every batch completes in one poll, the case that used
    /// to end the loop before the remaining tenants were started.
    #[tokio::test]
    async fn every_active_tenant_is_served_when_work_finishes_immediately() {
        let registry = InMemoryRegistry::new();
        for i in 0..7 {
            let t: TenantId = format!("t{i}.example").parse().unwrap();
            registry
                .upsert(TenantRecord::new(
                    t,
                    format!("T{i}"),
                    OnboardingState::Active,
                ))
                .await
                .unwrap();
        }
        for concurrency in [1, 2, 3, 10] {
            let results = for_each_active(&registry, concurrency, |r| async move {
                Ok::<_, Error>(r.display_name)
            })
            .await
            .unwrap();
            assert_eq!(results.len(), 7, "concurrency {concurrency}");
        }
    }
}

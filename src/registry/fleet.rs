//! Driving work over every active tenant: [`for_each_active`], and
//! [`TenantHealthMonitor::for_each_active`], whose [`FleetReport`] also says which tenants
//! changed condition.

use std::future::Future;

use futures_util::StreamExt as _;

use super::TenantRegistry;
use super::{OnboardingState, TenantCondition, TenantHealth, TenantHealthMonitor, TenantRecord};
use crate::error::Error;
use crate::tenant::TenantId;

/// How a round over the tenants runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoundOptions {
    /// At most this many tenants' work at a time (0 counts as 1).
    pub concurrency: usize,
    /// Whether tenants marked [`TenantCondition::NeedsConsent`] are served too (default
    /// false: they are skipped until their admin consents again, which re-links them, or
    /// a round that includes them finds them working).
    pub include_needing_consent: bool,
}

impl RoundOptions {
    /// `concurrency` tenants at a time, skipping tenants that need consent.
    pub fn new(concurrency: usize) -> Self {
        Self {
            concurrency,
            include_needing_consent: false,
        }
    }

    /// Serves tenants marked as needing consent too (say, once an hour, to notice a
    /// consent granted outside the onboarding).
    pub fn include_needing_consent(mut self) -> Self {
        self.include_needing_consent = true;
        self
    }
}

/// One tenant whose condition changed: what the registry held before and holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthChange {
    /// The tenant.
    pub tenant: TenantId,
    /// Its condition before (`None`: healthy).
    pub before: Option<TenantCondition>,
    /// Its condition now (`None`: healthy again).
    pub after: Option<TenantCondition>,
    /// The health written (`None` when cleared).
    pub health: Option<TenantHealth>,
}

/// What a round over the tenants did.
#[derive(Debug)]
#[non_exhaustive]
pub struct FleetReport<T> {
    /// Each tenant served and its result, ordered by tenant.
    pub results: Vec<(TenantId, Result<T, Error>)>,
    /// Active tenants not served, and why (their condition), ordered by tenant.
    pub skipped: Vec<(TenantId, TenantCondition)>,
    /// Tenants whose condition changed during the round (by this round's results, or by
    /// any other call reported to the same monitor meanwhile), in the order written.
    pub changed: Vec<HealthChange>,
}

/// Runs `work` for every active tenant, at most `concurrency` at a time, and returns each
/// tenant's result, ordered by tenant: one failing tenant (revoked consent, throttling)
/// never stops the others. Tenants whose health says they need consent
/// ([`TenantCondition::NeedsConsent`]) are skipped: asking them again only fails until
/// their admin acts. [`TenantHealthMonitor::for_each_active`] also records each result's
/// health and reports what changed.
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
    let records = registry.list().await?;
    let (serve, _) = partition(records, RoundOptions::new(concurrency));
    Ok(run(serve, concurrency, &work, None).await)
}

impl TenantHealthMonitor {
    /// Runs `work` for every active tenant of the monitor's registry (skipping those that
    /// need consent unless `options` include them), records each result's health (one
    /// write per tenant whose condition changed), and reports the results, the tenants
    /// skipped and what changed.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use azure_cross_tenant::{InMemoryRegistry, RoundOptions, TenantHealthMonitor};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), azure_cross_tenant::Error> {
    /// let health = TenantHealthMonitor::new(Arc::new(InMemoryRegistry::new()));
    /// let report = health
    ///     .for_each_active(RoundOptions::new(8), |record| async move {
    ///         Ok::<_, azure_cross_tenant::Error>(record.display_name)
    ///     })
    ///     .await?;
    /// for change in &report.changed {
    ///     println!("{}: {:?} -> {:?}", change.tenant, change.before, change.after);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn for_each_active<F, Fut, T>(
        &self,
        options: RoundOptions,
        work: F,
    ) -> Result<FleetReport<T>, Error>
    where
        F: Fn(TenantRecord) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mark = self.change_mark();
        let records = self.inner.registry.list().await?;
        self.seed(&records);
        let (serve, skipped) = partition(records, options);
        let results = run(serve, options.concurrency, &work, Some(self)).await;
        Ok(FleetReport {
            results,
            skipped,
            changed: self.changes_since(mark),
        })
    }
}

type Skipped = Vec<(TenantId, TenantCondition)>;

/// The active records to serve, and the active ones skipped for their condition.
fn partition(records: Vec<TenantRecord>, options: RoundOptions) -> (Vec<TenantRecord>, Skipped) {
    let mut serve = Vec::new();
    let mut skipped = Vec::new();
    for record in records {
        if record.state != OnboardingState::Active {
            continue;
        }
        match record.condition() {
            Some(c @ TenantCondition::NeedsConsent) if !options.include_needing_consent => {
                skipped.push((record.tenant, c));
            }
            _ => serve.push(record),
        }
    }
    skipped.sort_by(|a, b| a.0.cmp(&b.0));
    (serve, skipped)
}

async fn run<F, Fut, T>(
    records: Vec<TenantRecord>,
    concurrency: usize,
    work: &F,
    monitor: Option<&TenantHealthMonitor>,
) -> Vec<(TenantId, Result<T, Error>)>
where
    F: Fn(TenantRecord) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    // `map` is lazy: a tenant's work starts only when a slot frees up.
    let jobs = records.into_iter().map(|record| {
        let tenant = record.tenant.clone();
        let job = work(record);
        async move {
            let result = job.await;
            if let Err(e) = &result {
                tracing::warn!(tenant = %tenant, error = %e, "tenant failed; continuing with the others");
            }
            if let Some(monitor) = monitor {
                monitor.report(&tenant, result.as_ref()).await;
            }
            (tenant, result)
        }
    });
    let mut done: Vec<_> = futures_util::stream::iter(jobs)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    done.sort_by(|a, b| a.0.cmp(&b.0));
    done
}

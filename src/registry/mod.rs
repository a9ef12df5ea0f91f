//! The provider's list of customer tenants. Entra cannot list the tenants that consented
//! to an app, so the provider keeps that list: the [`TenantRegistry`] trait, with
//! [`InMemoryRegistry`] (tests, examples) and [`SqlRegistry`] (SQLite or PostgreSQL,
//! features `sqlite`/`postgres`) in this crate; [`for_each_active`] to drive a daemon over
//! every active tenant; and [`TenantHealthMonitor`], which keeps each record's health
//! true from the token errors the tenant causes.
//!
//! A tenant belongs to at most one of the provider's customer accounts.
//! [`TenantRegistry::link`] refuses to give a tenant to a second account unless the caller
//! asks for it with [`Relink::MoveToThisAccount`]: an onboarding that proved a *different*
//! account's admin signed in to an already linked tenant is then a person's decision,
//! never a silent takeover.

mod fleet;
mod health;
mod record;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use crate::error::Error;
use crate::onboarding::OnboardingStore;
use crate::tenant::TenantId;

pub use fleet::{FleetReport, HealthChange, RoundOptions, for_each_active};
pub use health::{TenantHealthMonitor, Watched};
pub use record::{OnboardingState, TenantCondition, TenantHealth, TenantRecord};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sql::SqlRegistry;

/// Whether [`TenantRegistry::link`] may move a tenant that another account holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Relink {
    /// Refuse with [`LinkError::LinkedElsewhere`] (the default).
    #[default]
    Refuse,
    /// Move the tenant to this account. Only on an explicit decision (support case, a
    /// customer merging accounts), never as the automatic answer to `LinkedElsewhere`.
    MoveToThisAccount,
}

/// Why [`TenantRegistry::link`] did not link a tenant.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The tenant belongs to another account already. Nothing was changed. If the move is
    /// intended, have a person confirm it and link again with
    /// [`Relink::MoveToThisAccount`].
    #[error(
        "tenant {tenant} is already linked to account {linked_account:?}; refused to link it to account {requested_account:?} (link again with Relink::MoveToThisAccount only if a person confirmed the move)"
    )]
    LinkedElsewhere {
        /// The tenant.
        tenant: TenantId,
        /// The account holding it.
        linked_account: String,
        /// The account that asked for it.
        requested_account: String,
    },
    /// The record names its tenant by a domain name, not its GUID. Nothing was changed.
    /// A tenant is linked only by the GUID an onboarding proved (the `id_token`'s `tid`,
    /// [`OnboardedTenant::tenant`](crate::OnboardedTenant::tenant)): a domain can be
    /// renamed, removed, or verified later by another tenant.
    #[error(
        "tenant {tenant} is a domain name; link a tenant by its GUID (the tid the onboarding proved), as a domain can move to another tenant"
    )]
    TenantNotGuid {
        /// The tenant as given.
        tenant: TenantId,
    },
    /// The registry itself failed.
    #[error(transparent)]
    Registry(#[from] Error),
}

/// Stores the provider's customer tenants.
#[async_trait::async_trait]
pub trait TenantRegistry: Send + Sync + fmt::Debug {
    /// Every tenant, in a stable order.
    async fn list(&self) -> Result<Vec<TenantRecord>, Error>;
    /// One tenant, if known.
    async fn get(&self, tenant: &TenantId) -> Result<Option<TenantRecord>, Error>;
    /// Adds or replaces a tenant, whatever account held it (for administration; onboarding
    /// uses [`link`](Self::link)).
    async fn upsert(&self, record: TenantRecord) -> Result<(), Error>;
    /// Stores `record` as linked to `account`, atomically with respect to other links of
    /// the same tenant, by the rule of [`decide_link`]: the tenant must be a GUID
    /// ([`LinkError::TenantNotGuid`]); if another account holds the tenant, refuses with
    /// [`LinkError::LinkedElsewhere`] unless `relink` is [`Relink::MoveToThisAccount`];
    /// linking a tenant again to the account that holds it updates the record but keeps
    /// its `allowed_scopes`, and its state if `Revoked` or `Active` (a suspension is the
    /// operator's to lift; a `Pending` record becomes `Active` only when `record` is).
    /// Returns the stored record.
    ///
    /// Implementations must check and write in one step (a transaction, a conditional
    /// write, a lock): two onboardings racing for one tenant must not both succeed.
    async fn link(
        &self,
        account: &str,
        record: TenantRecord,
        relink: Relink,
    ) -> Result<TenantRecord, LinkError>;
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

    /// Records what the tenant's last token error said about it (`None`: healthy again),
    /// leaving every other field as it is; returns false if the tenant is unknown.
    /// [`TenantHealthMonitor`] calls it once per change of a tenant's condition.
    ///
    /// The default reads the record and writes it back whole; a registry on a database
    /// should update the health alone, so that it cannot undo a concurrent
    /// [`link`](Self::link) or [`set_state`](Self::set_state).
    async fn set_health(
        &self,
        tenant: &TenantId,
        health: Option<TenantHealth>,
    ) -> Result<bool, Error> {
        match self.get(tenant).await? {
            Some(mut record) => {
                record.health = health;
                self.upsert(record).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The onboarding store on the same database, when the registry lives where every
    /// replica shares it: the drop-in onboarding routes then keep their pending sign-ins
    /// and spent states there too. `None` (the default) for registries of one process.
    fn onboarding_store(&self) -> Option<Arc<dyn OnboardingStore>> {
        None
    }
}

/// The link decision every registry makes: `record` as it should be stored for
/// `account`, or why not, given what the registry holds for the tenant now. Public so
/// your own [`TenantRegistry`] applies the same rule inside its transaction.
///
/// - The tenant must be a GUID, else [`LinkError::TenantNotGuid`].
/// - Held by another account: [`LinkError::LinkedElsewhere`], unless `relink` is
///   [`Relink::MoveToThisAccount`]; then `record` is stored as given.
/// - Held by `account` already (a second onboarding of the same tenant): `record`'s
///   display name, service principal and `linked_by` are taken, but the stored
///   `allowed_scopes` are kept, and a stored `Revoked` or `Active` state too, so
///   re-running onboarding neither widens the scopes an operator narrowed nor reactivates
///   a tenant an operator revoked (use [`TenantRegistry::set_state`] for that); a
///   `Pending` record becomes `Active` when an onboarding that proved an admin by role
///   links it.
///
/// ```
/// use azure_cross_tenant::{LinkError, OnboardingState, Relink, TenantRecord, decide_link};
///
/// let t = "72f988bf-86f1-41af-91ab-2d7cd011db47".parse()?;
/// let held = decide_link("acct-1", None, TenantRecord::new(t, "Contoso", OnboardingState::Active), Relink::Refuse)?;
/// let again = decide_link("acct-2", Some(&held), held.clone(), Relink::Refuse);
/// assert!(matches!(again, Err(LinkError::LinkedElsewhere { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decide_link(
    account: &str,
    existing: Option<&TenantRecord>,
    mut record: TenantRecord,
    relink: Relink,
) -> Result<TenantRecord, LinkError> {
    if !record.tenant.is_guid() {
        return Err(LinkError::TenantNotGuid {
            tenant: record.tenant,
        });
    }
    if let Some(linked) = existing.and_then(|e| e.account.as_deref())
        && linked != account
        && relink == Relink::Refuse
    {
        return Err(LinkError::LinkedElsewhere {
            tenant: record.tenant,
            linked_account: linked.to_owned(),
            requested_account: account.to_owned(),
        });
    }
    if let Some(previous) = existing.and_then(|e| e.account.as_deref())
        && previous != account
    {
        tracing::warn!(tenant = %record.tenant, from = previous, to = account, "tenant moved to another account on request");
    }
    if let Some(held) = existing.filter(|e| e.account.as_deref() == Some(account)) {
        // The operator's decisions stand: narrowed scopes, a suspension, an activation. A
        // `Pending` record moves on to `Active` when an onboarding found that.
        record.state = match (held.state, record.state) {
            (OnboardingState::Revoked, _) => OnboardingState::Revoked,
            (OnboardingState::Active, _) | (_, OnboardingState::Active) => OnboardingState::Active,
            (_, found) => found,
        };
        record.allowed_scopes = held.allowed_scopes.clone();
    }
    record.account = Some(account.to_owned());
    Ok(record)
}

/// A registry in memory (tests, examples, or a cache in front of your database).
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

    async fn set_health(
        &self,
        tenant: &TenantId,
        health: Option<TenantHealth>,
    ) -> Result<bool, Error> {
        let mut records = self.records.write().unwrap_or_else(|p| p.into_inner());
        match records.get_mut(tenant) {
            Some(record) => {
                record.health = health;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn link(
        &self,
        account: &str,
        record: TenantRecord,
        relink: Relink,
    ) -> Result<TenantRecord, LinkError> {
        let mut records = self.records.write().unwrap_or_else(|p| p.into_inner());
        let record = decide_link(account, records.get(&record.tenant), record, relink)?;
        records.insert(record.tenant.clone(), record.clone());
        Ok(record)
    }
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
        for concurrency in [0, 1, 2, 3, 10] {
            let results = for_each_active(&registry, concurrency, |r| async move {
                Ok::<_, Error>(r.display_name)
            })
            .await
            .unwrap();
            assert_eq!(results.len(), 7, "concurrency {concurrency}");
        }
    }

    #[tokio::test]
    async fn a_tenant_linked_to_one_account_is_refused_to_another_unless_moved_explicitly() {
        let registry = InMemoryRegistry::new();
        let t: TenantId = "72f988bf-86f1-41af-91ab-2d7cd011db47".parse().unwrap();
        let record = TenantRecord::new(t.clone(), "Contoso", OnboardingState::Active);
        registry
            .link("acct-x", record.clone(), Relink::Refuse)
            .await
            .unwrap();
        // The same account again: an update.
        registry
            .link("acct-x", record.clone(), Relink::Refuse)
            .await
            .unwrap();
        let err = registry
            .link("acct-y", record.clone(), Relink::Refuse)
            .await
            .unwrap_err();
        match &err {
            LinkError::LinkedElsewhere {
                tenant,
                linked_account,
                requested_account,
            } => {
                assert_eq!(tenant, &t);
                assert_eq!(linked_account, "acct-x");
                assert_eq!(requested_account, "acct-y");
            }
            other => panic!("{other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains("acct-x") && text.contains("acct-y"), "{text}");
        let held = registry.get(&t).await.unwrap().unwrap();
        assert_eq!(held.account.as_deref(), Some("acct-x"));

        let moved = registry
            .link("acct-y", record, Relink::MoveToThisAccount)
            .await
            .unwrap();
        assert_eq!(moved.account.as_deref(), Some("acct-y"));
    }

    #[test]
    fn relinking_to_the_same_account_keeps_scopes_and_a_suspension_and_a_move_takes_the_record() {
        let t: TenantId = "72f988bf-86f1-41af-91ab-2d7cd011db47".parse().unwrap();
        let mut held = TenantRecord::new(t.clone(), "Contoso", OnboardingState::Revoked);
        held.account = Some("acct-x".into());
        held.allowed_scopes = vec!["https://vault.azure.net/.default".into()];
        let mut again = TenantRecord::new(t, "Contoso Ltd", OnboardingState::Active);
        again.linked_by = Some("admin-2".into());
        let stored = decide_link("acct-x", Some(&held), again.clone(), Relink::Refuse).unwrap();
        assert_eq!(stored.state, OnboardingState::Revoked);
        assert_eq!(stored.allowed_scopes, held.allowed_scopes);
        assert_eq!(stored.display_name, "Contoso Ltd");
        assert_eq!(stored.linked_by.as_deref(), Some("admin-2"));
        let moved = decide_link(
            "acct-y",
            Some(&held),
            again.clone(),
            Relink::MoveToThisAccount,
        )
        .unwrap();
        assert_eq!(moved.state, OnboardingState::Active);
        assert!(moved.allowed_scopes.is_empty());

        // Linked as `Pending` when the onboarding began: the finished onboarding activates it.
        held.state = OnboardingState::Pending;
        let finished = decide_link("acct-x", Some(&held), again, Relink::Refuse).unwrap();
        assert_eq!(finished.state, OnboardingState::Active);
        assert_eq!(finished.allowed_scopes, held.allowed_scopes);
    }

    #[test]
    fn a_domain_name_tenant_is_never_linked() {
        let t: TenantId = "contoso.com".parse().unwrap();
        let record = TenantRecord::new(t, "Contoso", OnboardingState::Active);
        let err = decide_link("acct-x", None, record, Relink::Refuse).unwrap_err();
        assert!(matches!(err, LinkError::TenantNotGuid { .. }), "{err:?}");
        assert!(err.to_string().contains("GUID"), "{err}");
    }
}

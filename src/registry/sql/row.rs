//! A [`TenantRecord`] to columns and back, the same for both databases.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::{database, unreadable};
use crate::consent::AdminProof;
use crate::error::Error;
use crate::registry::{OnboardingState, TenantCondition, TenantHealth, TenantRecord};

/// Reading one column of a row, whichever database it came from.
pub(super) trait Get {
    fn text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
}

macro_rules! impl_get {
    ($row:ty) => {
        impl Get for $row {
            fn text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
        }
    };
}
#[cfg(feature = "sqlite")]
impl_get!(sqlx::sqlite::SqliteRow);
#[cfg(feature = "postgres")]
impl_get!(sqlx::postgres::PgRow);

/// A record's columns, owned, ready to bind.
pub(super) struct Columns {
    pub(super) tenant: String,
    pub(super) display_name: String,
    pub(super) state: &'static str,
    pub(super) account: Option<String>,
    pub(super) service_principal_object_id: Option<String>,
    pub(super) linked_by: Option<String>,
    pub(super) linked_at: Option<i64>,
    pub(super) proof: Option<&'static str>,
    pub(super) proof_role: Option<String>,
    pub(super) allowed_scopes: String,
    pub(super) health_condition: Option<&'static str>,
    pub(super) health_since: Option<i64>,
    pub(super) health_error: Option<String>,
    pub(super) health_code: Option<i64>,
    pub(super) health_trace_id: Option<String>,
}

/// The health columns alone.
pub(super) struct HealthColumns {
    pub(super) condition: Option<&'static str>,
    pub(super) since: Option<i64>,
    pub(super) error: Option<String>,
    pub(super) code: Option<i64>,
    pub(super) trace_id: Option<String>,
}

impl HealthColumns {
    pub(super) fn of(health: Option<&TenantHealth>) -> Self {
        Self {
            condition: health.map(|h| h.condition.as_str()),
            since: health.map(|h| secs(h.since)),
            error: health.map(|h| h.error.clone()),
            code: health.and_then(|h| h.code).map(i64::from),
            trace_id: health.and_then(|h| h.trace_id.clone()),
        }
    }
}

fn secs(t: SystemTime) -> i64 {
    i64::try_from(crate::clock::unix_secs(t)).unwrap_or(i64::MAX)
}

impl Columns {
    pub(super) fn of(r: &TenantRecord) -> Result<Self, Error> {
        let (proof, proof_role) = match &r.proof {
            None => (None, None),
            Some(AdminProof::DirectoryRole(role)) => (Some("directory_role"), Some(role.clone())),
            Some(AdminProof::FreshConsent) => (Some("fresh_consent"), None),
        };
        let allowed_scopes = serde_json::to_string(&r.allowed_scopes)
            .map_err(|_| Error::Internal("a list of strings did not encode as JSON"))?;
        let h = HealthColumns::of(r.health.as_ref());
        Ok(Self {
            tenant: r.tenant.as_str().to_owned(),
            display_name: r.display_name.clone(),
            state: r.state.as_str(),
            account: r.account.clone(),
            service_principal_object_id: r.service_principal_object_id.clone(),
            linked_by: r.linked_by.clone(),
            linked_at: r.linked_at.map(secs),
            proof,
            proof_role,
            allowed_scopes,
            health_condition: h.condition,
            health_since: h.since,
            health_error: h.error,
            health_code: h.code,
            health_trace_id: h.trace_id,
        })
    }
}

fn time(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// The record a row holds; a value this version cannot read is an error, never a panic.
pub(super) fn record_from(row: &dyn Get) -> Result<TenantRecord, Error> {
    let col = |e| database("read a tenant's columns in the tenant registry", e);
    let text = |c: &str| row.text(c).map_err(col);
    let int = |c: &str| row.int(c).map_err(col);
    let required = |c: &str| -> Result<String, Error> {
        text(c)?.ok_or_else(|| unreadable(format!("column {c} is NULL")))
    };

    let tenant_text = required("tenant")?;
    let tenant = tenant_text
        .parse()
        .map_err(|_| unreadable("a stored tenant id is not a tenant id".into()))?;
    let state_text = required("state")?;
    let state = OnboardingState::from_name(&state_text).ok_or_else(|| {
        unreadable(format!(
            "tenant {tenant_text} has an unknown state {:?}",
            crate::error::echo(&state_text)
        ))
    })?;
    let proof = match text("proof")?.as_deref() {
        None => None,
        Some("directory_role") => Some(AdminProof::DirectoryRole(
            text("proof_role")?.unwrap_or_default(),
        )),
        Some("fresh_consent") => Some(AdminProof::FreshConsent),
        Some(other) => {
            return Err(unreadable(format!(
                "tenant {tenant_text} has an unknown proof {:?}",
                crate::error::echo(other)
            )));
        }
    };
    let allowed_scopes: Vec<String> =
        serde_json::from_str(&required("allowed_scopes")?).map_err(|_| {
            unreadable(format!(
                "tenant {tenant_text}: allowed_scopes is not a JSON list of strings"
            ))
        })?;
    let health = match text("health_condition")? {
        None => None,
        Some(name) => {
            let condition = TenantCondition::from_name(&name).ok_or_else(|| {
                unreadable(format!(
                    "tenant {tenant_text} has an unknown health {:?}",
                    crate::error::echo(&name)
                ))
            })?;
            Some(TenantHealth::stored(
                condition,
                time(int("health_since")?.unwrap_or(0)),
                text("health_error")?.unwrap_or_default(),
                int("health_code")?.and_then(|c| u32::try_from(c).ok()),
                text("health_trace_id")?,
            ))
        }
    };
    let mut record = TenantRecord::new(tenant, required("display_name")?, state);
    record.account = text("account")?;
    record.service_principal_object_id = text("service_principal_object_id")?;
    record.linked_by = text("linked_by")?;
    record.linked_at = int("linked_at")?.map(time);
    record.proof = proof;
    record.allowed_scopes = allowed_scopes;
    record.health = health;
    Ok(record)
}

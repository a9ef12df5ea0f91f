//! [`TenantRecord`]: what the provider keeps about one customer tenant, and
//! [`TenantHealth`]: what the tenant's last token error said about it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::consent::AdminProof;
use crate::error::Error;
use crate::tenant::TenantId;

/// Longest error text kept on a record (one line of [`Error`]'s `Display`).
const MAX_HEALTH_TEXT: usize = 1024;

/// Where a tenant stands in onboarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnboardingState {
    /// Onboarding started; consent not confirmed yet.
    Pending,
    /// Consent confirmed; the daemon serves it.
    Active,
    /// Consent revoked or the customer offboarded; skipped.
    Revoked,
}

impl OnboardingState {
    /// The name stored in databases and JSON (`pending`, `active`, `revoked`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Revoked => "revoked",
        }
    }

    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "pending" => Some(Self::Pending),
            "active" => Some(Self::Active),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
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
    /// The provider's own customer account this tenant belongs to (set by
    /// [`TenantRegistry::link`](crate::TenantRegistry::link)).
    #[serde(default)]
    pub account: Option<String>,
    /// The app's service principal object id there (the `oid` its tokens must carry).
    #[serde(default)]
    pub service_principal_object_id: Option<String>,
    /// The object id of the admin whose signed-in consent linked the tenant.
    #[serde(default)]
    pub linked_by: Option<String>,
    /// When the onboarding that linked it confirmed consent.
    #[serde(default, with = "unix_secs_opt")]
    pub linked_at: Option<SystemTime>,
    /// What proved that an admin took part in that onboarding (for audit).
    #[serde(default)]
    pub proof: Option<AdminProof>,
    /// Scopes the provider may ask in this tenant (empty: any).
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
    /// What the tenant's last token error said about it, until a token succeeds again
    /// (`None`: no such error since; see
    /// [`TenantHealthMonitor`](crate::TenantHealthMonitor)).
    #[serde(default)]
    pub health: Option<TenantHealth>,
}

impl TenantRecord {
    /// A record in state `state`, linked to no account.
    pub fn new(tenant: TenantId, display_name: impl Into<String>, state: OnboardingState) -> Self {
        Self {
            tenant,
            display_name: display_name.into(),
            state,
            account: None,
            service_principal_object_id: None,
            linked_by: None,
            linked_at: None,
            proof: None,
            allowed_scopes: Vec::new(),
            health: None,
        }
    }

    /// Whether `scope` may be asked in this tenant.
    pub fn allows(&self, scope: &str) -> bool {
        self.allowed_scopes.is_empty() || self.allowed_scopes.iter().any(|s| s == scope)
    }

    /// The tenant's condition: `None` when healthy (no tenant-level error since its last
    /// success).
    pub fn condition(&self) -> Option<TenantCondition> {
        self.health.as_ref().map(|h| h.condition)
    }
}

/// What a token error said about a tenant: something only the customer can fix, which
/// retrying does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TenantCondition {
    /// The app has no service principal there (AADSTS700016, 7000229): never consented,
    /// or the consent was revoked (Entra does not tell the two apart). The customer's
    /// admin must consent again; [`for_each_active`](crate::for_each_active) skips such
    /// tenants.
    NeedsConsent,
    /// The tenant does not exist (AADSTS90002, 900023): deleted, or the id is wrong.
    TenantNotFound,
    /// The app is disabled in the tenant (AADSTS7000112, 70001).
    AppDisabled,
    /// A Conditional Access policy for workload identities blocks the app (AADSTS53003).
    BlockedByConditionalAccess,
}

impl TenantCondition {
    /// The condition an error reports about its tenant, if it reports one. Errors about
    /// the app's own credential, one resource, throttling or the network say nothing
    /// about the tenant.
    ///
    /// ```
    /// use azure_cross_tenant::{Error, TenantCondition};
    ///
    /// let err = Error::InvalidConfiguration("x".into());
    /// assert_eq!(TenantCondition::of(&err), None);
    /// ```
    pub fn of(error: &Error) -> Option<Self> {
        match error {
            Error::NotConsented { .. } => Some(Self::NeedsConsent),
            Error::TenantNotFound(_) => Some(Self::TenantNotFound),
            Error::AppDisabled(_) => Some(Self::AppDisabled),
            Error::BlockedByConditionalAccess(_) => Some(Self::BlockedByConditionalAccess),
            _ => None,
        }
    }

    /// The name stored in databases and JSON (`needs_consent`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NeedsConsent => "needs_consent",
            Self::TenantNotFound => "tenant_not_found",
            Self::AppDisabled => "app_disabled",
            Self::BlockedByConditionalAccess => "blocked_by_conditional_access",
        }
    }

    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        [
            Self::NeedsConsent,
            Self::TenantNotFound,
            Self::AppDisabled,
            Self::BlockedByConditionalAccess,
        ]
        .into_iter()
        .find(|c| c.as_str() == name)
    }

    /// What the customer's admin does about it, in a sentence for a person.
    pub fn advice(self) -> &'static str {
        match self {
            Self::NeedsConsent => {
                "the customer's admin must grant consent again (connect the tenant)"
            }
            Self::TenantNotFound => "the tenant no longer exists (or its id is wrong): offboard it",
            Self::AppDisabled => "the customer's admin must re-enable the enterprise application",
            Self::BlockedByConditionalAccess => {
                "a Conditional Access policy of the customer blocks the app: their admin must review it"
            }
        }
    }
}

/// The last tenant-level token error of a tenant: its condition, when it was seen, what
/// Entra said (one line, no secret) and the ids its support asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TenantHealth {
    /// What the error says about the tenant.
    pub condition: TenantCondition,
    /// When it was seen (whole seconds).
    #[serde(with = "unix_secs")]
    pub since: SystemTime,
    /// The error, as its one-line `Display` (bounded).
    pub error: String,
    /// The AADSTS code, if Entra gave one.
    #[serde(default)]
    pub code: Option<u32>,
    /// Entra's trace id, if it gave one.
    #[serde(default)]
    pub trace_id: Option<String>,
}

impl TenantHealth {
    /// The health `error` reports about its tenant, seen at `at`; `None` when the error
    /// says nothing about the tenant ([`TenantCondition::of`]).
    pub fn from_error(error: &Error, at: SystemTime) -> Option<Self> {
        let condition = TenantCondition::of(error)?;
        let mut text = error.to_string();
        if text.len() > MAX_HEALTH_TEXT {
            let mut cut = MAX_HEALTH_TEXT;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        Some(Self {
            condition,
            since: whole_secs(at),
            error: text,
            code: error.aadsts_code(),
            trace_id: error.trace_id().map(str::to_owned),
        })
    }

    /// A health value as a store read it back (whole seconds).
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn stored(
        condition: TenantCondition,
        since: SystemTime,
        error: String,
        code: Option<u32>,
        trace_id: Option<String>,
    ) -> Self {
        Self {
            condition,
            since,
            error,
            code,
            trace_id,
        }
    }
}

/// `t` cut to whole seconds since the epoch: what every store keeps.
pub(crate) fn whole_secs(t: SystemTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(crate::clock::unix_secs(t))
}

/// `SystemTime` as whole seconds since the epoch (negative times read as the epoch).
pub(crate) mod unix_secs {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(crate::clock::unix_secs(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let secs = u64::deserialize(d)?;
        UNIX_EPOCH
            .checked_add(Duration::from_secs(secs))
            .ok_or_else(|| serde::de::Error::custom("a time past what the system can hold"))
    }
}

/// `Option<SystemTime>` as whole seconds since the epoch, or `null`.
pub(crate) mod unix_secs_opt {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::unix_secs::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::unix_secs")] SystemTime);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_stored_before_health_and_proof_existed_still_reads() {
        let old = r#"{"tenant":"72f988bf-86f1-41af-91ab-2d7cd011db47","display_name":"Contoso","state":"active"}"#;
        let record: TenantRecord = serde_json::from_str(old).unwrap();
        assert_eq!(record.health, None);
        assert_eq!(record.proof, None);
        assert_eq!(record.linked_at, None);
    }

    #[test]
    fn every_field_survives_json() {
        let mut record = TenantRecord::new(
            "72f988bf-86f1-41af-91ab-2d7cd011db47".parse().unwrap(),
            "Contoso",
            OnboardingState::Active,
        );
        record.linked_at = Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        record.proof = Some(AdminProof::DirectoryRole(
            "62e90394-69f5-4237-9190-012177145e10".into(),
        ));
        record.health = Some(TenantHealth::stored(
            TenantCondition::AppDisabled,
            UNIX_EPOCH + Duration::from_secs(1_700_000_100),
            "disabled".into(),
            Some(7000112),
            Some("trace".into()),
        ));
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains(r#""linked_at":1700000000"#), "{json}");
        assert!(json.contains(r#""condition":"app_disabled""#), "{json}");
        let back: TenantRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record);
        for c in [
            TenantCondition::NeedsConsent,
            TenantCondition::TenantNotFound,
            TenantCondition::AppDisabled,
            TenantCondition::BlockedByConditionalAccess,
        ] {
            assert_eq!(TenantCondition::from_name(c.as_str()), Some(c));
        }
    }
}

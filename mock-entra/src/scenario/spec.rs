//! The scenario document (`mock-entra --config`, `POST /_mock/scenario`): what it may say.
//! Unknown fields are refused, so a typo fails loudly. `mock-entra/README.md` has the tables.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::faults::FaultSpec;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Scenario {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) tenants: BTreeMap<String, TenantSpec>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) apps: BTreeMap<String, AppSpec>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) managed_identities: BTreeMap<String, IdentitySpec>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) users: BTreeMap<String, UserSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) resources: Vec<ResourceSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) consents: Vec<ConsentSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) faults: Vec<FaultEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) settings: Option<SettingsSpec>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TenantSpec {
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) domains: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppSpec {
    /// The home tenant: a scenario name, GUID or domain.
    pub(crate) home: String,
    #[serde(default)]
    pub(crate) display_name: Option<String>,
    #[serde(default)]
    pub(crate) client_id: Option<String>,
    #[serde(default)]
    pub(crate) secrets: BTreeMap<String, SecretSpec>,
    #[serde(default)]
    pub(crate) certificates: BTreeMap<String, CertSpec>,
    #[serde(default)]
    pub(crate) api: Option<ApiSpec>,
    #[serde(default)]
    pub(crate) federated_credentials: Vec<FicSpec>,
    /// Managed identities (names or client ids) whose tokens the app accepts.
    #[serde(default)]
    pub(crate) trust_managed_identities: Vec<String>,
    #[serde(default)]
    pub(crate) redirect_uris: Vec<String>,
    #[serde(default)]
    pub(crate) required_roles: Vec<RoleSpec>,
    /// Id tokens carry `wids` (directory roles), as with Token configuration > Directory roles.
    #[serde(default)]
    pub(crate) emit_wids: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretSpec {
    #[serde(default)]
    pub(crate) value: Option<String>,
    #[serde(default)]
    pub(crate) expired: bool,
    #[serde(default)]
    pub(crate) expires_in_secs: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CertSpec {
    /// The certificate (PEM); absent: the mock generates one (and its key).
    #[serde(default)]
    pub(crate) pem: Option<String>,
    /// Carried through for generated certificates, so `reset` keeps them.
    #[serde(default)]
    pub(crate) private_key_pem: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiSpec {
    #[serde(default)]
    pub(crate) app_id_uri: Option<String>,
    #[serde(default)]
    pub(crate) roles: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FicSpec {
    pub(crate) issuer: String,
    pub(crate) subject: String,
    #[serde(default = "exchange_audience")]
    pub(crate) audience: String,
    #[serde(default)]
    pub(crate) replication_secs: u64,
}

fn exchange_audience() -> String {
    "api://AzureADTokenExchange".into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdentitySpec {
    pub(crate) tenant: String,
    #[serde(default)]
    pub(crate) client_id: Option<String>,
    #[serde(default)]
    pub(crate) object_id: Option<String>,
    #[serde(default)]
    pub(crate) resource_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserSpec {
    pub(crate) tenant: String,
    pub(crate) upn: String,
    #[serde(default)]
    pub(crate) display_name: Option<String>,
    #[serde(default)]
    pub(crate) admin: bool,
    #[serde(default)]
    pub(crate) object_id: Option<String>,
    /// Directory role template ids; absent: Global Administrator for an admin, else none.
    #[serde(default)]
    pub(crate) directory_roles: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleSpec {
    pub(crate) resource: String,
    pub(crate) role: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResourceSpec {
    pub(crate) tenant: String,
    pub(crate) resource: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsentSpec {
    pub(crate) tenant: String,
    pub(crate) app: String,
    #[serde(default)]
    pub(crate) roles: Vec<RoleSpec>,
    #[serde(default = "yes")]
    pub(crate) enabled: bool,
    #[serde(default)]
    pub(crate) blocked_by_conditional_access: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultEntry {
    /// A tenant (name, GUID or domain); absent: every tenant.
    #[serde(default)]
    pub(crate) tenant: Option<String>,
    #[serde(default = "once")]
    pub(crate) times: u32,
    pub(crate) fault: FaultSpec,
}

fn once() -> u32 {
    1
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) token_lifetime_secs: Option<u64>,
    /// `0` removes `refresh_in` from answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_in_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_in_as_string: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) managed_identity_token_lifetime_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key_rollover_delay_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) keys_unavailable: Option<bool>,
}

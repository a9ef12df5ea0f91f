//! The mock's directory: tenants, app registrations, service principals, resources,
//! scripted faults and the request log. Plain data behind one lock, owned by `MockEntra`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use crate::clock::SharedClock;
use crate::testing::keys::SigningKey;
use crate::testing::{MockFault, RecordedRequest};

/// Microsoft resources every mock tenant has, answered with v1 tokens like the real ones.
pub(crate) const KNOWN_RESOURCES: &[&str] = &[
    "https://vault.azure.net",
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://servicebus.azure.net",
    "https://storage.azure.com",
    "https://signalr.azure.com",
    "https://graph.microsoft.com",
    "https://database.windows.net",
    "https://eventhubs.azure.net",
];

#[derive(Debug)]
pub(crate) struct Tenant {
    pub(crate) id: String,
    pub(crate) domains: Vec<String>,
    /// client id -> the app's service principal here.
    pub(crate) sps: HashMap<String, ServicePrincipal>,
    /// Extra (custom) v1 resources provisioned in this tenant.
    pub(crate) resources: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ServicePrincipal {
    pub(crate) object_id: String,
    pub(crate) enabled: bool,
    pub(crate) blocked_by_ca: bool,
    /// resource (normalized) -> granted app roles.
    pub(crate) roles: HashMap<String, Vec<String>>,
}

impl ServicePrincipal {
    pub(crate) fn new() -> Self {
        Self {
            object_id: uuid::Uuid::new_v4().to_string(),
            enabled: true,
            blocked_by_ca: false,
            roles: HashMap::new(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct App {
    pub(crate) client_id: String,
    pub(crate) home_tenant: String,
    pub(crate) display_name: String,
    pub(crate) secrets: Vec<AppSecret>,
    /// When the app exposes an API: its App ID URI (tokens for it are v2, `aud` = client id).
    pub(crate) app_id_uri: Option<String>,
    /// Federated identity credentials.
    pub(crate) fics: Vec<Fic>,
    /// Registered certificates.
    pub(crate) certs: Vec<AppCert>,
}

/// A certificate registered on an app: its thumbprints and RSA public key.
#[derive(Debug, Clone)]
pub(crate) struct AppCert {
    pub(crate) x5t_s256: String,
    pub(crate) x5t: String,
    pub(crate) n: Vec<u8>,
    pub(crate) e: Vec<u8>,
}

/// A federated identity credential: matched exactly and case-sensitively.
#[derive(Debug, Clone)]
pub(crate) struct Fic {
    pub(crate) issuer: String,
    pub(crate) subject: String,
    pub(crate) audience: String,
    /// Before this time requests get AADSTS70021 (replication).
    pub(crate) ready_at: SystemTime,
}

/// A user-assigned managed identity.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) client_id: String,
    pub(crate) object_id: String,
    pub(crate) resource_id: String,
    pub(crate) tenant: String,
}

pub(crate) struct AppSecret {
    pub(crate) value: String,
    pub(crate) expires: SystemTime,
}

impl std::fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Even fake secrets stay out of output: tests copy patterns from the mock.
        f.debug_struct("AppSecret")
            .field("value", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

/// A fault waiting to be served `remaining` more times to requests for `tenant`
/// (a GUID; `None` for every tenant).
#[derive(Debug)]
pub(crate) struct ScheduledFault {
    pub(crate) tenant: Option<String>,
    pub(crate) fault: MockFault,
    pub(crate) remaining: u32,
}

/// The whole state of one mock.
#[derive(Debug)]
pub(crate) struct Directory {
    pub(crate) base: String,
    pub(crate) clock: SharedClock,
    pub(crate) tenants: HashMap<String, Tenant>,
    /// lower-cased domain -> tenant GUID.
    pub(crate) domains: HashMap<String, String>,
    pub(crate) apps: HashMap<String, App>,
    pub(crate) faults: Vec<ScheduledFault>,
    pub(crate) latency: Duration,
    pub(crate) token_lifetime: Duration,
    pub(crate) refresh_in: Option<Duration>,
    pub(crate) expires_in_as_string: bool,
    pub(crate) keys: Vec<SigningKey>,
    pub(crate) log: Vec<RecordedRequest>,
    pub(crate) metadata_requests: usize,
    pub(crate) jwks_requests: usize,
    pub(crate) identities: Vec<Identity>,
    pub(crate) identity_header: String,
    pub(crate) identity_token_lifetime: Duration,
    /// Scripted failures of the managed identity endpoints: (status, remaining).
    pub(crate) identity_faults: Vec<(u16, u32)>,
    pub(crate) identity_requests: usize,
    /// Metadata and JWKS answer 503 while set.
    pub(crate) keys_unavailable: bool,
    /// `jti`s of client assertions already used (replays are refused).
    pub(crate) seen_jti: std::cell::RefCell<std::collections::HashSet<String>>,
}

impl Directory {
    pub(crate) fn new(base: String, clock: SharedClock) -> Self {
        Self {
            base,
            clock,
            tenants: HashMap::new(),
            domains: HashMap::new(),
            apps: HashMap::new(),
            faults: Vec::new(),
            latency: Duration::ZERO,
            token_lifetime: Duration::from_secs(3599),
            refresh_in: None,
            expires_in_as_string: false,
            keys: vec![SigningKey::generate()],
            log: Vec::new(),
            metadata_requests: 0,
            jwks_requests: 0,
            identities: Vec::new(),
            identity_header: uuid::Uuid::new_v4().simple().to_string(),
            identity_token_lifetime: Duration::from_secs(86_399),
            identity_faults: Vec::new(),
            identity_requests: 0,
            keys_unavailable: false,
            seen_jti: Default::default(),
        }
    }

    /// The GUID of a tenant given as GUID or domain (any case).
    pub(crate) fn resolve_tenant(&self, tenant: &str) -> Option<String> {
        let t = tenant.to_ascii_lowercase();
        if self.tenants.contains_key(&t) {
            Some(t)
        } else {
            self.domains.get(&t).cloned()
        }
    }

    pub(crate) fn tenant_mut(&mut self, tenant: &str) -> &mut Tenant {
        let id = self.resolve_tenant(tenant).unwrap_or_else(|| {
            panic!("MockEntra: unknown tenant {tenant}; add it with add_tenant first")
        });
        self.tenants.get_mut(&id).unwrap_or_else(|| unreachable!())
    }

    pub(crate) fn sp_mut(&mut self, tenant: &str, client_id: &str) -> &mut ServicePrincipal {
        let t = self.tenant_mut(tenant);
        t.sps
            .get_mut(&client_id.to_ascii_lowercase())
            .unwrap_or_else(|| panic!("MockEntra: app {client_id} is not consented in tenant {tenant}; call consent first"))
    }

    /// The next fault for `tenant`, used up by one.
    pub(crate) fn take_fault(&mut self, tenant: &str) -> Option<MockFault> {
        let idx = self
            .faults
            .iter()
            .position(|f| f.remaining > 0 && f.tenant.as_deref().is_none_or(|t| t == tenant))?;
        let f = &mut self.faults[idx];
        f.remaining -= 1;
        let fault = f.fault.clone();
        if f.remaining == 0 {
            self.faults.remove(idx);
        }
        Some(fault)
    }

    /// The signing key in use (the newest).
    pub(crate) fn signing_key(&self) -> &SigningKey {
        // `new` creates one key and rotation only adds; the list is never empty.
        self.keys.last().unwrap_or_else(|| unreachable!())
    }
}

/// Entra's timestamp format: `2021-05-16 05:21:44Z`.
pub(crate) fn entra_timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_look_like_entras() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_621_142_504);
        assert_eq!(entra_timestamp(t), "2021-05-16 05:21:44Z");
    }
}

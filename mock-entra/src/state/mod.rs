//! The mock's state: the directory (tenants, apps, consents, users, identities), settings,
//! scripted faults and keys behind one lock, and the request log behind another. Requests
//! hold a lock only for map lookups and small updates; RSA signing happens outside it.

mod entities;
mod keyset;
pub(crate) mod log;
mod ops;
mod sessions;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

pub(crate) use entities::*;
pub(crate) use keyset::KeySet;
pub(crate) use log::RequestLog;
pub(crate) use sessions::BrowserSessions;

use crate::MockError;
use crate::clock::SharedClock;
use crate::faults::FaultQueue;

/// Settings that shape answers.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) token_lifetime: Duration,
    pub(crate) refresh_in: Option<Duration>,
    pub(crate) expires_in_as_string: bool,
    pub(crate) latency: Duration,
    pub(crate) identity_token_lifetime: Duration,
    /// Metadata and JWKS answer 503 while set.
    pub(crate) keys_unavailable: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            token_lifetime: Duration::from_secs(3599),
            refresh_in: None,
            expires_in_as_string: false,
            latency: Duration::ZERO,
            identity_token_lifetime: Duration::from_secs(86_399),
            keys_unavailable: false,
        }
    }
}

/// The whole directory of one mock.
pub(crate) struct Directory {
    pub(crate) clock: SharedClock,
    pub(crate) tenants: HashMap<String, Tenant>,
    /// lower-cased domain -> tenant GUID.
    pub(crate) domains: HashMap<String, String>,
    pub(crate) apps: HashMap<String, App>,
    /// lower-cased App ID URI (and `api://{client id}`) -> client id of the exposing app.
    pub(crate) api_index: HashMap<String, String>,
    pub(crate) identities: Vec<Identity>,
    /// object id -> user.
    pub(crate) users: HashMap<String, User>,
    /// lower-cased UPN -> object id.
    pub(crate) upns: HashMap<String, String>,
    pub(crate) settings: Settings,
    pub(crate) faults: FaultQueue,
    /// Scripted failures of the managed identity endpoints: (status, remaining).
    pub(crate) identity_faults: Vec<(u16, u32)>,
    pub(crate) keys: KeySet,
    pub(crate) identity_header: String,
    /// `jti`s of client assertions already used, with the time each can be forgotten.
    pub(crate) seen_jti: BTreeMap<String, SystemTime>,
    /// Authorization codes waiting to be redeemed.
    pub(crate) codes: HashMap<String, AuthCode>,
    /// The scripted user (object id): `MockEntra::sign_in`, `POST /_mock/sign-in`, or a
    /// sign-in with `login_hint`. Sign-in and consent act as them with no page.
    pub(crate) session: Option<String>,
    /// Real browsers signed in on the sign-in page (their session cookies).
    pub(crate) browser_sessions: BrowserSessions,
    /// The next admin consent is declined.
    pub(crate) decline_next_consent: bool,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets (app secrets, the App Service identity header, codes) stay out.
        f.debug_struct("Directory")
            .field("tenants", &self.tenants.len())
            .field("apps", &self.apps)
            .field("users", &self.users.len())
            .field("managed_identities", &self.identities.len())
            .field("keys", &self.keys)
            .field("identity_header", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Directory {
    pub(crate) fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            tenants: HashMap::new(),
            domains: HashMap::new(),
            apps: HashMap::new(),
            api_index: HashMap::new(),
            identities: Vec::new(),
            users: HashMap::new(),
            upns: HashMap::new(),
            settings: Settings::default(),
            faults: FaultQueue::default(),
            identity_faults: Vec::new(),
            keys: KeySet::new(),
            identity_header: uuid::Uuid::new_v4().simple().to_string(),
            seen_jti: BTreeMap::new(),
            codes: HashMap::new(),
            session: None,
            browser_sessions: BrowserSessions::default(),
            decline_next_consent: false,
        }
    }

    /// Empties the directory, keeping the clock, the identity header and the keys (as
    /// they were at start).
    pub(crate) fn clear(&mut self) {
        self.tenants.clear();
        self.domains.clear();
        self.apps.clear();
        self.api_index.clear();
        self.identities.clear();
        self.users.clear();
        self.upns.clear();
        self.settings = Settings::default();
        self.faults.clear();
        self.identity_faults.clear();
        self.keys.reset();
        self.seen_jti.clear();
        self.codes.clear();
        self.session = None;
        self.browser_sessions.clear();
        self.decline_next_consent = false;
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
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

    pub(crate) fn tenant(&self, tenant: &str) -> Result<&Tenant, MockError> {
        self.resolve_tenant(tenant)
            .and_then(|id| self.tenants.get(&id))
            .ok_or_else(|| MockError::UnknownTenant(tenant.to_owned()))
    }

    pub(crate) fn tenant_mut(&mut self, tenant: &str) -> Result<&mut Tenant, MockError> {
        let id = self
            .resolve_tenant(tenant)
            .ok_or_else(|| MockError::UnknownTenant(tenant.to_owned()))?;
        self.tenants
            .get_mut(&id)
            .ok_or_else(|| MockError::UnknownTenant(tenant.to_owned()))
    }

    pub(crate) fn app(&self, client_id: &str) -> Result<&App, MockError> {
        self.apps
            .get(&client_id.to_ascii_lowercase())
            .ok_or_else(|| MockError::UnknownApp(client_id.to_owned()))
    }

    pub(crate) fn app_mut(&mut self, client_id: &str) -> Result<&mut App, MockError> {
        self.apps
            .get_mut(&client_id.to_ascii_lowercase())
            .ok_or_else(|| MockError::UnknownApp(client_id.to_owned()))
    }

    pub(crate) fn sp_mut(
        &mut self,
        tenant: &str,
        client_id: &str,
    ) -> Result<&mut ServicePrincipal, MockError> {
        self.app(client_id)?;
        let t = self.tenant_mut(tenant)?;
        let tid = t.id.clone();
        t.sps
            .get_mut(&client_id.to_ascii_lowercase())
            .ok_or_else(|| MockError::NotConsented {
                tenant: tid,
                client_id: client_id.to_owned(),
            })
    }

    /// A user by object id or UPN.
    pub(crate) fn user(&self, who: &str) -> Result<&User, MockError> {
        let oid = self
            .upns
            .get(&who.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or(who);
        self.users
            .get(oid)
            .ok_or_else(|| MockError::UnknownUser(who.to_owned()))
    }

    /// A managed identity by client id, object id or resource id.
    pub(crate) fn identity(&self, who: &str) -> Result<&Identity, MockError> {
        self.identities
            .iter()
            .find(|i| i.client_id == who || i.object_id == who || i.resource_id == who)
            .ok_or_else(|| MockError::UnknownManagedIdentity(who.to_owned()))
    }

    /// Remembers an assertion's `jti` until `forget_at`; false if it was seen already.
    /// Forgets expired ones first, so the set stays as small as the replay window.
    pub(crate) fn first_use_of_jti(&mut self, jti: &str, forget_at: SystemTime) -> bool {
        let now = self.now();
        if self.seen_jti.len() > 1024 {
            self.seen_jti.retain(|_, at| *at > now);
        }
        if self.seen_jti.contains_key(jti) {
            return false;
        }
        self.seen_jti.insert(jti.to_owned(), forget_at);
        true
    }

    /// Custom resources of a tenant.
    pub(crate) fn has_resource(&self, tid: &str, key: &str) -> bool {
        self.tenants
            .get(tid)
            .is_some_and(|t| t.resources.contains(key))
    }

    /// Drops codes past their expiry.
    pub(crate) fn prune_codes(&mut self) {
        let now = self.now();
        if self.codes.len() > 256 {
            self.codes.retain(|_, c| c.expires > now);
        }
    }

    /// Domains of every tenant (for output).
    pub(crate) fn domains_of(&self, tid: &str) -> Vec<String> {
        self.tenants
            .get(tid)
            .map(|t| t.domains.clone())
            .unwrap_or_default()
    }
}

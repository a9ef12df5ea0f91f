//! A faithful multi-tenant fake of Entra for tests (feature `test-util`): [`MockEntra`].
//!
//! It runs on loopback over real HTTP (wiremock) and answers like Entra: the v2 token
//! endpoint with Entra's checks, status codes and error JSON; real RS256 tokens signed by
//! its keys with `tid`, `oid`, `aud`, `appid`/`azp`, `roles`; OpenID metadata and JWKS
//! (Entra's key shape: `issuer`, no `alg`); scripted faults; and a request log to count
//! calls. Point any credential at it with `.authority_host(mock.uri())`.

mod directory;
mod endpoints;
mod keys;
mod resource;
#[cfg(feature = "azure-core")]
mod transport;

pub use resource::MockResource;
#[cfg(feature = "azure-core")]
pub use transport::loopback_transport;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use url::Url;
use wiremock::{Mock, MockServer};

use crate::clock::{Clock, SharedClock, SystemClock};
use crate::cloud::Cloud;
use crate::tenant::TenantId;
use directory::{
    App, AppCert, AppSecret, Directory, Fic, Identity, ScheduledFault, ServicePrincipal, Tenant,
};

/// A fake Entra with tenants, app registrations and consents, on a loopback port.
///
/// ```
/// use azure_cross_tenant::testing::MockEntra;
/// use azure_cross_tenant::{ClientSecret, TenantCredentialProvider};
/// use azure_cross_tenant::insecure::decode_unverified;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let entra = MockEntra::start().await;
/// let home = entra.add_tenant("provider.example");
/// let customer = entra.add_tenant("customer.example");
/// let app = entra.register_app(&home, "saas-backend");
/// let secret = entra.add_secret(&app);
/// let sp_object_id = entra.consent(&customer, &app);
///
/// let credential = ClientSecret::new(app.client_id(), secret)
///     .authority_host(entra.uri())
///     .build()?;
/// let token = credential.get_token(&customer, &["https://vault.azure.net/.default"]).await?;
/// let claims = decode_unverified(token.secret())?;
/// assert_eq!(claims.tid.as_deref(), Some(customer.as_str()));
/// assert_eq!(claims.oid, Some(sp_object_id));
/// assert_eq!(entra.token_requests_for(&customer), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MockEntra {
    server: Arc<DropOnThread<MockServer>>,
    uri: Url,
    state: Arc<Mutex<Directory>>,
}

/// Holds a value (typically a `wiremock::MockServer`) and drops it on a plain thread.
///
/// wiremock's `MockServer` runs `futures::executor::block_on` on a tokio lock when
/// dropped; inside a tokio task that has spent its cooperative budget (a test that awaited
/// many ready things), that lock answers `Pending` forever and the drop spins. A fresh
/// thread has no budget to exhaust. `MockEntra` holds its server this way; wrap your own
/// fake resource servers the same way.
///
/// ```
/// use azure_cross_tenant::testing::DropOnThread;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let vault = DropOnThread::new(wiremock::MockServer::start().await);
/// let uri = vault.uri(); // derefs to the server
/// # let _ = uri;
/// # }
/// ```
#[derive(Debug)]
pub struct DropOnThread<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> DropOnThread<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Self(Some(value))
    }
}

impl<T: Send + 'static> std::ops::Deref for DropOnThread<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // Only `drop` takes the value out.
        self.0.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<T: Send + 'static> Drop for DropOnThread<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            let _ = std::thread::spawn(move || drop(value)).join();
        }
    }
}

/// Builds a [`MockEntra`] with a custom clock.
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `build()` (or `start()`)"]
pub struct MockEntraBuilder {
    clock: Option<SharedClock>,
    listener: Option<std::net::TcpListener>,
}

impl MockEntraBuilder {
    /// The clock stamping `iat`/`exp` and deciding secret expiry (e.g. a
    /// [`ManualClock`](crate::ManualClock) shared with the code under test).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Serves on this listener (e.g. bound to a fixed port) instead of a free loopback port.
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Starts the server (by default on a free loopback port).
    pub async fn start(self) -> MockEntra {
        // The mock keeps its own request log (without secrets); wiremock's would hold
        // every body, secrets included.
        let mut builder = MockServer::builder().disable_request_recording();
        if let Some(listener) = self.listener {
            builder = builder.listener(listener);
        }
        let server = builder.start().await;
        let uri = Url::parse(&format!("{}/", server.uri()))
            .unwrap_or_else(|e| unreachable!("wiremock URI is a URL: {e}"));
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let state = Arc::new(Mutex::new(Directory::new(uri.to_string(), clock)));
        Mock::given(wiremock::matchers::any())
            .respond_with(endpoints::Responder(state.clone()))
            .mount(&server)
            .await;
        MockEntra {
            server: Arc::new(DropOnThread::new(server)),
            uri,
            state,
        }
    }
}

/// An app registration in the mock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockApp {
    client_id: String,
    home_tenant: TenantId,
}

impl MockApp {
    /// The app's client id (a GUID).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The tenant the app is registered in.
    pub fn home_tenant(&self) -> &TenantId {
        &self.home_tenant
    }
}

/// A user-assigned managed identity in the mock, served by its IMDS and App Service
/// endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockManagedIdentity {
    /// Its client id.
    pub client_id: String,
    /// Its object (principal) id: the `sub` and `oid` of its tokens.
    pub object_id: String,
    /// Its Azure resource id.
    pub resource_id: String,
    /// The tenant it lives in.
    pub tenant: TenantId,
}

/// A scripted misbehaviour of the token endpoint, served instead of (or around) the normal answer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum MockFault {
    /// HTTP 429 with AADSTS90055 and, if given, `Retry-After` in seconds.
    Throttle {
        /// The `Retry-After` header.
        retry_after: Option<Duration>,
    },
    /// A 5xx with Entra's `temporarily_unavailable` JSON (AADSTS50033).
    ServerError {
        /// The status, e.g. 500 or 503.
        status: u16,
    },
    /// Any Entra error answer (for codes the mock does not model by itself).
    Error {
        /// HTTP status.
        status: u16,
        /// OAuth `error`.
        error: String,
        /// The AADSTS code.
        code: u32,
        /// The message after `AADSTS{code}: `.
        message: String,
    },
    /// The normal answer, after this delay.
    Latency(Duration),
    /// A raw body with this status.
    Body {
        /// HTTP status.
        status: u16,
        /// The body.
        body: Vec<u8>,
    },
    /// 200 with an empty body.
    Empty,
    /// 200 with an HTML page (a proxy's error page).
    NotJson,
    /// 200 with JSON cut off in the middle.
    Truncated,
    /// 200 with fields of the wrong JSON types.
    WrongTypes,
    /// 200 with a body over 2 MiB.
    Oversized,
}

impl MockFault {
    /// An Entra error answer with `code`.
    pub fn entra_error(status: u16, error: &str, code: u32, message: &str) -> Self {
        Self::Error {
            status,
            error: error.to_owned(),
            code,
            message: message.to_owned(),
        }
    }
}

/// How a token request proved the app's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialKind {
    /// `client_secret`.
    Secret,
    /// `client_assertion`.
    Assertion,
    /// Neither.
    None,
}

/// One token request the mock received (secrets and assertions are not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The tenant segment of the path, as sent.
    pub tenant: String,
    /// The tenant's GUID, when the mock knows the tenant.
    pub tenant_id: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `grant_type`.
    pub grant_type: Option<String>,
    /// The `client-request-id` header.
    pub client_request_id: Option<String>,
    /// How the app authenticated.
    pub credential: CredentialKind,
    /// The status the mock answered.
    pub status: u16,
}

impl MockEntra {
    /// Starts a mock on a free loopback port, stamping tokens with the system clock.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// A builder, to inject a clock.
    pub fn builder() -> MockEntraBuilder {
        MockEntraBuilder::default()
    }

    /// The authority host (`http://127.0.0.1:{port}/`): pass it to `.authority_host(..)`.
    pub fn uri(&self) -> Url {
        self.uri.clone()
    }

    /// The mock as a [`Cloud`], with the public cloud's token-exchange audience.
    pub fn cloud(&self) -> Cloud {
        Cloud::Custom {
            authority_host: self.uri.clone(),
            token_exchange_audience: "api://AzureADTokenExchange".into(),
        }
    }

    /// The v2 issuer of `tenant`'s tokens: `{uri}{tid}/v2.0`.
    pub fn issuer_v2(&self, tenant: &TenantId) -> String {
        format!("{}{}/v2.0", self.uri, self.tenant_guid(tenant))
    }

    /// The v1 issuer of `tenant`'s tokens: `https://sts.windows.net/{tid}/`.
    pub fn issuer_v1(&self, tenant: &TenantId) -> String {
        format!("https://sts.windows.net/{}/", self.tenant_guid(tenant))
    }

    fn lock(&self) -> MutexGuard<'_, Directory> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a tenant with a fresh GUID and the verified domain `domain`; returns its GUID.
    ///
    /// # Panics
    /// If the domain belongs to another tenant already.
    pub fn add_tenant(&self, domain: &str) -> TenantId {
        let id = uuid::Uuid::new_v4().to_string();
        let mut dir = self.lock();
        let domain = domain.to_ascii_lowercase();
        assert!(
            !dir.domains.contains_key(&domain),
            "MockEntra: domain {domain} is taken"
        );
        dir.domains.insert(domain.clone(), id.clone());
        dir.tenants.insert(
            id.clone(),
            Tenant {
                id: id.clone(),
                domains: vec![domain],
                sps: Default::default(),
                resources: Vec::new(),
            },
        );
        id.parse()
            .unwrap_or_else(|_| unreachable!("a v4 UUID is a tenant id"))
    }

    /// Adds another verified domain to `tenant`.
    pub fn add_domain(&self, tenant: &TenantId, domain: &str) {
        let mut dir = self.lock();
        let id = dir.tenant_mut(tenant.as_str()).id.clone();
        let domain = domain.to_ascii_lowercase();
        dir.domains.insert(domain.clone(), id);
        dir.tenant_mut(tenant.as_str()).domains.push(domain);
    }

    /// The GUID of a tenant given by GUID or domain.
    ///
    /// # Panics
    /// If the mock does not know the tenant.
    pub fn tenant_guid(&self, tenant: &TenantId) -> String {
        self.lock().tenant_mut(tenant.as_str()).id.clone()
    }

    /// Registers a multitenant app in `home`; its service principal there exists at once.
    pub fn register_app(&self, home: &TenantId, display_name: &str) -> MockApp {
        let client_id = uuid::Uuid::new_v4().to_string();
        let mut dir = self.lock();
        let home_id = dir.tenant_mut(home.as_str()).id.clone();
        dir.apps.insert(
            client_id.clone(),
            App {
                client_id: client_id.clone(),
                home_tenant: home_id.clone(),
                display_name: display_name.to_owned(),
                secrets: Vec::new(),
                app_id_uri: None,
                fics: Vec::new(),
                certs: Vec::new(),
            },
        );
        dir.tenant_mut(&home_id)
            .sps
            .insert(client_id.clone(), ServicePrincipal::new());
        MockApp {
            client_id,
            home_tenant: home.clone(),
        }
    }

    /// Adds a client secret valid for two years; returns its value.
    pub fn add_secret(&self, app: &MockApp) -> String {
        self.add_secret_expiring_in(app, Duration::from_secs(2 * 365 * 86_400))
    }

    /// Adds a client secret that has already expired; returns its value.
    pub fn add_expired_secret(&self, app: &MockApp) -> String {
        let value = secret_value();
        let mut dir = self.lock();
        let expires = dir.clock.now() - Duration::from_secs(1);
        app_mut(&mut dir, app).secrets.push(AppSecret {
            value: value.clone(),
            expires,
        });
        value
    }

    /// Adds a client secret expiring `valid_for` from now (on the mock's clock).
    pub fn add_secret_expiring_in(&self, app: &MockApp, valid_for: Duration) -> String {
        let value = secret_value();
        let mut dir = self.lock();
        let expires = dir.clock.now() + valid_for;
        app_mut(&mut dir, app).secrets.push(AppSecret {
            value: value.clone(),
            expires,
        });
        value
    }

    /// Registers a certificate (PEM or DER; only its public part is used) on the app, as
    /// uploading it to the app registration does.
    ///
    /// # Panics
    /// If it is not an X.509 certificate with an RSA key.
    pub fn add_certificate(&self, app: &MockApp, certificate: &[u8]) {
        use crate::credential::{cert_facts, certificate_der};
        let der = certificate_der(certificate)
            .unwrap_or_else(|e| panic!("MockEntra: no certificate in the PEM: {e}"));
        let facts = cert_facts(&der)
            .unwrap_or_else(|e| panic!("MockEntra: not an RSA X.509 certificate: {e}"));
        let entry = AppCert {
            x5t_s256: facts.x5t_s256,
            x5t: facts.x5t,
            n: facts.n,
            e: facts.e,
        };
        app_mut(&mut self.lock(), app).certs.push(entry);
    }

    /// Removes every client secret of the app.
    pub fn remove_secrets(&self, app: &MockApp) {
        app_mut(&mut self.lock(), app).secrets.clear();
    }

    /// Makes the app expose an API: tokens for `{app_id_uri}/.default` (or `api://{client
    /// id}/.default`) are v2 tokens with `aud` = the app's client id. Other tenants reach
    /// it once the app is consented there.
    pub fn expose_api(&self, app: &MockApp, app_id_uri: Option<&str>) -> String {
        let uri = app_id_uri
            .map(str::to_owned)
            .unwrap_or_else(|| format!("api://{}", app.client_id));
        app_mut(&mut self.lock(), app).app_id_uri = Some(uri.to_ascii_lowercase());
        uri
    }

    /// Provisions a custom v1 resource (e.g. `https://api.contoso.example`) in `tenant`.
    pub fn add_resource(&self, tenant: &TenantId, resource: &str) {
        let key = resource.trim_end_matches('/').to_ascii_lowercase();
        self.lock().tenant_mut(tenant.as_str()).resources.push(key);
    }

    /// Admin consent: creates the app's service principal in `tenant` (with its own object
    /// id) and returns that object id. Consenting again returns the same id.
    pub fn consent(&self, tenant: &TenantId, app: &MockApp) -> String {
        let mut dir = self.lock();
        app_mut(&mut dir, app);
        dir.tenant_mut(tenant.as_str())
            .sps
            .entry(app.client_id.clone())
            .or_insert_with(ServicePrincipal::new)
            .object_id
            .clone()
    }

    /// Deletes the app's service principal in `tenant` (consent revoked): requests get AADSTS700016.
    pub fn revoke_consent(&self, tenant: &TenantId, app: &MockApp) {
        self.lock()
            .tenant_mut(tenant.as_str())
            .sps
            .remove(&app.client_id);
    }

    /// The object id of the app's service principal in `tenant`, if consented.
    pub fn service_principal_id(&self, tenant: &TenantId, app: &MockApp) -> Option<String> {
        self.lock()
            .tenant_mut(tenant.as_str())
            .sps
            .get(&app.client_id)
            .map(|sp| sp.object_id.clone())
    }

    /// Disables (or re-enables) the enterprise app in `tenant`: AADSTS7000112.
    ///
    /// # Panics
    /// If the app is not consented in `tenant`.
    pub fn set_app_enabled(&self, tenant: &TenantId, app: &MockApp, enabled: bool) {
        self.lock().sp_mut(tenant.as_str(), &app.client_id).enabled = enabled;
    }

    /// Blocks (or unblocks) the app in `tenant` by Conditional Access: AADSTS53003.
    ///
    /// # Panics
    /// If the app is not consented in `tenant`.
    pub fn set_blocked_by_conditional_access(
        &self,
        tenant: &TenantId,
        app: &MockApp,
        blocked: bool,
    ) {
        self.lock()
            .sp_mut(tenant.as_str(), &app.client_id)
            .blocked_by_ca = blocked;
    }

    /// Grants the app's service principal in `tenant` an app role on `resource`; it shows
    /// in the `roles` claim of tokens for that resource.
    ///
    /// # Panics
    /// If the app is not consented in `tenant`.
    pub fn grant_role(&self, tenant: &TenantId, app: &MockApp, resource: &str, role: &str) {
        let key = resource.trim_end_matches('/').to_ascii_lowercase();
        self.lock()
            .sp_mut(tenant.as_str(), &app.client_id)
            .roles
            .entry(key)
            .or_default()
            .push(role.to_owned());
    }

    /// Creates a user-assigned managed identity in `tenant`.
    pub fn add_managed_identity(&self, tenant: &TenantId, name: &str) -> MockManagedIdentity {
        let mut dir = self.lock();
        let tid = dir.tenant_mut(tenant.as_str()).id.clone();
        let identity = Identity {
            client_id: uuid::Uuid::new_v4().to_string(),
            object_id: uuid::Uuid::new_v4().to_string(),
            resource_id: format!(
                "/subscriptions/{}/resourceGroups/mock/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
                uuid::Uuid::new_v4()
            ),
            tenant: tid,
        };
        dir.identities.push(identity.clone());
        MockManagedIdentity {
            client_id: identity.client_id,
            object_id: identity.object_id,
            resource_id: identity.resource_id,
            tenant: tenant.clone(),
        }
    }

    /// Adds a federated identity credential to `app`, matched exactly and
    /// case-sensitively on issuer, subject and audience.
    pub fn add_federated_credential(
        &self,
        app: &MockApp,
        issuer: &str,
        subject: &str,
        audience: &str,
    ) {
        self.add_federated_credential_pending(app, issuer, subject, audience, Duration::ZERO);
    }

    /// Like [`add_federated_credential`](Self::add_federated_credential), but it only
    /// matches after `replication` has passed on the mock's clock (AADSTS70021 before).
    pub fn add_federated_credential_pending(
        &self,
        app: &MockApp,
        issuer: &str,
        subject: &str,
        audience: &str,
        replication: Duration,
    ) {
        let mut dir = self.lock();
        let ready_at = dir.clock.now() + replication;
        app_mut(&mut dir, app).fics.push(Fic {
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            audience: audience.to_owned(),
            ready_at,
        });
    }

    /// The federated identity credential of the secretless pattern: `app` trusts tokens
    /// of `identity` for `api://AzureADTokenExchange`.
    pub fn trust_managed_identity(&self, app: &MockApp, identity: &MockManagedIdentity) {
        let issuer = self.issuer_v2(&identity.tenant);
        self.add_federated_credential(
            app,
            &issuer,
            &identity.object_id,
            "api://AzureADTokenExchange",
        );
    }

    /// A token of `identity` for `audience`, as its IMDS endpoint would issue (for token
    /// files and custom sources).
    pub fn managed_identity_token(&self, identity: &MockManagedIdentity, audience: &str) -> String {
        let dir = self.lock();
        let found = dir
            .identities
            .iter()
            .find(|i| i.client_id == identity.client_id)
            .unwrap_or_else(|| panic!("MockEntra: unknown managed identity {}", identity.client_id))
            .clone();
        endpoints::identity_token(&dir, &found, audience).0
    }

    /// The IMDS token endpoint (`{uri}metadata/identity/oauth2/token`); requires `Metadata: true`.
    pub fn imds_endpoint(&self) -> Url {
        self.uri
            .join("metadata/identity/oauth2/token")
            .unwrap_or_else(|_| unreachable!())
    }

    /// The App Service identity endpoint (`IDENTITY_ENDPOINT`); requires
    /// `X-IDENTITY-HEADER: {identity_header()}`.
    pub fn app_service_endpoint(&self) -> Url {
        self.uri
            .join("msi/token")
            .unwrap_or_else(|_| unreachable!())
    }

    /// The secret App Service expects in `X-IDENTITY-HEADER` (`IDENTITY_HEADER`).
    pub fn identity_header(&self) -> String {
        self.lock().identity_header.clone()
    }

    /// Lifetime of managed identity tokens (default 86,399 s).
    pub fn set_managed_identity_token_lifetime(&self, lifetime: Duration) {
        self.lock().identity_token_lifetime = lifetime;
    }

    /// Makes the next `times` managed identity requests fail with `status`.
    pub fn inject_managed_identity_fault(&self, status: u16, times: u32) {
        self.lock().identity_faults.push((status, times));
    }

    /// How many managed identity token requests were served (IMDS and App Service).
    pub fn managed_identity_requests(&self) -> usize {
        self.lock().identity_requests
    }

    /// Lifetime of issued tokens (default 3599 s).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.lock().token_lifetime = lifetime;
    }

    /// Adds `refresh_in` to token answers (default: absent).
    pub fn set_refresh_in(&self, refresh_in: Option<Duration>) {
        self.lock().refresh_in = refresh_in;
    }

    /// Sends `expires_in` as a numeric string, as some Entra endpoints do.
    pub fn set_expires_in_as_string(&self, as_string: bool) {
        self.lock().expires_in_as_string = as_string;
    }

    /// Delays every token answer by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Serves `fault` to the next `times` token requests for `tenant`.
    pub fn inject_fault(&self, tenant: &TenantId, fault: MockFault, times: u32) {
        let mut dir = self.lock();
        let tid = dir.tenant_mut(tenant.as_str()).id.clone();
        dir.faults.push(ScheduledFault {
            tenant: Some(tid),
            fault,
            remaining: times,
        });
    }

    /// Serves `fault` to the next `times` token requests, whatever the tenant.
    pub fn inject_fault_everywhere(&self, fault: MockFault, times: u32) {
        self.lock().faults.push(ScheduledFault {
            tenant: None,
            fault,
            remaining: times,
        });
    }

    /// Rotates the signing keys: a new key signs from now on; the previous one stays
    /// published (as Entra does during a rollover); older ones are dropped.
    pub fn rotate_keys(&self) {
        let mut dir = self.lock();
        dir.keys.push(keys::SigningKey::generate());
        if dir.keys.len() > 2 {
            dir.keys.remove(0);
        }
    }

    /// Makes OpenID metadata and JWKS answer 503 while `unavailable` (an outage of the
    /// key endpoints).
    pub fn set_keys_unavailable(&self, unavailable: bool) {
        self.lock().keys_unavailable = unavailable;
    }

    /// Stops publishing every key but the current one (the end of a rollover).
    pub fn retire_old_keys(&self) {
        let mut dir = self.lock();
        let keep = dir.keys.len() - 1;
        dir.keys.drain(..keep);
    }

    /// Whether `token` carries a valid RS256 signature by one of this mock's published keys.
    pub fn signed_by_mock(&self, token: &str) -> bool {
        use base64::Engine as _;
        let Some((message, sig)) = token.rsplit_once('.') else {
            return false;
        };
        let Ok(sig) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        let dir = self.lock();
        dir.keys.iter().any(|k| k.verify(message.as_bytes(), &sig))
    }

    /// The `kid` of the key signing tokens now.
    pub fn current_kid(&self) -> String {
        self.lock().signing_key().kid.clone()
    }

    /// Signs arbitrary claims with the current key and an arbitrary header (for validation
    /// tests that need forged or unusual tokens). `kid` is added to the header unless set.
    pub fn sign_token(&self, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let dir = self.lock();
        let key = dir.signing_key();
        let mut header = header.clone();
        if let Some(h) = header.as_object_mut() {
            h.entry("kid").or_insert_with(|| key.kid.clone().into());
        }
        key.sign_with_header(&header, claims)
    }

    /// Every token request received, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().log.clone()
    }

    /// How many token requests were made for `tenant` (by GUID or any of its domains).
    pub fn token_requests_for(&self, tenant: &TenantId) -> usize {
        let dir = self.lock();
        let Some(tid) = dir.resolve_tenant(tenant.as_str()) else {
            return dir
                .log
                .iter()
                .filter(|r| r.tenant == tenant.as_str())
                .count();
        };
        dir.log
            .iter()
            .filter(|r| r.tenant_id.as_deref() == Some(tid.as_str()))
            .count()
    }

    /// How many token requests were made in all.
    pub fn token_requests(&self) -> usize {
        self.lock().log.len()
    }

    /// How many OpenID metadata documents were served.
    pub fn metadata_requests(&self) -> usize {
        self.lock().metadata_requests
    }

    /// How many JWKS documents were served.
    pub fn jwks_requests(&self) -> usize {
        self.lock().jwks_requests
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }

    /// The address the server listens on.
    pub fn address(&self) -> std::net::SocketAddr {
        *self.server.address()
    }
}

fn app_mut<'d>(dir: &'d mut Directory, app: &MockApp) -> &'d mut App {
    dir.apps
        .get_mut(&app.client_id)
        .unwrap_or_else(|| panic!("MockEntra: unknown app {}", app.client_id))
}

/// A value shaped like an Entra secret (40 characters), clearly fake.
fn secret_value() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("mock~{a}{}", &b[..3])
}

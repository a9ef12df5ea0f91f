//! Tenants, app registrations and their credentials, exposed APIs, consent and its state.

use std::time::Duration;

use crate::error::or_panic;
use crate::{MockApp, MockEntra};
use azure_cross_tenant::TenantId;

fn tenant_id(guid: String) -> TenantId {
    guid.parse()
        .unwrap_or_else(|_| unreachable!("a GUID is a tenant id"))
}

impl MockEntra {
    /// Creates a tenant with a fresh GUID and the verified domain `domain`; returns its GUID.
    ///
    /// # Panics
    /// If the domain belongs to another tenant already, or is not a domain name.
    pub fn add_tenant(&self, domain: &str) -> TenantId {
        tenant_id(or_panic(self.lock().add_tenant(None, &[domain.to_owned()])))
    }

    /// Creates a tenant with a given GUID and verified domains; returns its id.
    ///
    /// # Panics
    /// If the GUID or a domain is taken or malformed.
    pub fn add_tenant_with_id(&self, id: &str, domains: &[&str]) -> TenantId {
        let domains: Vec<String> = domains.iter().map(|d| d.to_string()).collect();
        tenant_id(or_panic(self.lock().add_tenant(Some(id), &domains)))
    }

    /// Adds another verified domain to `tenant`.
    ///
    /// # Panics
    /// If the tenant is unknown or the domain taken.
    pub fn add_domain(&self, tenant: &TenantId, domain: &str) {
        or_panic(self.lock().add_domain(tenant.as_str(), domain));
    }

    /// The GUID of a tenant given by GUID or domain.
    ///
    /// # Panics
    /// If the mock does not know the tenant.
    pub fn tenant_guid(&self, tenant: &TenantId) -> String {
        or_panic(self.lock().tenant(tenant.as_str()).map(|t| t.id.clone()))
    }

    /// Registers a multitenant app in `home`; its service principal there exists at once.
    pub fn register_app(&self, home: &TenantId, display_name: &str) -> MockApp {
        let client_id = or_panic(self.lock().register_app(home.as_str(), display_name, None));
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
        let mut dir = self.lock();
        let expires = dir.now() - Duration::from_secs(1);
        or_panic(dir.add_secret(&app.client_id, None, expires))
    }

    /// Adds a client secret expiring `valid_for` from now (on the mock's clock).
    pub fn add_secret_expiring_in(&self, app: &MockApp, valid_for: Duration) -> String {
        let mut dir = self.lock();
        let expires = dir.now() + valid_for;
        or_panic(dir.add_secret(&app.client_id, None, expires))
    }

    /// Registers a certificate (PEM or DER; only its public part is used) on the app, as
    /// uploading it to the app registration does.
    ///
    /// # Panics
    /// If it is not an X.509 certificate with an RSA key.
    pub fn add_certificate(&self, app: &MockApp, certificate: &[u8]) {
        or_panic(self.lock().add_certificate(&app.client_id, certificate));
    }

    /// Removes a certificate from the app (PEM or DER, matched by its thumbprint), as
    /// deleting it from the app registration does: assertions signed with its key get
    /// AADSTS700027 from then on. Returns false when it was not registered.
    ///
    /// # Panics
    /// If it is not an X.509 certificate with an RSA key, or the app is unknown.
    pub fn remove_certificate(&self, app: &MockApp, certificate: &[u8]) -> bool {
        or_panic(self.lock().remove_certificate(&app.client_id, certificate))
    }

    /// Removes every client secret of the app.
    pub fn remove_secrets(&self, app: &MockApp) {
        or_panic(self.lock().app_mut(&app.client_id))
            .secrets
            .clear();
    }

    /// Makes the app expose an API: tokens for `{app_id_uri}/.default` (or `api://{client
    /// id}/.default`) are v2 tokens with `aud` = the app's client id. Other tenants reach
    /// it once the app is consented there.
    pub fn expose_api(&self, app: &MockApp, app_id_uri: Option<&str>) -> String {
        or_panic(self.lock().expose_api(&app.client_id, app_id_uri, &[]))
    }

    /// Like [`expose_api`](Self::expose_api), declaring app roles the API offers.
    pub fn expose_api_with_roles(
        &self,
        app: &MockApp,
        app_id_uri: Option<&str>,
        roles: &[&str],
    ) -> String {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        or_panic(self.lock().expose_api(&app.client_id, app_id_uri, &roles))
    }

    /// Provisions a custom v1 resource (e.g. `https://api.contoso.example`) in `tenant`.
    pub fn add_resource(&self, tenant: &TenantId, resource: &str) {
        or_panic(self.lock().add_resource(tenant.as_str(), resource));
    }

    /// Admin consent: creates the app's service principal in `tenant` (with its own object
    /// id, and the roles the app [requires](Self::require_role)) and returns that object id.
    /// Consenting again returns the same id.
    pub fn consent(&self, tenant: &TenantId, app: &MockApp) -> String {
        or_panic(self.lock().consent(tenant.as_str(), &app.client_id))
    }

    /// Deletes the app's service principal in `tenant` (consent revoked): requests get AADSTS700016.
    pub fn revoke_consent(&self, tenant: &TenantId, app: &MockApp) {
        or_panic(self.lock().revoke(tenant.as_str(), &app.client_id));
    }

    /// The object id of the app's service principal in `tenant`, if consented.
    pub fn service_principal_id(&self, tenant: &TenantId, app: &MockApp) -> Option<String> {
        or_panic(
            self.lock()
                .tenant(tenant.as_str())
                .map(|t| t.sps.get(&app.client_id).map(|sp| sp.object_id.clone())),
        )
    }

    /// Disables (or re-enables) the enterprise app in `tenant`: AADSTS7000112.
    ///
    /// # Panics
    /// If the app is not consented in `tenant`.
    pub fn set_app_enabled(&self, tenant: &TenantId, app: &MockApp, enabled: bool) {
        or_panic(self.lock().sp_mut(tenant.as_str(), &app.client_id)).enabled = enabled;
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
        or_panic(self.lock().sp_mut(tenant.as_str(), &app.client_id)).blocked_by_ca = blocked;
    }

    /// Grants the app's service principal in `tenant` an app role on `resource`; it shows
    /// in the `roles` claim of tokens for that resource.
    ///
    /// # Panics
    /// If the app is not consented in `tenant`.
    pub fn grant_role(&self, tenant: &TenantId, app: &MockApp, resource: &str, role: &str) {
        or_panic(
            self.lock()
                .grant_role(tenant.as_str(), &app.client_id, resource, role),
        );
    }

    /// An app role the app asks for on `resource` (its API permissions): admin consent,
    /// in process or over HTTP, grants it in the consenting tenant.
    pub fn require_role(&self, app: &MockApp, resource: &str, role: &str) {
        or_panic(self.lock().require_role(&app.client_id, resource, role));
    }

    /// Makes the app's id tokens carry `wids`, the signed-in user's directory role
    /// template ids (for a user who holds any), as Entra does once the app's token
    /// configuration asks for directory roles (`groupMembershipClaims` `DirectoryRole`, or
    /// the optional claim `wids`). Off by default, as in Entra.
    pub fn emit_wids(&self, app: &MockApp, emit: bool) {
        or_panic(self.lock().emit_wids(&app.client_id, emit));
    }

    /// Registers a redirect URI on the app. Until one is registered, sign-in and admin
    /// consent accept any https URI and http on loopback; afterwards only registered ones.
    pub fn add_redirect_uri(&self, app: &MockApp, uri: &str) {
        or_panic(self.lock().add_redirect_uri(&app.client_id, uri));
    }
}

//! Managed identities, their endpoints, and federated identity credentials.

use std::time::Duration;

use url::Url;

use crate::endpoints::identity::identity_token;
use crate::error::or_panic;
use crate::{MockApp, MockEntra, MockManagedIdentity};
use azure_cross_tenant::TenantId;

impl MockEntra {
    /// Creates a user-assigned managed identity in `tenant`.
    pub fn add_managed_identity(&self, tenant: &TenantId, name: &str) -> MockManagedIdentity {
        let identity = or_panic(self.lock().add_identity(tenant.as_str(), name, [None; 3]));
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
        or_panic(
            self.lock()
                .add_fic(&app.client_id, issuer, subject, audience, replication),
        );
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
    ///
    /// # Panics
    /// If the identity is not this mock's.
    pub fn managed_identity_token(&self, identity: &MockManagedIdentity, audience: &str) -> String {
        let (claims, key) = {
            let mut dir = self.lock();
            let found = or_panic(dir.identity(&identity.client_id).cloned());
            let (claims, key, _) = identity_token(&mut dir, &self.shared.base, &found, audience);
            (claims, key)
        };
        key.sign(&claims, false)
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
        self.lock().settings.identity_token_lifetime = lifetime;
    }

    /// Makes the next `times` managed identity requests fail with `status`.
    pub fn inject_managed_identity_fault(&self, status: u16, times: u32) {
        self.lock().identity_faults.push((status, times));
    }
}

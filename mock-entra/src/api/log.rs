//! The request log and counters.

use crate::{MockEndpoint, MockEntra, RecordedRequest};
use azure_cross_tenant::TenantId;

impl MockEntra {
    /// The token requests in the log (v2 and v1 endpoints), oldest first. The log keeps
    /// the last 10,000 requests of every endpoint (see
    /// [`request_log_limit`](crate::MockEntraBuilder::request_log_limit)).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .log()
            .entries()
            .filter(|r| r.endpoint.is_token())
            .cloned()
            .collect()
    }

    /// Every request in the log to `endpoint`, oldest first.
    pub fn requests_to(&self, endpoint: MockEndpoint) -> Vec<RecordedRequest> {
        self.shared
            .log()
            .entries()
            .filter(|r| r.endpoint == endpoint)
            .cloned()
            .collect()
    }

    /// How many token requests were made for `tenant` (by GUID or any of its domains).
    pub fn token_requests_for(&self, tenant: &TenantId) -> usize {
        let key = self
            .lock()
            .resolve_tenant(tenant.as_str())
            .unwrap_or_else(|| tenant.as_str().to_ascii_lowercase());
        self.shared.log().token_requests_for(&key)
    }

    /// How many token requests were made in all.
    pub fn token_requests(&self) -> usize {
        self.shared.log().token_requests()
    }

    /// How many requests `endpoint` received.
    pub fn request_count(&self, endpoint: MockEndpoint) -> usize {
        self.shared.log().count(endpoint)
    }

    /// How many OpenID metadata documents were requested.
    pub fn metadata_requests(&self) -> usize {
        self.request_count(MockEndpoint::Metadata)
    }

    /// How many JWKS documents were requested.
    pub fn jwks_requests(&self) -> usize {
        self.request_count(MockEndpoint::Keys)
    }

    /// How many managed identity token requests were served (IMDS and App Service).
    pub fn managed_identity_requests(&self) -> usize {
        self.request_count(MockEndpoint::ManagedIdentity)
    }

    /// Forgets the request log and zeroes every counter.
    pub fn clear_requests(&self) {
        self.shared.log().clear();
    }
}

//! [`EntraError`]: what Entra said when it refused a token, and the advice for each code.

use std::time::SystemTime;

use crate::tenant::TenantId;

/// What Entra said when it refused a token, plus the request's context.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntraError {
    /// The tenant asked.
    pub tenant: TenantId,
    /// The app's client id.
    pub client_id: String,
    /// HTTP status.
    pub status: u16,
    /// The OAuth `error` (e.g. `invalid_client`).
    pub error: String,
    /// `error_codes`: the AADSTS numbers.
    pub codes: Vec<u32>,
    /// The first line of `error_description` (the AADSTS message), cut to 512 characters.
    pub description: String,
    /// Entra's trace id (for support tickets).
    pub trace_id: Option<String>,
    /// The correlation id (the `client-request-id` this crate sent).
    pub correlation_id: Option<String>,
    /// Entra's timestamp.
    pub timestamp: Option<String>,
    /// When Entra gave this answer, if it is served from memory rather than just received:
    /// [`Cached`](crate::Cached) remembers a tenant's permanent refusal (not consented,
    /// not found, app disabled) for a short window and serves it again without asking
    /// (see [`CacheOptions::negative_ttl`](crate::CacheOptions::negative_ttl)).
    pub remembered_at: Option<SystemTime>,
}

impl EntraError {
    /// An error with only the request's context (for answers without Entra's JSON, e.g. a
    /// bare 429 from a proxy).
    pub(crate) fn bare(tenant: TenantId, client_id: &str, status: u16) -> Self {
        Self {
            tenant,
            client_id: client_id.to_owned(),
            status,
            error: String::new(),
            codes: Vec::new(),
            description: String::new(),
            trace_id: None,
            correlation_id: None,
            timestamp: None,
            remembered_at: None,
        }
    }

    /// The primary AADSTS code, if Entra gave one.
    pub fn code(&self) -> Option<u32> {
        self.codes.first().copied()
    }

    /// What the operator does about this code.
    pub fn advice(&self) -> &'static str {
        advice(self.code().unwrap_or(0), self.status)
    }

    pub(super) fn summary(&self) -> String {
        match (self.error.is_empty(), self.description.is_empty()) {
            (false, false) => format!("{}: {}", self.error, self.description),
            (false, true) => self.error.clone(),
            (true, false) => self.description.clone(),
            (true, true) => format!("HTTP {}", self.status),
        }
    }

    /// ` [AADSTS…, trace id …, correlation id …]`, or empty when there is nothing to say;
    /// a remembered answer says when it was given.
    pub(super) fn context(&self) -> String {
        let mut parts = Vec::new();
        if let Some(at) = self.remembered_at {
            parts.push(format!(
                "remembered from Entra's answer at {}, not asked again yet",
                httpdate::fmt_http_date(at)
            ));
        }
        if let Some(code) = self.code() {
            parts.push(format!("AADSTS{code}"));
        }
        if let Some(t) = &self.trace_id {
            parts.push(format!("trace id {t}"));
        }
        if let Some(c) = &self.correlation_id {
            parts.push(format!("correlation id {c}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" [{}]", parts.join(", "))
        }
    }
}

/// Entra codes that mean "try again": the transient ones (server busy, session or
/// replication hiccups), retried like a 5xx.
pub(crate) fn is_transient_code(code: u32) -> bool {
    matches!(code, 50033 | 90006 | 90024 | 90033 | 90090 | 50087)
}

fn advice(code: u32, status: u16) -> &'static str {
    match code {
        700016 | 7000229 => {
            "the customer admin must grant consent at the admin consent URL; check the tenant id"
        }
        650052 => "the customer admin must enable the resource for the app or grant consent to it",
        500011 => {
            "the resource is not provisioned in the tenant; check the scope, or ask the customer to subscribe to the resource"
        }
        90002 | 900023 => "fix the tenant id or the cloud; offboard the tenant if it was deleted",
        7000215 => "use the client secret's value (not its id), or rotate it",
        7000222 => "rotate the client secret",
        7000218 => {
            "the request carried no client credential; configure a secret, certificate or federated assertion"
        }
        700027 => "upload the certificate to the app registration",
        700024 => "fix the clock; re-read the federated token file",
        70021 => {
            "wait a few minutes for a new federated identity credential to replicate, then check it"
        }
        700211..=700213 => {
            "set the federated identity credential to the exact issuer, audience and subject Entra names"
        }
        70025 => "add a federated identity credential to the app",
        700236 => "use a user-assigned managed identity in the app's home tenant",
        700227 => {
            "ask the managed identity for the token-exchange audience (api://AzureADTokenExchange)"
        }
        700222 | 700226 => "use a user-assigned managed identity token as the assertion",
        7000112 | 70001 => "the customer admin must re-enable the enterprise application",
        53003 => {
            "the customer admin must review the conditional access policy or allow the provider's egress IPs"
        }
        9001023 => "use the customer's tenant id, not common/organizations/consumers",
        70011 | 700022 => "request exactly one `{resource}/.default` scope per token",
        50196 => "the same request is sent too often: cache tokens",
        90055 => "back off and honour Retry-After",
        c if is_transient_code(c) => "a transient Entra failure; retry later",
        _ if status == 429 => "back off and honour Retry-After",
        _ if status >= 500 => "Entra is unavailable; retry later",
        _ => "see Entra's message and the error code reference",
    }
}

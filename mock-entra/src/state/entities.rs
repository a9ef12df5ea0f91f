//! What the mock directory holds: tenants, app registrations, service principals, users,
//! managed identities. Plain data; `Directory` owns it.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

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

/// The key a resource is known by: no trailing slash, lower case.
pub(crate) fn resource_key(resource: &str) -> String {
    resource.trim_end_matches('/').to_ascii_lowercase()
}

#[derive(Debug)]
pub(crate) struct Tenant {
    pub(crate) id: String,
    pub(crate) domains: Vec<String>,
    /// client id -> the app's service principal here.
    pub(crate) sps: HashMap<String, ServicePrincipal>,
    /// Extra (custom) v1 resources provisioned in this tenant (resource keys).
    pub(crate) resources: HashSet<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ServicePrincipal {
    pub(crate) object_id: String,
    pub(crate) enabled: bool,
    pub(crate) blocked_by_ca: bool,
    /// resource key -> granted app roles.
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

    pub(crate) fn grant(&mut self, resource: &str, role: &str) {
        let roles = self.roles.entry(resource_key(resource)).or_default();
        if !roles.iter().any(|r| r == role) {
            roles.push(role.to_owned());
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
    /// App roles its exposed API defines.
    pub(crate) app_roles: Vec<String>,
    /// Federated identity credentials.
    pub(crate) fics: Vec<Fic>,
    /// Registered certificates.
    pub(crate) certs: Vec<AppCert>,
    /// Registered redirect URIs; empty accepts any https or loopback URI.
    pub(crate) redirect_uris: Vec<String>,
    /// App roles the app asks for, (resource, role): admin consent grants them.
    pub(crate) required_roles: Vec<(String, String)>,
    /// Whether its id tokens carry `wids` (the user's directory roles), as when the app's
    /// token configuration asks for directory roles.
    pub(crate) emit_wids: bool,
}

/// A certificate registered on an app: its thumbprints and RSA public key.
#[derive(Debug, Clone)]
pub(crate) struct AppCert {
    pub(crate) x5t_s256: String,
    pub(crate) x5t: String,
    /// PKCS#1 `RSAPublicKey`, as jsonwebtoken's `DecodingKey::from_rsa_der` takes it.
    pub(crate) public_key: Vec<u8>,
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

/// A user who can sign in (and, if an admin, consent for the tenant).
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) object_id: String,
    pub(crate) upn: String,
    pub(crate) display_name: String,
    pub(crate) tenant: String,
    pub(crate) admin: bool,
    /// Directory role template ids (lower case) the user holds in the tenant.
    pub(crate) directory_roles: Vec<String>,
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

/// An authorization code waiting to be redeemed (single use).
#[derive(Clone)]
pub(crate) struct AuthCode {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) scope: String,
    pub(crate) nonce: Option<String>,
    /// `(challenge, method)` when PKCE was used.
    pub(crate) pkce: Option<(String, String)>,
    pub(crate) user: String,
    pub(crate) tid: String,
    pub(crate) expires: SystemTime,
    /// Redeemed once already (a second redemption is AADSTS54005).
    pub(crate) redeemed: bool,
    /// Issued by the v1 authorize endpoint (redeemed at the v1 token endpoint).
    pub(crate) v1: bool,
}

impl std::fmt::Debug for AuthCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCode")
            .field("client_id", &self.client_id)
            .field("tid", &self.tid)
            .finish_non_exhaustive()
    }
}

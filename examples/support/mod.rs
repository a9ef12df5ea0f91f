//! Shared by the scenario examples: the embedded mock world (Entra plus a fake resource
//! server that checks bearer tokens like the real service would), and the switch to real
//! Azure when the usual environment variables are set.
#![allow(dead_code, unreachable_pub)] // each example uses part of it

use azure_cross_tenant::TenantId;
use azure_cross_tenant::insecure::decode_unverified;
use mock_entra::{MockApp, MockEntra};

/// Environment variable `name`, if set and non-empty.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The mock world: a provider home tenant, a consented customer and the app.
pub struct MockWorld {
    pub entra: MockEntra,
    pub home: TenantId,
    pub customer: TenantId,
    pub app: MockApp,
    pub secret: String,
    pub customer_sp: String,
}

impl MockWorld {
    pub async fn start() -> Self {
        let entra = MockEntra::start().await;
        let home = entra.add_tenant("provider.example");
        let customer = entra.add_tenant("fabrikam.example");
        let app = entra.register_app(&home, "saas-backend");
        let secret = entra.add_secret(&app);
        let customer_sp = entra.consent(&customer, &app);
        println!(
            "(no Azure environment variables set: running against the embedded mock Entra at {})",
            entra.uri()
        );
        Self {
            entra,
            home,
            customer,
            app,
            secret,
            customer_sp,
        }
    }
}

/// Prints a token's identity without the token itself.
pub fn show_token(token: &str) {
    if let Ok(c) = decode_unverified(token) {
        println!(
            "  token: tid={} oid={} aud={} app={} roles=[{}]",
            c.tid.as_deref().unwrap_or("-"),
            c.oid.as_deref().unwrap_or("-"),
            c.aud.join(","),
            c.app_id().unwrap_or("-"),
            c.roles.join(",")
        );
    }
}

//! A mock Entra with a provider app, on a manual clock (as tests/api/common.rs).

use std::sync::Arc;

use azure_cross_tenant::{ClientSecret, ManualClock, TenantId};
use mock_entra::{MockApp, MockEntra, MockUser};

pub const VAULT: &str = "https://vault.azure.net/.default";

pub struct World {
    pub entra: MockEntra,
    pub clock: ManualClock,
    pub app: MockApp,
    pub secret: String,
    /// A customer who consented long ago.
    pub customer: TenantId,
}

impl World {
    pub async fn new() -> Self {
        let clock = ManualClock::starting_now();
        let entra = MockEntra::builder()
            .clock(Arc::new(clock.clone()))
            .start()
            .await;
        let home = entra.add_tenant("provider.example");
        let customer = entra.add_tenant("fabrikam.example");
        let app = entra.register_app(&home, "saas-backend");
        let secret = entra.add_secret(&app);
        entra.consent(&customer, &app);
        entra.emit_wids(&app, true);
        Self {
            entra,
            clock,
            app,
            secret,
            customer,
        }
    }

    pub fn credential(&self) -> ClientSecret {
        ClientSecret::new(self.app.client_id(), &self.secret)
            .authority_host(self.entra.uri())
            .clock(Arc::new(self.clock.clone()))
            .sleeper(Arc::new(self.clock.clone()))
            .build()
            .unwrap()
    }

    /// A new customer tenant and its Global Administrator.
    pub fn newcomer(&self, domain: &str) -> (TenantId, MockUser) {
        let tenant = self.entra.add_tenant(domain);
        let admin = self.entra.add_admin(&tenant, &format!("admin@{domain}"));
        (tenant, admin)
    }
}

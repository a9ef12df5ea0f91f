//! Shared setup for the integration tests: a mock Entra with a provider home tenant,
//! two customers (one consented) and a client-secret credential on a manual clock.

use std::sync::Arc;

use azure_cross_tenant::{AccessToken, ClientSecret, ManualClock, TenantId};
use mock_entra::{MockApp, MockEntra};

pub const VAULT: &str = "https://vault.azure.net/.default";

pub struct World {
    pub entra: MockEntra,
    pub clock: ManualClock,
    pub home: TenantId,
    pub customer: TenantId,
    pub stranger: TenantId,
    pub app: MockApp,
    pub secret: String,
    pub sp_object_id: String,
}

impl World {
    /// `count` more customers of the world's app, each consented.
    pub fn customers(&self, count: usize) -> Vec<TenantId> {
        (0..count)
            .map(|i| {
                let tenant = self.entra.add_tenant(&format!("customer-{i}.example"));
                self.entra.consent(&tenant, &self.app);
                tenant
            })
            .collect()
    }

    pub async fn new() -> Self {
        let clock = ManualClock::starting_now();
        let entra = MockEntra::builder()
            .clock(Arc::new(clock.clone()))
            .start()
            .await;
        let home = entra.add_tenant("provider.example");
        let customer = entra.add_tenant("fabrikam.example");
        let stranger = entra.add_tenant("northwind.example");
        let app = entra.register_app(&home, "saas-backend");
        let secret = entra.add_secret(&app);
        let sp_object_id = entra.consent(&customer, &app);
        Self {
            entra,
            clock,
            home,
            customer,
            stranger,
            app,
            secret,
            sp_object_id,
        }
    }

    /// A credential on the world's clock; retry waits move the clock instead of sleeping.
    pub fn credential(&self) -> ClientSecret {
        self.credential_with(&self.secret)
    }

    /// A Key Vault token from `tenant` through a fresh credential; panics on error.
    pub async fn token(&self, tenant: &TenantId) -> AccessToken {
        use azure_cross_tenant::TenantCredentialProvider;
        self.credential()
            .get_token(tenant, &[VAULT])
            .await
            .expect("a token from a consented tenant")
    }

    pub fn credential_with(&self, secret: &str) -> ClientSecret {
        ClientSecret::new(self.app.client_id(), secret)
            .authority_host(self.entra.uri())
            .clock(Arc::new(self.clock.clone()))
            .sleeper(Arc::new(self.clock.clone()))
            .build()
            .expect("valid configuration")
    }
}

/// An [`HttpClient`](azure_cross_tenant::HttpClient) for `entra`: trusts its CA when it
/// serves https, and no other.
pub fn mock_http(entra: &MockEntra) -> azure_cross_tenant::HttpClient {
    let roots = entra
        .ca_pem()
        .map(|pem| reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
    azure_cross_tenant::HttpClient::from_builder(reqwest::Client::builder().tls_certs_only(roots))
        .unwrap()
}

/// A reqwest client as `reqwest::Client::new()` builds it, but trusting no certificate:
/// for plain http on loopback, without reading and parsing the system's whole trust store
/// as `Client::new()` does for every client.
pub fn plain_http() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only(Vec::new())
        .build()
        .unwrap()
}

/// The part of a test to run in this process, when this process is a child that
/// [`run_child`] started; `None` in the test's own process. A test that needs a process of
/// its own begins with `if let Some(part) = child_part() { ... }` and runs only that part
/// there: the part is a plain function, never an `#[ignore]`d test of its own (in this
/// suite, `#[ignore]` means "needs a server").
pub fn child_part() -> Option<String> {
    std::env::var("ACT_CHILD").ok()
}

/// Runs the test `test` of `module` (pass `module_path!()` and the calling test's own
/// name) again in a child process of this binary, with `env` and [`child_part`] = `part`,
/// and asserts it passed: for tests that need process-wide state (environment variables,
/// a global tracing subscriber) while other tests run in parallel.
pub async fn run_child(module: &str, test: &str, part: &str, env: &[(&str, &str)]) {
    // Test names in this binary are module paths without the crate name.
    let module = module.split_once("::").map_or("", |(_, m)| m);
    let name = format!("{module}::{test}");
    let child = tokio::process::Command::new(std::env::current_exe().unwrap())
        // --include-ignored: the test may itself need a server (and so be ignored unless asked).
        .args(["--exact", &name, "--include-ignored", "--nocapture"])
        .env("ACT_CHILD", part)
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output();
    // Bounded, so a child that hangs fails the test instead of stalling the suite.
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), child)
        .await
        .unwrap_or_else(|_| panic!("{name} ({part}) did not finish within 60 s"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child {part} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
}

/// The proxy settings a child process gets: every variable reqwest reads, pointing at
/// `proxy`, with no exceptions.
pub fn proxy_env(proxy: &str) -> Vec<(&'static str, String)> {
    [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ]
    .into_iter()
    .map(|k| (k, proxy.to_owned()))
    .chain([("NO_PROXY", String::new()), ("no_proxy", String::new())])
    .collect()
}

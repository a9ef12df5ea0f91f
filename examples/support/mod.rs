//! Shared by the scenario examples: the embedded mock world (Entra plus a fake resource
//! server that checks bearer tokens like the real service would), and the switch to real
//! Azure when the usual environment variables are set.
#![allow(dead_code, unreachable_pub)] // each example uses part of it

use std::sync::{Arc, Mutex};

use azure_cross_tenant::testing::{DropOnThread, MockApp, MockEntra};
use azure_cross_tenant::{TenantId, decode_unverified};
use serde_json::Value;
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

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

/// What a fake resource decides for one authorized request.
pub type Handler = Arc<dyn Fn(&wiremock::Request, &Value) -> ResponseTemplate + Send + Sync>;

/// A fake resource server (Key Vault, Service Bus, ARM...) of one tenant: 401 with a
/// challenge without a token; 403 unless the token's `tid` and `aud` are right; else the
/// handler answers. `claims` of every accepted call are kept.
pub struct FakeResource {
    pub server: DropOnThread<MockServer>,
    pub accepted: Arc<Mutex<Vec<Value>>>,
}

struct Checker {
    authority: String,
    tenant: String,
    audience: String,
    accepted: Arc<Mutex<Vec<Value>>>,
    handler: Handler,
}

impl Respond for Checker {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let bearer = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some(token) = bearer else {
            let challenge = format!(
                r#"Bearer authorization="{}{}", resource="{}""#,
                self.authority, self.tenant, self.audience
            );
            return ResponseTemplate::new(401)
                .insert_header("www-authenticate", challenge.as_str());
        };
        let Ok(claims) = decode_unverified(token) else {
            return ResponseTemplate::new(401);
        };
        if claims.tid.as_deref() != Some(self.tenant.as_str())
            || !claims.aud.contains(&self.audience)
        {
            return ResponseTemplate::new(403)
                .set_body_string("token is for another tenant or resource");
        }
        let raw = Value::Object(claims.raw.clone());
        self.accepted.lock().unwrap().push(raw.clone());
        (self.handler)(request, &raw)
    }
}

impl FakeResource {
    pub async fn start(world: &MockWorld, audience: &str, handler: Handler) -> Self {
        let server = MockServer::start().await;
        let accepted = Arc::new(Mutex::new(Vec::new()));
        Mock::given(wiremock::matchers::any())
            .respond_with(Checker {
                authority: world.entra.uri().to_string(),
                tenant: world.customer.to_string(),
                audience: audience.to_owned(),
                accepted: accepted.clone(),
                handler,
            })
            .mount(&server)
            .await;
        Self {
            server: DropOnThread::new(server),
            accepted,
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

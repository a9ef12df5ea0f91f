//! [`MockResource`]: a fake Azure resource (Key Vault, Service Bus, ARM...) of one tenant
//! that answers like the real ones about bearer tokens.

use std::sync::{Arc, Mutex};

use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use azure_cross_tenant::{Claims, TenantId};

use crate::jose::Jwt;
use crate::{DropOnThread, MockEntra};

type Handler = Arc<dyn Fn(&wiremock::Request, &Claims) -> ResponseTemplate + Send + Sync>;

/// A fake resource server of one tenant, on loopback.
///
/// Without a bearer token it answers 401 with the challenge Azure resources send
/// (`WWW-Authenticate: Bearer authorization="{authority}{tenant}", resource="{audience}"`),
/// which official SDK clients follow. A token not signed by the mock's keys gets 401; one
/// whose `tid` or `aud` is wrong gets 403; otherwise `handler` answers, and the token's
/// claims are kept for the test to inspect.
///
/// ```
/// use mock_entra::{MockEntra, MockResource};
/// use azure_cross_tenant::{ClientSecret, TenantCredentialProvider};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let entra = MockEntra::start().await;
/// # let home = entra.add_tenant("provider.example");
/// # let customer = entra.add_tenant("fabrikam.example");
/// # let app = entra.register_app(&home, "saas");
/// # let secret = entra.add_secret(&app);
/// # entra.consent(&customer, &app);
/// let vault = MockResource::start(&entra, &customer, "https://vault.azure.net", |_, _| {
///     wiremock::ResponseTemplate::new(200).set_body_string(r#"{"value":"s3cr3t"}"#)
/// })
/// .await;
/// let credential = ClientSecret::new(app.client_id(), secret).authority_host(entra.uri()).build()?;
/// let token = credential.get_token(&customer, &["https://vault.azure.net/.default"]).await?;
/// let answer = reqwest::Client::new()
///     .get(format!("{}/secrets/db", vault.uri()))
///     .bearer_auth(token.secret())
///     .send()
///     .await?;
/// assert_eq!(answer.status(), 200);
/// assert_eq!(vault.accepted()[0].tid.as_deref(), Some(customer.as_str()));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MockResource {
    server: DropOnThread<MockServer>,
    accepted: Arc<Mutex<Vec<Claims>>>,
}

struct Checker {
    entra: MockEntra,
    tenant_guid: String,
    audience: String,
    accepted: Arc<Mutex<Vec<Claims>>>,
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
                self.entra.uri(),
                self.tenant_guid,
                self.audience
            );
            return ResponseTemplate::new(401)
                .insert_header("www-authenticate", challenge.as_str());
        };
        let claims = match Jwt::parse(token) {
            Some(jwt) if self.entra.signed_by_mock(token) => jwt.claims.to_library_claims(),
            _ => return ResponseTemplate::new(401).set_body_string("invalid token"),
        };
        if claims.tid.as_deref() != Some(self.tenant_guid.as_str())
            || !claims.aud.contains(&self.audience)
        {
            return ResponseTemplate::new(403)
                .set_body_string("the token is for another tenant or resource");
        }
        self.accepted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(claims.clone());
        (self.handler)(request, &claims)
    }
}

impl MockResource {
    /// Starts a resource of `tenant` that accepts tokens for `audience` (e.g.
    /// `https://vault.azure.net`) and answers authorized requests with `handler`.
    pub async fn start(
        entra: &MockEntra,
        tenant: &TenantId,
        audience: &str,
        handler: impl Fn(&wiremock::Request, &Claims) -> ResponseTemplate + Send + Sync + 'static,
    ) -> Self {
        let server = MockServer::builder()
            .disable_request_recording()
            .start()
            .await;
        let accepted = Arc::new(Mutex::new(Vec::new()));
        Mock::given(wiremock::matchers::any())
            .respond_with(Checker {
                entra: entra.clone(),
                tenant_guid: entra.tenant_guid(tenant),
                audience: audience.to_owned(),
                accepted: accepted.clone(),
                handler: Arc::new(handler),
            })
            .mount(&server)
            .await;
        Self {
            server: DropOnThread::new(server),
            accepted,
        }
    }

    /// Its base URL, `http://127.0.0.1:{port}` (no trailing slash).
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The same URL as `https://`, for official SDK clients (they refuse http); give
    /// them [`loopback_transport`](crate::loopback_transport) to reach it.
    pub fn https_uri(&self) -> String {
        self.server.uri().replacen("http://", "https://", 1)
    }

    /// The claims of every token it accepted, oldest first.
    pub fn accepted(&self) -> Vec<Claims> {
        self.accepted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

//! The receiving side: a real axum service on loopback behind `ValidateBearerLayer`,
//! called over real HTTP with tokens from the mock Entra. Each answer's status and
//! `WWW-Authenticate` are asserted exactly, and key fetches are counted.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use azure_cross_tenant::{
    BearerRejection, ClientSecret, Expectations, ManualClock, TenantCredentialProvider, TenantId,
    TokenValidator, ValidateBearerLayer, ValidatedClaims,
};
use mock_entra::{MockApp, MockEntra};

const SEND: &str = "Commands.Send";

/// The customer's tenant hosts an API; the provider's app is consented there and granted
/// `Commands.Send` on it.
struct Scene {
    entra: MockEntra,
    clock: ManualClock,
    customer: TenantId,
    other: TenantId,
    provider: MockApp,
    provider_secret: String,
    provider_sp: String,
    api: MockApp,
    scope: String,
}

impl Scene {
    async fn new() -> Self {
        let clock = ManualClock::starting_now();
        let entra = MockEntra::builder()
            .clock(Arc::new(clock.clone()))
            .start()
            .await;
        let home = entra.add_tenant("provider.example");
        let customer = entra.add_tenant("customer.example");
        let other = entra.add_tenant("other.example");
        let provider = entra.register_app(&home, "saas-backend");
        let provider_secret = entra.add_secret(&provider);
        let api = entra.register_app(&customer, "customer-commands");
        let api_uri = entra.expose_api(&api, None);
        let provider_sp = entra.consent(&customer, &provider);
        entra.grant_role(&customer, &provider, &api_uri, SEND);
        entra.consent(&other, &provider);
        Self {
            entra,
            clock,
            customer,
            other,
            provider,
            provider_secret,
            provider_sp,
            api,
            scope: format!("{api_uri}/.default"),
        }
    }

    fn credential(&self, app: &MockApp, secret: &str) -> ClientSecret {
        ClientSecret::new(app.client_id(), secret)
            .authority_host(self.entra.uri())
            .clock(Arc::new(self.clock.clone()))
            .build()
            .unwrap()
    }

    /// A token for the customer API from `tenant`, asked by `app`.
    async fn token(&self, app: &MockApp, secret: &str, tenant: &TenantId, scope: &str) -> String {
        self.credential(app, secret)
            .get_token(tenant, &[scope])
            .await
            .unwrap()
            .secret()
            .to_owned()
    }

    async fn provider_token(&self) -> String {
        self.token(
            &self.provider,
            &self.provider_secret,
            &self.customer,
            &self.scope,
        )
        .await
    }

    fn validator(&self) -> TokenValidator {
        TokenValidator::builder(self.entra.cloud())
            .clock(Arc::new(self.clock.clone()))
            .failure_backoff(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    /// What the customer API accepts: its own tenant, its audience, the provider's
    /// service principal, the provider's app.
    fn expectations(&self) -> Expectations {
        Expectations::new(self.customer.clone())
            .audience(self.api.client_id())
            .object_id(&self.provider_sp)
            .app_id(self.provider.client_id())
    }

    /// Serves the customer API on loopback: `/commands` (handler checks the role),
    /// `/admin` (the layer requires a role the provider lacks), `/optional` (optional
    /// layer), `/unguarded` (no layer, extracts claims anyway).
    async fn serve(&self, validator: TokenValidator) -> Server {
        async fn commands(
            headers: HeaderMap,
            claims: ValidatedClaims,
        ) -> Result<String, BearerRejection> {
            claims.require_role(SEND)?;
            let sensitive = headers
                .get(http::header::AUTHORIZATION)
                .is_some_and(|v| v.is_sensitive());
            Ok(format!(
                "accepted from {} (authorization sensitive: {sensitive})",
                claims.oid.as_deref().unwrap_or("?")
            ))
        }
        async fn optional(claims: Option<ValidatedClaims>) -> String {
            match claims {
                Some(c) => format!("caller {}", c.oid.as_deref().unwrap_or("?")),
                None => "anonymous".into(),
            }
        }
        async fn admin(claims: ValidatedClaims) -> String {
            format!("admin {}", claims.oid.as_deref().unwrap_or("?"))
        }
        let expect = self.expectations();
        let app = Router::new()
            .route("/commands", get(commands))
            .layer(ValidateBearerLayer::new(validator.clone(), expect.clone()))
            .merge(
                Router::new()
                    .route("/admin", get(admin))
                    .layer(ValidateBearerLayer::new(
                        validator.clone(),
                        expect.clone().role("Commands.Admin"),
                    )),
            )
            .merge(
                Router::new()
                    .route("/optional", get(optional))
                    .layer(ValidateBearerLayer::new(validator, expect).optional()),
            )
            .merge(Router::new().route("/unguarded", get(admin)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server {
            base: format!("http://{addr}"),
            task,
            http: crate::common::plain_http(),
        }
    }
}

struct Server {
    base: String,
    task: tokio::task::JoinHandle<()>,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Status, `WWW-Authenticate` (if any) and body of one call.
struct Answer {
    status: u16,
    challenge: Option<String>,
    body: String,
}

impl Server {
    async fn call(&self, path: &str, authorization: &[&str]) -> Answer {
        let mut request = self.http.get(format!("{}{path}", self.base));
        for value in authorization {
            request = request.header("authorization", *value);
        }
        let response = request.send().await.unwrap();
        Answer {
            status: response.status().as_u16(),
            challenge: response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned()),
            body: response.text().await.unwrap(),
        }
    }

    async fn bearer(&self, path: &str, token: &str) -> Answer {
        self.call(path, &[&format!("Bearer {token}")]).await
    }
}

fn invalid_token(description: &str) -> Option<String> {
    Some(format!(
        "Bearer error=\"invalid_token\", error_description=\"{description}\""
    ))
}

#[tokio::test]
async fn the_provider_service_principal_with_the_role_is_accepted_and_keys_are_fetched_once() {
    let s = Scene::new().await;
    let server = s.serve(s.validator()).await;
    let token = s.provider_token().await;
    for _ in 0..3 {
        let a = server.bearer("/commands", &token).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.challenge, None);
        assert_eq!(
            a.body,
            format!(
                "accepted from {} (authorization sensitive: true)",
                s.provider_sp
            )
        );
    }
    // The scheme is case-insensitive.
    let a = server
        .call("/commands", &[&format!("bearer {token}")])
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        s.entra.jwks_requests(),
        1,
        "keys are fetched once and cached"
    );
}

#[tokio::test]
async fn a_token_from_another_tenant_is_refused_before_any_key_is_fetched() {
    let s = Scene::new().await;
    let server = s.serve(s.validator()).await;
    let other = s
        .token(
            &s.provider,
            &s.provider_secret,
            &s.other,
            "https://vault.azure.net/.default",
        )
        .await;
    let a = server.bearer("/commands", &other).await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.challenge,
        invalid_token("the token is from a tenant that is not accepted")
    );
    assert_eq!(a.body, "");
    assert_eq!(s.entra.jwks_requests(), 0);
    assert_eq!(s.entra.metadata_requests(), 0);
}

#[tokio::test]
async fn another_apps_service_principal_is_refused_even_with_the_role() {
    let s = Scene::new().await;
    let server = s.serve(s.validator()).await;
    let home = s.entra.add_tenant("intruder.example");
    let intruder = s.entra.register_app(&home, "intruder");
    let secret = s.entra.add_secret(&intruder);
    s.entra.consent(&s.customer, &intruder);
    s.entra.grant_role(
        &s.customer,
        &intruder,
        &format!("api://{}", s.api.client_id()),
        SEND,
    );
    let token = s.token(&intruder, &secret, &s.customer, &s.scope).await;
    let a = server.bearer("/commands", &token).await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.challenge,
        invalid_token("the token's caller is not accepted")
    );
    assert!(!a.body.contains(intruder.client_id()));
}

#[tokio::test]
async fn a_valid_token_without_the_required_role_is_forbidden_by_the_layer_and_the_extractor() {
    let s = Scene::new().await;
    let server = s.serve(s.validator()).await;
    let token = s.provider_token().await;
    // The layer's expectations require Commands.Admin.
    let a = server.bearer("/admin", &token).await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.challenge.as_deref(),
        Some(
            "Bearer error=\"insufficient_scope\", error_description=\"the token lacks the required role Commands.Admin\""
        )
    );
    // A provider whose role was not granted: the handler's require_role answers.
    s.entra.revoke_consent(&s.customer, &s.provider);
    let sp = s.entra.consent(&s.customer, &s.provider); // consented again, roles gone
    assert_eq!(
        sp,
        s.entra
            .service_principal_id(&s.customer, &s.provider)
            .unwrap()
    );
    let without_role = s.provider_token().await;
    let server = s
        .serve_for(
            Expectations::new(s.customer.clone())
                .audience(s.api.client_id())
                .object_id(&sp),
        )
        .await;
    let a = server.bearer("/commands", &without_role).await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.challenge.as_deref(),
        Some(
            "Bearer error=\"insufficient_scope\", error_description=\"the token lacks the required role Commands.Send\""
        )
    );
}

impl Scene {
    async fn serve_for(&self, expect: Expectations) -> Server {
        async fn commands(claims: ValidatedClaims) -> Result<String, BearerRejection> {
            claims.require_role(SEND)?;
            Ok("accepted".into())
        }
        let app = Router::new()
            .route("/commands", get(commands))
            .layer(ValidateBearerLayer::new(self.validator(), expect));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server {
            base: format!("http://{addr}"),
            task,
            http: crate::common::plain_http(),
        }
    }
}

#[tokio::test]
async fn an_expired_token_is_refused_once_the_clock_passes_its_expiry_and_skew() {
    let s = Scene::new().await;
    let server = s.serve(s.validator()).await;
    let token = s.provider_token().await;
    assert_eq!(server.bearer("/commands", &token).await.status, 200);
    s.clock.advance(Duration::from_secs(3600 + 301));
    let a = server.bearer("/commands", &token).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.challenge, invalid_token("the token has expired"));
}

#[tokio::test]
async fn garbage_and_malformed_headers_are_refused_without_echoing_them() {
    let s = Scene::new().await;
    let server = s.serve(s.validator()).await;
    let a = server.bearer("/commands", "not.a-jwt.at-all").await;
    assert_eq!(a.status, 401);
    assert_eq!(a.challenge, invalid_token("the token is malformed"));
    assert!(!a.challenge.unwrap().contains("not.a-jwt"));

    let a = server.call("/commands", &["Bearer "]).await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.challenge.as_deref(),
        Some("Bearer error=\"invalid_request\", error_description=\"the bearer token is empty\"")
    );

    let token = s.provider_token().await;
    let bearer = format!("Bearer {token}");
    let a = server.call("/commands", &[&bearer, &bearer]).await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.challenge.as_deref(),
        Some(
            "Bearer error=\"invalid_request\", error_description=\"the request has several Authorization headers\""
        )
    );
    assert_eq!(
        s.entra.jwks_requests(),
        0,
        "nothing was fetched for garbage"
    );
}

#[tokio::test]
async fn no_bearer_token_gets_a_bare_challenge() {
    let s = Scene::new().await;
    let server = s.serve(s.validator()).await;
    for headers in [&[][..], &["Basic dXNlcjpwYXNz"][..]] {
        let a = server.call("/commands", headers).await;
        assert_eq!(a.status, 401);
        assert_eq!(a.challenge.as_deref(), Some("Bearer"));
        assert_eq!(a.body, "");
    }
}

#[tokio::test]
async fn unreachable_keys_are_a_503_not_a_401_and_recover() {
    let s = Scene::new().await;
    let server = s.serve(s.validator()).await;
    let token = s.provider_token().await;
    s.entra.set_keys_unavailable(true);
    let a = server.bearer("/commands", &token).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.challenge, None);
    assert_eq!(a.body, "");
    assert_eq!(s.entra.jwks_requests(), 0);
    // While the failure is remembered (a short back-off), callers are not let through to
    // the key endpoints again: still a 503, and no new fetch.
    let fetches = s.entra.metadata_requests();
    s.entra.set_keys_unavailable(false);
    let a = server.bearer("/commands", &token).await;
    assert_eq!(a.status, 503);
    assert_eq!(s.entra.metadata_requests(), fetches);
    s.clock.advance(Duration::from_secs(11));
    let a = server.bearer("/commands", &token).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(s.entra.jwks_requests(), 1);
}

#[tokio::test]
async fn an_optional_layer_lets_anonymous_requests_through_but_still_refuses_bad_tokens() {
    let s = Scene::new().await;
    let server = s.serve(s.validator()).await;
    let a = server.call("/optional", &[]).await;
    assert_eq!((a.status, a.body.as_str()), (200, "anonymous"));
    let token = s.provider_token().await;
    let a = server.bearer("/optional", &token).await;
    assert_eq!(a.body, format!("caller {}", s.provider_sp));
    let a = server.bearer("/optional", "garbage").await;
    assert_eq!(a.status, 401);
    assert_eq!(a.challenge, invalid_token("the token is malformed"));
}

#[tokio::test]
async fn extracting_claims_on_a_route_without_the_layer_is_a_500_naming_the_layer() {
    let s = Scene::new().await;
    let server = s.serve(s.validator()).await;
    let token = s.provider_token().await;
    let a = server.bearer("/unguarded", &token).await;
    assert_eq!(a.status, 500);
    assert_eq!(a.challenge, None);
    assert!(a.body.contains("ValidateBearerLayer"), "{}", a.body);
}

/// The layer is plain tower: here it wraps a bare `service_fn` over `http::Request<String>`
/// (as under hyper or tonic), with no axum in between.
#[tokio::test]
async fn the_layer_wraps_any_tower_service_and_hands_it_the_claims() {
    use tower::{ServiceBuilder, ServiceExt as _};

    let s = Scene::new().await;
    let service = ServiceBuilder::new()
        .layer(ValidateBearerLayer::new(s.validator(), s.expectations()))
        .service_fn(|request: http::Request<String>| async move {
            let oid = request
                .extensions()
                .get::<ValidatedClaims>()
                .and_then(|c| c.oid.clone())
                .unwrap_or_default();
            Ok::<_, std::convert::Infallible>(http::Response::new(oid))
        });
    let token = s.provider_token().await;
    let request = http::Request::builder()
        .header("authorization", format!("Bearer {token}"))
        .body(String::new())
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.body(), &s.provider_sp);

    let request = http::Request::new(String::new());
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(response.body(), "");
}

/// Expectations chosen per route, never from a request header: a token for the billing
/// API, sent to the orders route with `Host: billing.*` (the header a `per_request`
/// closure keyed on `Host` would have trusted), is refused before the orders handler runs;
/// the billing route accepts it.
#[tokio::test]
async fn a_token_for_one_api_never_reaches_another_routes_handler() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let s = Scene::new().await;
    let billing = s.entra.register_app(&s.customer, "customer-billing");
    let billing_uri = s.entra.expose_api(&billing, None);
    s.entra
        .grant_role(&s.customer, &s.provider, &billing_uri, SEND);
    let billing_token = s
        .token(
            &s.provider,
            &s.provider_secret,
            &s.customer,
            &format!("{billing_uri}/.default"),
        )
        .await;

    let orders_ran = Arc::new(AtomicUsize::new(0));
    let counter = orders_ran.clone();
    let orders_expect = s.expectations();
    let billing_expect = Expectations::new(s.customer.clone())
        .audience(billing.client_id())
        .object_id(&s.provider_sp)
        .app_id(s.provider.client_id());
    let orders = Router::new()
        .route(
            "/orders",
            get(move |_: ValidatedClaims| async move {
                counter.fetch_add(1, Ordering::SeqCst);
                "orders"
            }),
        )
        .route_layer(ValidateBearerLayer::new(s.validator(), orders_expect));
    let billing_routes = Router::new()
        .route("/billing", get(|_: ValidatedClaims| async { "billing" }))
        .route_layer(ValidateBearerLayer::new(s.validator(), billing_expect));
    let app = orders.merge(billing_routes);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let http = crate::common::plain_http();
    let wrong = http
        .get(format!("http://{addr}/orders"))
        .header("host", "billing.customer.example")
        .bearer_auth(&billing_token)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        orders_ran.load(Ordering::SeqCst),
        0,
        "the orders handler never ran"
    );
    let right = http
        .get(format!("http://{addr}/billing"))
        .bearer_auth(&billing_token)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    let orders_token = s.provider_token().await;
    let own = http
        .get(format!("http://{addr}/orders"))
        .bearer_auth(&orders_token)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    assert_eq!(orders_ran.load(Ordering::SeqCst), 1);
    server.abort();
}

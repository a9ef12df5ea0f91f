//! Both sides of the SignalR walkthrough's check. The *customer* hosts an API in their own
//! tenant that accepts calls only from the provider app's service principal there (its
//! `oid`) holding the app role `Commands.Send`; the *provider* calls it with an app-only
//! token from the customer's tenant, through `Cached<ClientSecret>`.
//!
//! The API is an axum service behind `ValidateBearerLayer` (feature `axum`); the handler
//! extracts `ValidatedClaims` and checks the role.
//!
//! Mock (default): `cargo run --example customer_api`
//! Real Azure: set `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET` (the provider app),
//! `CUSTOMER_TENANT_ID` (a GUID), `CUSTOMER_API_CLIENT_ID` (the customer's API app
//! registration, which defines the `Commands.Send` app role) and
//! `PROVIDER_SP_OBJECT_ID` (the provider app's service principal object id in the
//! customer tenant, which the customer admin granted `Commands.Send`). The API then runs
//! on loopback here and validates real tokens against Entra's keys.

mod support;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use azure_cross_tenant::{
    BearerRejection, Cached, ClientSecret, Cloud, Expectations, TenantCredentialProvider, TenantId,
    TokenValidator, ValidateBearerLayer, ValidatedClaims,
};
use support::{MockWorld, env, show_token};

const ROLE: &str = "Commands.Send";

/// The customer's API: one route, accepting commands from the provider only.
fn customer_api(validator: TokenValidator, expect: Expectations) -> Router {
    async fn send_command(
        claims: ValidatedClaims,
        body: String,
    ) -> Result<(StatusCode, String), BearerRejection> {
        claims.require_role(ROLE)?; // 403 insufficient_scope without it
        Ok((
            StatusCode::ACCEPTED,
            format!(
                "command {body:?} accepted from service principal {}",
                claims.oid.as_deref().unwrap_or("?")
            ),
        ))
    }
    Router::new()
        .route("/commands", post(send_command))
        .layer(ValidateBearerLayer::new(validator, expect))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _mock; // keeps the mock world alive in mock mode
    let (provider, cloud, customer, api_client_id, provider_sp) =
        if let (Some(id), Some(secret), Some(tenant), Some(api), Some(sp)) = (
            env("AZURE_CLIENT_ID"),
            env("AZURE_CLIENT_SECRET"),
            env("CUSTOMER_TENANT_ID"),
            env("CUSTOMER_API_CLIENT_ID"),
            env("PROVIDER_SP_OBJECT_ID"),
        ) {
            let provider = Cached::new(ClientSecret::new(id, secret).build()?);
            (
                provider,
                Cloud::Public,
                tenant.parse::<TenantId>()?,
                api,
                sp,
            )
        } else {
            let world = MockWorld::start().await;
            // The customer registers its API in its own tenant and grants the provider's
            // service principal the role.
            let api = world
                .entra
                .register_app(&world.customer, "customer-commands");
            let api_uri = world.entra.expose_api(&api, None);
            world
                .entra
                .grant_role(&world.customer, &world.app, &api_uri, ROLE);
            let provider = Cached::new(
                ClientSecret::new(world.app.client_id(), &world.secret)
                    .authority_host(world.entra.uri())
                    .build()?,
            );
            let (cloud, customer, sp) = (
                world.entra.cloud(),
                world.customer.clone(),
                world.customer_sp.clone(),
            );
            let api_id = api.client_id().to_owned();
            _mock = world;
            (provider, cloud, customer, api_id, sp)
        };

    // The customer's side: accept only the provider's service principal in this tenant.
    let expect = Expectations::new(customer.clone())
        .audience(api_client_id.as_str())
        .audience(format!("api://{api_client_id}"))
        .object_id(provider_sp.as_str())
        .app_id(provider.client_id());
    let validator = TokenValidator::new(cloud)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_url = format!("http://{}/commands", listener.local_addr()?);
    let app = customer_api(validator, expect);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!("customer API listening at {api_url}");

    // The provider's side: an app-only token from the customer's tenant for the API.
    let scope = format!("api://{api_client_id}/.default");
    let token = provider.get_token(&customer, &[&scope]).await?;
    show_token(token.secret());
    let http = reqwest::Client::new();
    let answer = http
        .post(&api_url)
        .bearer_auth(token.secret())
        .body("restart-worker-7")
        .send()
        .await?;
    let status = answer.status();
    println!("provider call: {status} {}", answer.text().await?);
    if status != StatusCode::ACCEPTED {
        return Err(format!("the customer API refused the provider: {status}").into());
    }

    // Anyone else is turned away, and told why in the challenge only.
    let anonymous = http.post(&api_url).body("x").send().await?;
    let challenge = header(&anonymous, "www-authenticate");
    println!(
        "no token:      {} WWW-Authenticate: {challenge}",
        anonymous.status()
    );
    let garbage = http
        .post(&api_url)
        .bearer_auth("not-a-token")
        .send()
        .await?;
    let challenge = header(&garbage, "www-authenticate");
    println!(
        "garbage token: {} WWW-Authenticate: {challenge}",
        garbage.status()
    );
    if anonymous.status() != 401 || garbage.status() != 401 {
        return Err("the customer API let an unauthenticated call through".into());
    }
    server.abort();
    Ok(())
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

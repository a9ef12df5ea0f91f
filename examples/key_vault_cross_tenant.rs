//! Read a secret from a customer's Key Vault with the official `SecretClient`, using an
//! app-only token issued by the customer's tenant.
//!
//! Mock (default): `cargo run --example key_vault_cross_tenant`
//! Real Azure: set `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` (the multitenant app),
//! `CUSTOMER_TENANT_ID`, `KEY_VAULT_URL` and optionally `SECRET_NAME`.

mod support;

use azure_core::http::ClientOptions;
use azure_cross_tenant::{Cached, ClientSecret, TenantCredentialExt, TenantId};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use mock_entra::{MockResource, ResourceResponse};
use serde_json::json;
use support::{MockWorld, env};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = env("SECRET_NAME").unwrap_or_else(|| "db-password".into());
    if let (Some(client_id), Some(secret), Some(tenant), Some(vault)) = (
        env("AZURE_CLIENT_ID"),
        env("AZURE_CLIENT_SECRET"),
        env("CUSTOMER_TENANT_ID"),
        env("KEY_VAULT_URL"),
    ) {
        let provider = Cached::new(ClientSecret::new(client_id, secret).build()?);
        let tenant: TenantId = tenant.parse()?;
        let client = SecretClient::new(&vault, provider.for_tenant(tenant), None)?;
        let secret = client.get_secret(&name, None).await?.into_model()?;
        println!(
            "{name} = {} characters (value not printed)",
            secret.value.unwrap_or_default().len()
        );
        return Ok(());
    }

    let world = MockWorld::start().await;
    world.entra.grant_role(
        &world.customer,
        &world.app,
        "https://vault.azure.net",
        "Secrets.Read",
    );
    let vault = MockResource::start(
        &world.entra,
        &world.customer,
        "https://vault.azure.net",
        |request, _claims| {
            ResourceResponse::new(200).set_body_json(json!({
                "value": "s3cr3t-from-the-customer-vault",
                "id": format!("https://{}{}/0123", request.url.authority(), request.url.path()),
                "attributes": {"enabled": true},
            }))
        },
    )
    .await;

    // One provider (and cache) for every tenant; one SDK client per tenant.
    let provider = Cached::new(
        ClientSecret::new(world.app.client_id(), &world.secret)
            .authority_host(world.entra.uri())
            .build()?,
    );
    let options = SecretClientOptions {
        client_options: ClientOptions {
            transport: Some(mock_entra::loopback_transport()),
            ..Default::default()
        },
        verify_challenge_resource: Some(false), // the fake vault lives on 127.0.0.1
        ..Default::default()
    };
    let endpoint = vault.https_uri();
    let client = SecretClient::new(
        &endpoint,
        provider.for_tenant(world.customer.clone()),
        Some(options),
    )?;

    println!(
        "\nGET {endpoint}/secrets/{name} in tenant {}",
        world.customer
    );
    let secret = client.get_secret(&name, None).await?.into_model()?;
    println!("  {name} = {:?}", secret.value.unwrap_or_default());
    let claims = &vault.accepted()[0];
    println!(
        "  the vault saw: tid={} oid={} (the app's service principal in the customer tenant: {}) aud={} roles={:?}",
        claims.tid.as_deref().unwrap_or("-"),
        claims.oid.as_deref().unwrap_or("-"),
        world.customer_sp,
        claims.aud.join(","),
        claims.roles
    );
    Ok(())
}

//! The managed-identity-as-federated-credential walkthrough: no secret anywhere. A
//! user-assigned managed identity in the provider's home tenant gets a token for
//! `api://AzureADTokenExchange`; the multitenant app exchanges it for an ARM token in the
//! customer tenant and lists the customer subscription's resource groups.
//!
//! Mock (default): `cargo run --example arm_resource_groups` (azure_identity's real
//! managed identity credential talks to the mock's IMDS endpoint).
//! Real Azure (on a VM or App Service with the identity assigned): set `AZURE_CLIENT_ID`
//! (the app), `MANAGED_IDENTITY_CLIENT_ID`, `CUSTOMER_TENANT_ID`, `SUBSCRIPTION_ID`.

mod support;

use azure_core::http::ClientOptions;
use azure_cross_tenant::{
    Cached, FederatedAssertion, ManagedIdentity, TenantId, TokenCredentialSource,
};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use mock_entra::{MockResource, ResourceResponse};
use serde_json::json;
use support::{MockWorld, env, show_token};

const ARM: &str = "https://management.azure.com/.default";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _mock;
    let (provider, tenant, arm, subscription) = if let (
        Some(app),
        Some(mi),
        Some(tenant),
        Some(sub),
    ) = (
        env("AZURE_CLIENT_ID"),
        env("MANAGED_IDENTITY_CLIENT_ID"),
        env("CUSTOMER_TENANT_ID"),
        env("SUBSCRIPTION_ID"),
    ) {
        let credential = FederatedAssertion::managed_identity(
            app,
            ManagedIdentity::UserAssigned { client_id: mi },
        )
        .build()?;
        let tenant: TenantId = tenant.parse()?;
        (
            Cached::new(credential),
            tenant,
            "https://management.azure.com".to_owned(),
            sub,
        )
    } else {
        let world = MockWorld::start().await;
        let identity = world
            .entra
            .add_managed_identity(&world.home, "saas-identity");
        world.entra.trust_managed_identity(&world.app, &identity);
        println!(
            "federated identity credential: issuer={} subject={} audience=api://AzureADTokenExchange",
            world.entra.issuer_v2(&world.home),
            identity.object_id
        );
        let imds = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
            user_assigned_id: Some(UserAssignedId::ClientId(identity.client_id.clone())),
            client_options: ClientOptions {
                transport: Some(world.entra.managed_identity_transport()),
                ..Default::default()
            },
        }))?;
        let credential = FederatedAssertion::new(
            world.app.client_id(),
            TokenCredentialSource::new(imds, "api://AzureADTokenExchange"),
        )
        .authority_host(world.entra.uri())
        .build()?;
        let subscription = uuid::Uuid::new_v4().to_string();
        let arm = MockResource::start(
            &world.entra,
            &world.customer,
            "https://management.azure.com",
            |_, _| {
                ResourceResponse::new(200).set_body_json(json!({"value": [
                    {"name": "rg-customer-app", "location": "westeurope"},
                    {"name": "rg-customer-data", "location": "northeurope"},
                ]}))
            },
        )
        .await;
        let url = arm.uri();
        let tenant = world.customer.clone();
        _mock = (world, arm);
        (Cached::new(credential), tenant, url, subscription)
    };

    let token = provider.get_token(&tenant, &[ARM]).await?;
    show_token(token.secret());
    let url = format!("{arm}/subscriptions/{subscription}/resourcegroups?api-version=2021-04-01");
    println!("GET {url}");
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token.secret())
        .send()
        .await?;
    let status = response.status();
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await?)?;
    if !status.is_success() {
        return Err(format!("ARM answered HTTP {status}: {body}").into());
    }
    for rg in body["value"].as_array().into_iter().flatten() {
        println!(
            "  {} ({})",
            rg["name"].as_str().unwrap_or("?"),
            rg["location"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

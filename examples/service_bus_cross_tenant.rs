//! The Architecture Center's cross-tenant pattern: the provider sends a command to a queue
//! in the customer's Service Bus namespace and polls a status queue, with app-only tokens
//! from the customer's tenant over the Service Bus REST API.
//!
//! Mock (default): `cargo run --example service_bus_cross_tenant`
//! Real Azure: set `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `CUSTOMER_TENANT_ID`,
//! `SERVICE_BUS_NAMESPACE` (e.g. `fabrikam.servicebus.windows.net`), and optionally
//! `COMMAND_QUEUE` / `STATUS_QUEUE` (default `commands` / `status`). The app needs the
//! "Azure Service Bus Data Sender" and "Receiver" roles in the customer's namespace.

mod support;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_cross_tenant::{Cached, ClientSecret, TenantId};
use mock_entra::{MockResource, ResourceResponse};
use support::{MockWorld, env, show_token};

const SCOPE: &str = "https://servicebus.azure.net/.default";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let commands = env("COMMAND_QUEUE").unwrap_or_else(|| "commands".into());
    let status = env("STATUS_QUEUE").unwrap_or_else(|| "status".into());
    let _mock; // keeps the mock world alive in mock mode
    let (provider, tenant, namespace_url, http) =
        if let (Some(id), Some(secret), Some(tenant), Some(ns)) = (
            env("AZURE_CLIENT_ID"),
            env("AZURE_CLIENT_SECRET"),
            env("CUSTOMER_TENANT_ID"),
            env("SERVICE_BUS_NAMESPACE"),
        ) {
            let provider = Cached::new(ClientSecret::new(id, secret).build()?);
            let tenant: TenantId = tenant.parse()?;
            (
                provider,
                tenant,
                format!("https://{ns}"),
                reqwest::Client::new(),
            )
        } else {
            let world = MockWorld::start().await;
            let bus = fake_service_bus(&world, commands.clone(), status.clone()).await;
            let provider = Cached::new(
                ClientSecret::new(world.app.client_id(), &world.secret)
                    .authority_host(world.entra.uri())
                    .build()?,
            );
            let url = bus.uri();
            let tenant = world.customer.clone();
            _mock = (world, bus);
            (provider, tenant, url, reqwest::Client::new())
        };

    // Send the command.
    let token = provider.get_token(&tenant, &[SCOPE]).await?;
    show_token(token.secret());
    let command_id = uuid::Uuid::new_v4().to_string();
    let url = format!("{namespace_url}/{commands}/messages");
    println!("POST {url}");
    let sent = http
        .post(&url)
        .bearer_auth(token.secret())
        .header("content-type", "application/json")
        .header(
            "BrokerProperties",
            format!(r#"{{"MessageId":"{command_id}"}}"#),
        )
        .body(serde_json::json!({"command": "rotate-keys", "id": command_id}).to_string())
        .send()
        .await?;
    println!("  -> HTTP {}", sent.status().as_u16());
    if !sent.status().is_success() {
        return Err(format!("send failed: HTTP {}", sent.status()).into());
    }

    // Poll the status queue (receive-and-delete), each time through the cache.
    for attempt in 1..=5 {
        let token = provider.get_token(&tenant, &[SCOPE]).await?;
        let url = format!("{namespace_url}/{status}/messages/head?timeout=5");
        let got = http.delete(&url).bearer_auth(token.secret()).send().await?;
        match got.status().as_u16() {
            200 => {
                println!("DELETE {url}\n  -> status message: {}", got.text().await?);
                return Ok(());
            }
            204 => {
                println!("  (attempt {attempt}: no status yet)");
                #[allow(clippy::disallowed_methods)] // polling a real queue takes real time
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => return Err(format!("receive failed: HTTP {other}").into()),
        }
    }
    Err("no status message arrived".into())
}

/// A customer namespace with two queues; the customer's worker answers each command on
/// the status queue.
async fn fake_service_bus(world: &MockWorld, commands: String, status: String) -> MockResource {
    let queues: Arc<Mutex<HashMap<String, VecDeque<String>>>> = Arc::default();
    MockResource::start(
        &world.entra,
        &world.customer,
        "https://servicebus.azure.net",
        move |request, _claims| {
            let segments: Vec<&str> = request
                .url
                .path_segments()
                .map(|s| s.collect())
                .unwrap_or_default();
            let mut queues = queues.lock().unwrap();
            match (request.method.as_str(), segments.as_slice()) {
                ("POST", [queue, "messages"]) => {
                    let body = String::from_utf8_lossy(&request.body).into_owned();
                    queues
                        .entry((*queue).to_owned())
                        .or_default()
                        .push_back(body.clone());
                    if *queue == commands {
                        let id = serde_json::from_str::<serde_json::Value>(&body)
                            .ok()
                            .map(|v| v["id"].clone());
                        queues
                            .entry(status.clone())
                            .or_default()
                            .push_back(serde_json::json!({"id": id, "status": "done"}).to_string());
                    }
                    ResourceResponse::new(201)
                }
                ("DELETE", [queue, "messages", "head"]) => {
                    match queues.get_mut(*queue).and_then(VecDeque::pop_front) {
                        Some(m) => ResourceResponse::new(200).set_body_string(m),
                        None => ResourceResponse::new(204),
                    }
                }
                _ => ResourceResponse::new(404),
            }
        },
    )
    .await
}

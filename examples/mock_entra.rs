//! Serves MockEntra standalone, so tests in any language can use it.
//!
//! Run: `cargo run --example mock_entra -- --port 8400`
//!
//! Prints one JSON document describing what it set up (authority host, tenants, app,
//! secrets, service principal ids), then serves until interrupted.

use std::net::TcpListener;

use azure_cross_tenant::testing::MockEntra;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = parse_port(std::env::args().skip(1))?;
    let mut builder = MockEntra::builder();
    if let Some(port) = port {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
        builder = builder.listener(listener);
    }
    let entra = builder.start().await;
    let home = entra.add_tenant("provider.example");
    let consented = entra.add_tenant("fabrikam.example");
    let not_consented = entra.add_tenant("northwind.example");
    let app = entra.register_app(&home, "saas-backend");
    let secret = entra.add_secret(&app);
    let expired = entra.add_expired_secret(&app);
    let sp = entra.consent(&consented, &app);
    entra.grant_role(&consented, &app, "https://vault.azure.net", "Secrets.Read");

    let authority = entra.uri().to_string();

    let setup = serde_json::json!({
        "authority_host": authority,
        "tenants": {
            "home": { "id": home.as_str(), "domain": "provider.example" },
            "consented": { "id": consented.as_str(), "domain": "fabrikam.example", "service_principal_object_id": sp },
            "not_consented": { "id": not_consented.as_str(), "domain": "northwind.example" },
        },
        "app": {
            "client_id": app.client_id(),
            "secret": secret,
            "expired_secret": expired,
        },
        "token_endpoint": format!("{authority}{}/oauth2/v2.0/token", consented.as_str()),
        "scope_example": "https://vault.azure.net/.default",
    });
    println!("{}", serde_json::to_string_pretty(&setup)?);
    eprintln!("serving; press Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    Ok(())
}

fn parse_port(mut args: impl Iterator<Item = String>) -> Result<Option<u16>, String> {
    let mut port = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let v = args.next().ok_or("--port needs a value")?;
                port = Some(
                    v.parse()
                        .map_err(|_| format!("--port {v:?} is not a port number"))?,
                );
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: mock_entra [--port N]"
                ));
            }
        }
    }
    Ok(port)
}

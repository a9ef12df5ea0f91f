//! MockEntra standalone, the short way: the `mock-entra` binary's demo scenario in process.
//!
//! Prefer the binary, which has every flag (https, scenario files, public URL...):
//! `cargo run --features mock-server --bin mock-entra -- --tls --ca-file ca.pem`.
//! This example stays for `cargo run --example mock_entra -- --port 8400`.
//!
//! It prints the same single ready line of JSON, then serves until interrupted.

use std::net::TcpListener;

use azure_cross_tenant::testing::MockEntra;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = MockEntra::builder().scenario(serde_json::from_str(include_str!(
        "../src/bin/demo-scenario.json"
    ))?);
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (None, _) => {}
        (Some("--port"), Some(port)) => {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("--port {port:?} is not a port"))?;
            builder = builder.listener(TcpListener::bind(("127.0.0.1", port))?);
        }
        _ => {
            return Err(
                "usage: mock_entra [--port N] (the mock-entra binary has every flag)".into(),
            );
        }
    }
    let entra = builder.start().await;
    println!("{}", entra.ready_info());
    eprintln!("serving at {}; press Ctrl-C to stop", entra.uri());
    tokio::signal::ctrl_c().await?;
    Ok(())
}

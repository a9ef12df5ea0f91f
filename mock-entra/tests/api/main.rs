//! The mock's own behaviour over real HTTP on loopback, as clients in any language meet
//! it: wire format, metadata and keys, sign-in and consent, the server and its control
//! API, the binary, and its lifecycle. These tests use no code of the library the mock
//! is an oracle for (tokens are decoded here with base64 and serde_json). One binary with
//! a module per area, so the suite links once.

#![allow(unreachable_pub)]

/// A reqwest client as `reqwest::Client::new()` builds it (redirects followed), but
/// trusting no certificate: these tests speak http to the mock (or name their CA), and
/// `Client::new()` reads and parses the system's whole trust store for every client, a
/// third of this suite's CPU in a debug build.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only(Vec::new())
        .build()
        .expect("a reqwest client")
}

// The binary needs the feature that lets it load a CA (default on).
#[cfg(feature = "custom-ca")]
mod binary;
mod fidelity;
mod lifecycle;
mod metadata;
mod pages;
mod safety;
mod server;
mod signin;
mod wire;

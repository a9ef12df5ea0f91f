//! The mock's own behaviour over real HTTP on loopback, as clients in any language meet
//! it: wire format, metadata and keys, sign-in and consent, the server and its control
//! API, the binary, and its lifecycle. These tests use no code of the library the mock
//! is an oracle for (tokens are decoded here with base64 and serde_json). One binary with
//! a module per area, so the suite links once.

#![allow(unreachable_pub)]

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

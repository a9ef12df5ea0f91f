//! Integration tests through the public API, against `MockEntra` over real HTTP on
//! loopback (and a real Redis for the shared cache). One binary with a module per
//! behaviour area, so the suite links once.

#![allow(unreachable_pub)]

mod common;
mod loopback;

mod azure_sdk;
mod cache;
mod certificate;
mod errors;
mod faults;
mod federated;
mod inbound;
mod input;
#[cfg(feature = "redis")]
mod l2;
mod mock_server;
mod onboarding;
mod onboarding_admin;
mod redaction;
mod redirects;
mod rotation;
mod secret;
mod validate;

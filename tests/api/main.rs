//! Integration tests through the public API, against `MockEntra` over real HTTP on
//! loopback (and a real Redis for the shared cache). One binary with a module per
//! behaviour area, so the suite links once.
//!
//! # A test that needs a server
//!
//! A test that needs a program from outside Rust (`redis-server`, PostgreSQL, Chromium and
//! chromedriver) starts its own, on a free loopback port, and stops it when done
//! (`l2/servers.rs` for Redis, `tests/sql/servers.rs` for PostgreSQL). It is marked with
//! the server and how to get it, in these words:
//!
//! ```text
//! #[ignore = "needs redis-server: apt-get install redis-server, then --include-ignored"]
//! #[ignore = "needs PostgreSQL: apt-get install postgresql, then --include-ignored"]
//! #[ignore = "needs chromium and chromedriver: apt-get install chromium chromium-driver, then --include-ignored"]
//! ```
//!
//! so that `cargo test` on a machine without it reports the test as *ignored*, with the
//! reason, and never as passed. `cargo test ... -- --include-ignored` runs it, and `.ci/run`
//! always does: there, a missing server fails the test (panic naming what to install);
//! never return early from a test because something is missing. Tests written for both
//! Redis backends with `l2::on_both!` get the mark from the macro. A libtest-mimic harness
//! (`tests/sql/main.rs`) does the same with its trials: ignored with the reason unless
//! `--ignored`/`--include-ignored` asks, then run with the ignored flag.
//!
//! `#[ignore]` means nothing else in this suite: a test that needs a process of its own
//! (process-wide environment variables, a global subscriber) runs itself again as a child
//! through `common::run_child` and `common::child_part`, so `--include-ignored` never runs
//! half of such a test alone. Features: a module or test that needs one is gated with
//! `#[cfg(feature = "...")]`, so `cargo test` with any feature set compiles.

#![allow(unreachable_pub)]

mod common;
mod logs;
mod loopback;

// The azure_core adapter, and managed identities through azure_identity.
#[cfg(feature = "azure-core")]
mod azure_sdk;
mod cache;
mod certificate;
mod errors;
mod faults;
#[cfg(feature = "azure-core")]
mod federated;
mod inbound;
mod input;
#[cfg(feature = "azure-core")]
mod keyvault;
#[cfg(feature = "redis")]
mod l2;
#[cfg(feature = "azure-core")]
mod managed_identity;
mod mock_server;
mod onboarding;
mod onboarding_admin;
mod redaction;
mod redirects;
mod refusals;
mod rotation;
mod secret;
mod tenant_identity;
mod validate;

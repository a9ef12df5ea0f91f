//! The ways the app proves who it is, one file each. Each is a
//! [`TenantCredentialProvider`](crate::TenantCredentialProvider) that makes one token
//! request per call; wrap it in [`Cached`](crate::Cached) to reuse tokens.
//!
//! Private: `lib.rs` re-exports what is public, so each type has one path.

mod assertion;
mod builder;
mod certificate;
mod federated;
#[cfg(feature = "azure-core")]
mod keyvault;
mod secret;
mod set;
mod shared_assertion;
mod sources;
mod status;

pub use assertion::{Assertion, AssertionSource};
pub use builder::CredentialBuilder;
pub use certificate::{AssertionAlgorithm, ClientCertificate};
pub use federated::FederatedAssertion;
#[cfg(feature = "azure-core")]
pub use keyvault::KeyVaultCertificate;
pub use secret::ClientSecret;
pub use set::{CredentialSet, CredentialSetBuilder};
pub use sources::{FnSource, TokenFile, assertion_fn};
#[cfg(feature = "azure-core")]
pub use sources::{ManagedIdentity, TokenCredentialSource};
pub use status::{CredentialStats, CredentialStatus};

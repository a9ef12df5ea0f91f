//! For services that *receive* tokens (feature `axum`): [`ValidateBearerLayer`], a plain
//! `tower` layer for hyper, tonic or axum, and [`ValidatedClaims`], the axum extractor.
//! The answers the layer gives are on [`ValidateBearerLayer`].

mod extract;
mod layer;
#[cfg(fuzzing)]
pub(crate) use layer::fuzz_authorization;
mod rejection;

pub use extract::ValidatedClaims;
pub use layer::{ValidateBearer, ValidateBearerLayer};
pub use rejection::BearerRejection;

//! Onboarding as a drop-in: the [`OnboardingStore`] every replica shares (pending flows,
//! spent states; in the registry's database or, [`SharedOnboardingStore`], in Redis) and, with feature `axum`, [`OnboardingRoutes`]: the whole flow as a
//! `Router` a web app mounts.

#[cfg(feature = "axum")]
mod outcome;
#[cfg(feature = "axum")]
mod routes;
mod shared_store;
mod store;

#[cfg(feature = "axum")]
pub use outcome::{OnboardingOutcome, OutcomeReason};
#[cfg(feature = "axum")]
pub use routes::{OnboardingRoutes, OnboardingRoutesBuilder};
pub use shared_store::SharedOnboardingStore;
pub use store::{InMemoryOnboardingStore, OnboardingStore};

//! Onboarding as a drop-in: the [`OnboardingStore`] every replica shares (pending flows,
//! spent states) and, with feature `axum`, [`OnboardingRoutes`]: the whole flow as a
//! `Router` a web app mounts.

#[cfg(feature = "axum")]
mod outcome;
#[cfg(feature = "axum")]
mod routes;
mod store;

#[cfg(feature = "axum")]
pub use outcome::{OnboardingOutcome, OutcomeReason};
#[cfg(feature = "axum")]
pub use routes::{OnboardingRoutes, OnboardingRoutesBuilder};
pub use store::{InMemoryOnboardingStore, OnboardingStore};

//! Onboarding as a drop-in: the [`OnboardingStore`] every replica shares (pending flows,
//! spent states) and, with feature `axum`, [`OnboardingRoutes`]: the whole flow as a
//! `Router` a web app mounts.

mod store;

pub use store::{InMemoryOnboardingStore, OnboardingStore};

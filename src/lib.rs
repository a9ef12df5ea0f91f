// The crate's documentation is the README, whose examples are complete programs (no hidden
// lines, so they read right on GitHub and crates.io) and run as doc tests. They use the
// features below, so the README is the crate docs when those are on: on docs.rs (every
// feature) and under `cargo test --all-features`, which is how CI tests them.
#![cfg_attr(
    all(feature = "azure-core", feature = "redis", feature = "axum", feature = "sqlite"),
    doc = include_str!("../README.md")
)]
#![cfg_attr(
    not(all(
        feature = "azure-core",
        feature = "redis",
        feature = "axum",
        feature = "sqlite"
    )),
    doc = "App-only tokens from every customer tenant that consented to your multitenant Entra \
           application: credentials, a per-tenant cache, claim validation. The guide is the \
           README (README.md, or this page built with every feature, as on docs.rs)."
)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod authority;
#[cfg(feature = "azure-core")]
#[cfg_attr(docsrs, doc(cfg(feature = "azure-core")))]
mod azure;
mod cache;
mod clock;
mod cloud;
mod consent;
mod credential;
mod error;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod http;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
mod inbound;
mod jwks;
mod jwt;
mod l2;
mod onboarding;
mod provider;
mod registry;
mod scope;
mod seal;
mod tenant;
mod token;
mod validate;

// The public interface is:
pub use authority::RetryPolicy;
#[cfg(feature = "azure-core")]
pub use azure::{TenantCredential, TenantCredentialExt, find_error};
pub use cache::{CacheOptions, CacheStats, Cached};
#[cfg(feature = "test-util")]
pub use clock::ManualClock;
pub use clock::{Clock, SleepFuture, Sleeper, SystemClock, TokioSleeper};
pub use cloud::Cloud;
pub use consent::{
    AdminProof, DEFAULT_ADMIN_ROLES, OnboardedTenant, Onboarding, OnboardingBuilder,
    OnboardingError, PendingConsent, PendingSignIn, ResponseMode, SignInClient, SignInTenant,
    SignedInAdmin,
};
pub use credential::{
    Assertion, AssertionAlgorithm, AssertionSource, ClientCertificate, ClientSecret,
    CredentialBuilder, CredentialSet, CredentialSetBuilder, CredentialStats, CredentialStatus,
    FederatedAssertion, FnSource, TokenFile, assertion_fn,
};
#[cfg(feature = "azure-core")]
pub use credential::{KeyVaultCertificate, ManagedIdentity, TokenCredentialSource};
pub use error::{BearerError, ValidationError, ValidationErrorClass};
pub use error::{EntraError, Error, FederationField, Mismatch, TransportKind};
pub use http::HttpClient;
#[cfg(feature = "axum")]
pub use inbound::{BearerRejection, ValidateBearer, ValidateBearerLayer, ValidatedClaims};
pub use jwt::Claims;
pub use l2::{L2Error, L2Store, SharedCache};
#[cfg(feature = "redis")]
pub use l2::{RedisAuthStats, RedisEntraAuth, RedisStore};
pub use onboarding::{InMemoryOnboardingStore, OnboardingStore, SharedOnboardingStore};
#[cfg(feature = "axum")]
pub use onboarding::{OnboardingOutcome, OnboardingRoutes, OnboardingRoutesBuilder, OutcomeReason};
pub use provider::TenantCredentialProvider;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use registry::SqlRegistry;
pub use registry::{
    FleetReport, HealthChange, InMemoryRegistry, LinkError, OnboardingState, Relink, RoundOptions,
    TenantCondition, TenantHealth, TenantHealthMonitor, TenantRecord, TenantRegistry, Watched,
    decide_link, for_each_active,
};
pub use scope::Scopes;
pub use seal::SealingKeys;
pub use tenant::TenantId;
pub use token::AccessToken;
pub use validate::{
    Discovery, Expectations, IdTokenClaims, IdTokenExpectations, TokenValidator,
    TokenValidatorBuilder, TokenVersion, ValidatedTokenExt,
};

/// Deliberate opt-outs of this crate's checks, named so at every call site.
pub mod insecure {
    pub use crate::jwt::decode_unverified;
}

/// Compile-time checks that the public types can cross threads.
#[allow(dead_code)]
fn _assert_impls() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Error>();
    send_sync::<AccessToken>();
    send_sync::<TenantId>();
    send_sync::<ClientSecret>();
    send_sync::<FederatedAssertion>();
    send_sync::<ClientCertificate>();
    send_sync::<Cloud>();
    send_sync::<Cached<ClientSecret>>();
    send_sync::<Onboarding>();
    send_sync::<TenantHealthMonitor>();
    send_sync::<InMemoryOnboardingStore>();
    send_sync::<SharedOnboardingStore>();
    send_sync::<OnboardingError>();
    #[cfg(feature = "axum")]
    send_sync::<ValidateBearerLayer>();
    send_sync::<TokenValidator>();
    send_sync::<Expectations>();
    send_sync::<ValidationError>();
    send_sync::<CredentialBuilder<ClientSecret>>();
    send_sync::<CredentialBuilder<ClientCertificate>>();
    send_sync::<CredentialBuilder<FederatedAssertion>>();
    send_sync::<CredentialSet>();
    send_sync::<CredentialStats>();
    #[cfg(feature = "azure-core")]
    send_sync::<KeyVaultCertificate>();
    #[cfg(feature = "azure-core")]
    send_sync::<CredentialBuilder<KeyVaultCertificate>>();
}

//! [`OnboardingBuilder`]: the onboarding's settings, checked once at `build()`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use url::Url;

use super::{Onboarding, ResponseMode, SignInClient, checked_redirect_uri};
use crate::clock::{Clock, SharedClock, SharedSleeper, Sleeper};
use crate::cloud::Cloud;
use crate::error::Error;
use crate::onboarding::{InMemoryOnboardingStore, OnboardingStore};
use crate::validate::TokenValidator;

/// Builds an [`Onboarding`]; see [`Onboarding::builder`].
#[must_use = "a builder does nothing until `build()`"]
pub struct OnboardingBuilder {
    pub(super) client: Arc<dyn SignInClient>,
    pub(super) scope: String,
    pub(super) sign_in_redirect: String,
    pub(super) consent_redirect: Option<String>,
    pub(super) validator: Option<TokenValidator>,
    pub(super) response_mode: ResponseMode,
    pub(super) required_roles: Vec<String>,
    pub(super) admin_roles: Vec<String>,
    pub(super) max_age: Duration,
    pub(super) confirm_attempts: u32,
    pub(super) confirm_delay: Duration,
    pub(super) clock: SharedClock,
    pub(super) sleeper: SharedSleeper,
    pub(super) store: Option<Arc<dyn OnboardingStore>>,
}

impl fmt::Debug for OnboardingBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnboardingBuilder")
            .field("client", &self.client)
            .field("scope", &self.scope)
            .field("sign_in_redirect", &self.sign_in_redirect)
            .field("consent_redirect", &self.consent_redirect)
            .finish_non_exhaustive()
    }
}

impl OnboardingBuilder {
    /// Where Entra sends the admin after consent (default: the sign-in redirect URI). A
    /// separate path keeps the two callbacks apart.
    pub fn consent_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.consent_redirect = Some(uri.into());
        self
    }

    /// The validator checking the sign-in `id_token` (default: one built for the
    /// credential's cloud, on this builder's clock).
    pub fn validator(mut self, validator: TokenValidator) -> Self {
        self.validator = Some(validator);
        self
    }

    /// How Entra returns the sign-in answer (default [`ResponseMode::FormPost`]).
    pub fn response_mode(mut self, mode: ResponseMode) -> Self {
        self.response_mode = mode;
        self
    }

    /// An app role the confirmation token must carry (call once per role); confirmation
    /// retries while it is missing, as role grants replicate too. Default: none.
    ///
    /// Required roles are also a proof that an admin acted (see
    /// [`Onboarding`](crate::Onboarding)): application permissions are granted only by an
    /// admin, so roles the app lacked when [`consent`](Onboarding::consent) began and holds
    /// at confirmation prove one granted them, for a user without an admin role in `wids`.
    pub fn require_role(mut self, role: impl Into<String>) -> Self {
        self.required_roles.push(role.into());
        self
    }

    /// The directory roles (role *template* ids, as in the `id_token`'s `wids`) whose
    /// holders are trusted to have granted admin consent, replacing the default
    /// [`DEFAULT_ADMIN_ROLES`](crate::DEFAULT_ADMIN_ROLES) (Global, Privileged Role, Cloud
    /// Application and Application Administrator). Narrow it to demand a Global
    /// Administrator, say; an empty list accepts only the proof by
    /// [required app roles](Self::require_role), which this list does not constrain (see
    /// [`Onboarding`]'s "Proof that an admin acted"). Ids are compared without regard to
    /// case; `build` fails on one that is not a GUID.
    ///
    /// ```
    /// use azure_cross_tenant::{ClientSecret, Onboarding};
    ///
    /// let credential = ClientSecret::new("11111111-2222-3333-4444-555555555555", "secret").build()?;
    /// let onboarding = Onboarding::builder(credential, "https://vault.azure.net/.default", "https://saas.example/cb")
    ///     .admin_roles(["62e90394-69f5-4237-9190-012177145e10"]) // Global Administrator only
    ///     .build()?;
    /// # let _ = onboarding;
    /// # Ok::<(), azure_cross_tenant::Error>(())
    /// ```
    pub fn admin_roles(mut self, roles: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.admin_roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// How long a pending sign-in or consent stays usable (default 15 minutes).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// How hard [`finish_consent`](Onboarding::finish_consent) tries to confirm consent.
    ///
    /// `attempts` (at least 1; default 6) is the number of token requests in the tenant.
    /// Each is one call through the credential, which itself retries transient failures
    /// (timeouts, 5xx, throttling) under its own retry policy. Another attempt follows
    /// only while the app or the resource has no service principal yet (AADSTS700016,
    /// 7000229, 500011, 650052: replication), the
    /// token lacks a [required role](Self::require_role), or the failure is retryable;
    /// any other refusal ends confirmation at once. The wait before the first retry is
    /// `first_delay` (default 1 s), doubled before each further one, each wait capped at
    /// 60 s: by default 1 + 2 + 4 + 8 + 16 = 31 s of waiting at most, plus the requests'
    /// own time. A new service principal takes seconds to minutes to replicate.
    pub fn confirm_retries(mut self, attempts: u32, first_delay: Duration) -> Self {
        self.confirm_attempts = attempts;
        self.confirm_delay = first_delay;
        self
    }

    /// The clock for expiry and the `id_token` lifetime (default the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// What waits between confirmation attempts (default the tokio timer).
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Where spent states (and the drop-in routes' pending flows) are kept (default: an
    /// [`InMemoryOnboardingStore`] of this process). Give every replica the same shared
    /// store, e.g. [`SqlRegistry::onboarding_store`](crate::SqlRegistry) (features
    /// `sqlite`/`postgres`), so that a callback is accepted at most once across the fleet.
    /// [`OnboardingRoutes`](crate::OnboardingRoutes) (feature `axum`) uses its registry's
    /// store when this is left at the default.
    pub fn store(mut self, store: Arc<dyn OnboardingStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Checks the redirect URIs and scope and builds the flow. Nothing is sent.
    pub fn build(self) -> Result<Onboarding, Error> {
        let cloud = cloud_of(self.client.authority_host())?;
        let sign_in_redirect = checked_redirect_uri(&self.sign_in_redirect)?;
        let consent_redirect = match &self.consent_redirect {
            Some(uri) => checked_redirect_uri(uri)?,
            None => sign_in_redirect.clone(),
        };
        let scope = crate::scope::Scopes::parse(&[self.scope.as_str()])?
            .as_str()
            .to_owned();
        if self.confirm_attempts == 0 {
            return Err(Error::InvalidConfiguration(
                "confirm_retries needs at least one attempt".into(),
            ));
        }
        if self.max_age.is_zero() {
            return Err(Error::InvalidConfiguration(
                "max_age is zero; give the admin a few minutes".into(),
            ));
        }
        let mut admin_roles = Vec::with_capacity(self.admin_roles.len());
        for role in &self.admin_roles {
            let Ok(id) = uuid::Uuid::try_parse(role) else {
                return Err(Error::InvalidConfiguration(format!(
                    "admin role {:?} is not a directory role template id (a GUID such as 62e90394-69f5-4237-9190-012177145e10)",
                    crate::error::echo(role)
                )));
            };
            // The form `wids` carries: hyphenated, lower case.
            admin_roles.push(id.hyphenated().to_string());
        }
        let validator = match self.validator {
            Some(v) => v,
            None => TokenValidator::builder(cloud.clone())
                .clock(self.clock.clone())
                .build()?,
        };
        Ok(Onboarding {
            client: self.client,
            cloud,
            validator,
            scope,
            sign_in_redirect,
            consent_redirect,
            response_mode: self.response_mode,
            required_roles: self.required_roles,
            admin_roles,
            max_age: self.max_age,
            confirm_attempts: self.confirm_attempts,
            confirm_delay: self.confirm_delay,
            clock: self.clock,
            sleeper: self.sleeper,
            store_is_default: self.store.is_none(),
            store: self
                .store
                .unwrap_or_else(|| Arc::new(InMemoryOnboardingStore::new())),
            last_purge: AtomicU64::new(0),
        })
    }
}

/// The cloud whose authority host the credential uses.
fn cloud_of(host: &Url) -> Result<Cloud, Error> {
    for known in [Cloud::Public, Cloud::UsGovernment, Cloud::China] {
        if known.authority_host() == host {
            return Ok(known);
        }
    }
    Cloud::custom(host.as_str(), Cloud::Public.token_exchange_audience())
}

//! Steps 3 to 5: admin consent in the tenant the sign-in proved, the callback checked
//! against it, and confirmation by an app-only token there.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use super::callback::{Callback, random_value};
use super::redeem::CodeClient;
use super::redeem::sealed::Sealed as _;
use super::{Onboarding, OnboardingError, SignedInAdmin};
use crate::error::Error;
use crate::registry::{OnboardingState, TenantRecord};
use crate::tenant::TenantId;
use crate::token::AccessToken;

/// An admin consent sent to the browser and not yet answered: the single-use state and
/// the tenant the admin proved. Keep it server-side in the admin's session and remove it
/// when the callback arrives (see [`Onboarding`](crate::Onboarding)). `Debug` does not
/// show the state.
#[derive(Serialize, Deserialize)]
pub struct PendingConsent {
    state: String,
    tenant: TenantId,
    admin_object_id: String,
    issued_at: u64,
}

impl fmt::Debug for PendingConsent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingConsent")
            .field("tenant", &self.tenant)
            .field("admin_object_id", &self.admin_object_id)
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

impl PendingConsent {
    /// The tenant the admin proved (the only tenant the callback may name).
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

/// A tenant whose admin proved their sign-in and granted consent, confirmed by an
/// app-only token issued there.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OnboardedTenant {
    /// The tenant (its GUID).
    pub tenant: TenantId,
    /// The object id of the admin who signed in and consented.
    pub admin_object_id: String,
    /// The app's service principal object id there (the `oid` its tokens carry): store it
    /// as the expected `oid` when validating.
    pub service_principal_object_id: Option<String>,
    /// The app roles the confirmation token carried.
    pub roles: Vec<String>,
}

impl OnboardedTenant {
    /// A registry record for it, active, to store with
    /// [`TenantRegistry::link`](crate::TenantRegistry::link).
    pub fn record(&self, display_name: impl Into<String>) -> TenantRecord {
        let mut record =
            TenantRecord::new(self.tenant.clone(), display_name, OnboardingState::Active);
        record.service_principal_object_id = self.service_principal_object_id.clone();
        record.linked_by = Some(self.admin_object_id.clone());
        record
    }
}

impl Onboarding {
    /// The admin consent URL of the tenant `admin` proved (v2, for the onboarding's
    /// scope), and the pending value to keep server-side until the callback arrives at
    /// the consent redirect URI.
    pub fn consent(&self, admin: &SignedInAdmin) -> Result<(Url, PendingConsent), OnboardingError> {
        let pending = PendingConsent {
            state: random_value()?,
            tenant: admin.tenant().clone(),
            admin_object_id: admin.object_id().to_owned(),
            issued_at: self.now_secs(),
        };
        let mut url = self.cloud.authority_host().clone();
        url.path_segments_mut()
            .map_err(|_| OnboardingError::Internal("the authority host cannot take a path"))?
            .pop_if_empty()
            .extend([pending.tenant.as_str(), "v2.0", "adminconsent"]);
        url.query_pairs_mut()
            .append_pair("client_id", self.client_id())
            .append_pair("scope", &self.scope)
            .append_pair("redirect_uri", self.consent_redirect.as_str())
            .append_pair("state", &pending.state);
        Ok((url, pending))
    }

    /// Checks the consent callback (`callback`: its query string) against `pending`: no
    /// `error`, the issued `state` (once), `admin_consent=True`, and `tenant` equal to
    /// the proven tenant. Then confirms with an app-only token in that tenant, retrying
    /// while consent replicates. `pending` is spent whatever the outcome.
    pub async fn finish_consent(
        &self,
        pending: PendingConsent,
        callback: &str,
    ) -> Result<OnboardedTenant, OnboardingError> {
        self.check_age(pending.issued_at)?;
        let callback = Callback::parse(callback)?;
        callback.refusal()?;
        callback.check_state(&pending.state)?;
        self.spend(&pending.state, pending.issued_at)?;
        if !callback
            .get("admin_consent")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(OnboardingError::NotGranted);
        }
        let named = callback.get("tenant").unwrap_or_default();
        if !named.parse::<TenantId>().is_ok_and(|t| t == pending.tenant) {
            tracing::warn!(
                proven = %pending.tenant,
                callback = %crate::error::echo(named),
                admin = %pending.admin_object_id,
                "consent callback names another tenant than the admin signed in to; refused"
            );
            return Err(OnboardingError::TenantMismatch {
                proven: pending.tenant,
                callback: crate::error::echo(named),
            });
        }
        let token = self.confirm(&pending.tenant).await?;
        let claims = crate::jwt::peek_claims(token.secret()).unwrap_or_default();
        if claims
            .tid
            .as_deref()
            .is_some_and(|tid| !tid.eq_ignore_ascii_case(pending.tenant.as_str()))
        {
            return Err(OnboardingError::Internal(
                "the confirmation token names another tenant",
            ));
        }
        tracing::info!(tenant = %pending.tenant, admin = %pending.admin_object_id, "tenant onboarded");
        Ok(OnboardedTenant {
            tenant: pending.tenant,
            admin_object_id: pending.admin_object_id,
            service_principal_object_id: claims.oid,
            roles: claims.roles,
        })
    }

    /// An app-only token in `tenant` carrying the required roles, with bounded retries:
    /// right after consent the new service principal (and its role grants) can take a
    /// while to reach every Entra replica.
    async fn confirm(&self, tenant: &TenantId) -> Result<AccessToken, OnboardingError> {
        let mut delay = self.confirm_delay;
        let mut attempt = 1;
        loop {
            let outcome = match self.fresh_token(tenant).await {
                Ok(token) => match self.missing_roles(&token) {
                    missing if missing.is_empty() => return Ok(token),
                    missing => Err(OnboardingError::MissingRoles {
                        tenant: tenant.clone(),
                        missing,
                    }),
                },
                Err(e) if worth_retrying(&e) => Err(OnboardingError::NotConfirmed {
                    tenant: tenant.clone(),
                    source: Box::new(e),
                }),
                Err(e) => {
                    return Err(OnboardingError::NotConfirmed {
                        tenant: tenant.clone(),
                        source: Box::new(e),
                    });
                }
            };
            if attempt >= self.confirm_attempts {
                return outcome;
            }
            tracing::debug!(tenant = %tenant, attempt, wait_ms = delay.as_millis() as u64, "consent not confirmed yet; retrying");
            self.sleeper.sleep(delay).await;
            delay = delay.saturating_mul(2).min(Duration::from_secs(60));
            attempt += 1;
        }
    }

    /// A token straight from Entra, past any cache: consent must exist *now*, and a
    /// cached token would hide roles granted since.
    async fn fresh_token(&self, tenant: &TenantId) -> Result<AccessToken, Error> {
        let CodeClient { client, auth } = self.client.code_client();
        client.request(tenant, &[&self.scope], auth).await
    }

    fn missing_roles(&self, token: &AccessToken) -> Vec<String> {
        if self.required_roles.is_empty() {
            return Vec::new();
        }
        let roles = crate::jwt::peek_claims(token.secret())
            .map(|c| c.roles)
            .unwrap_or_default();
        self.required_roles
            .iter()
            .filter(|r| !roles.contains(r))
            .cloned()
            .collect()
    }
}

/// Consent not replicated yet, or a passing failure: worth another try.
fn worth_retrying(e: &Error) -> bool {
    matches!(e, Error::NotConsented { .. }) || e.is_retryable()
}

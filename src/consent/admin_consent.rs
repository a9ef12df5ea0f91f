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

/// An admin consent sent to the browser and not yet answered: the single-use state, the
/// tenant the admin proved, and what proves an admin's part (their directory roles, or
/// that the app lacked its required app roles in the tenant as the flow began). Keep it server-side in the admin's session and
/// remove it when the callback arrives (see [`Onboarding`](crate::Onboarding)). `Debug`
/// does not show the state.
///
/// Values stored by an earlier version of this crate (without the proof fields) still
/// deserialize; they prove no admin, so `finish_consent` refuses them with
/// [`OnboardingError::AdminNotProven`] unless the flow is started again.
#[derive(Serialize, Deserialize)]
pub struct PendingConsent {
    state: String,
    tenant: TenantId,
    admin_object_id: String,
    issued_at: u64,
    /// The signed-in user's directory role template ids (`wids`).
    #[serde(default)]
    directory_roles: Vec<String>,
    /// The required app roles Entra showed the app lacking in the tenant as the flow began
    /// (no service principal, or a token without them); the confirmation must carry them
    /// all. Empty (the safe side) otherwise, or for older stored values.
    #[serde(default)]
    roles_missing_at_start: Vec<String>,
}

impl fmt::Debug for PendingConsent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingConsent")
            .field("tenant", &self.tenant)
            .field("admin_object_id", &self.admin_object_id)
            .field("issued_at", &self.issued_at)
            .field("directory_roles", &self.directory_roles)
            .field("roles_missing_at_start", &self.roles_missing_at_start)
            .finish_non_exhaustive()
    }
}

impl PendingConsent {
    /// The tenant the admin proved (the only tenant the callback may name).
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The signed-in user's directory role template ids, from their `id_token`'s `wids`.
    pub fn directory_roles(&self) -> &[String] {
        &self.directory_roles
    }

    /// The [required app roles](crate::OnboardingBuilder::require_role) the app lacked in
    /// the tenant when the flow began: a confirmation carrying them afterwards proves
    /// someone granted them in between. Empty when the user's directory role is the proof.
    pub fn roles_missing_at_start(&self) -> &[String] {
        &self.roles_missing_at_start
    }
}

/// What proved that an admin took part in an onboarding. Kept on the
/// [`TenantRecord`] for audit; serialized as `{"directory_role": "<role id>"}` or
/// `"fresh_consent"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AdminProof {
    /// The signed-in user's `id_token` carried this admin role (a directory role template
    /// id from [`OnboardingBuilder::admin_roles`](crate::OnboardingBuilder::admin_roles)).
    DirectoryRole(String),
    /// The app's [required app roles](crate::OnboardingBuilder::require_role)
    /// (application permissions, which a user's own consent never grants) were absent in
    /// the tenant when the flow began and present at the confirmation: someone able to
    /// grant them, an admin, did so in between. The user who signed in
    /// ([`OnboardedTenant::admin_object_id`]) need not be that admin.
    FreshConsent,
}

/// A tenant whose admin proved their sign-in and granted consent, confirmed by an
/// app-only token issued there.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OnboardedTenant {
    /// The tenant (its GUID).
    pub tenant: TenantId,
    /// The object id of the user who signed in: an admin by their directory role for
    /// [`AdminProof::DirectoryRole`]; for [`AdminProof::FreshConsent`], whoever started
    /// the flow (the admin who granted the roles may be someone else).
    pub admin_object_id: String,
    /// The app's service principal object id there (the `oid` its tokens carry): store it
    /// as the expected `oid` when validating.
    pub service_principal_object_id: Option<String>,
    /// The app roles the confirmation token carried.
    pub roles: Vec<String>,
    /// What proved that an admin took part (keep it with the record for audit).
    pub proof: AdminProof,
    /// When the confirmation token was had (the onboarding's clock).
    pub confirmed_at: std::time::SystemTime,
}

impl OnboardedTenant {
    /// A registry record for it, to store with
    /// [`TenantRegistry::link`](crate::TenantRegistry::link): `Active` when the user's
    /// directory role proved an admin; `Pending` for [`AdminProof::FreshConsent`], which
    /// proves that *an* admin granted the roles, not that the user is theirs: activate it
    /// after your own approval ([`TenantRegistry::set_state`](crate::TenantRegistry::set_state)).
    pub fn record(&self, display_name: impl Into<String>) -> TenantRecord {
        // Roles granted during the flow prove that *an* admin acted, not that the user who
        // finishes it is theirs: such a record waits for the provider's own approval.
        let state = match self.proof {
            AdminProof::DirectoryRole(_) => OnboardingState::Active,
            AdminProof::FreshConsent => OnboardingState::Pending,
        };
        let mut record = TenantRecord::new(self.tenant.clone(), display_name, state);
        record.service_principal_object_id = self.service_principal_object_id.clone();
        record.linked_by = Some(self.admin_object_id.clone());
        record.linked_at = Some(self.confirmed_at);
        record.proof = Some(self.proof.clone());
        record
    }
}

impl Onboarding {
    /// The admin consent URL of the tenant `admin` proved (v2, for the onboarding's
    /// scope), and the pending value to keep server-side until the callback arrives at
    /// the consent redirect URI.
    ///
    /// When `admin`'s `id_token` carries none of the [admin
    /// roles](crate::OnboardingBuilder::admin_roles) and the onboarding
    /// [requires app roles](crate::OnboardingBuilder::require_role), this first asks
    /// Entra, in one app-only token request bounded by the credential's timeout, whether
    /// the app holds them in the tenant already (see [`Onboarding`](crate::Onboarding),
    /// "Proof that an admin acted").
    ///
    /// # Errors
    /// [`OnboardingError::AdminNotProven`] when the user holds no admin role and either no
    /// app role is required or the app holds the required roles already;
    /// [`OnboardingError::ConsentCheckFailed`] when Entra could not tell (fail closed;
    /// [retryable](OnboardingError::is_retryable) when the cause is passing).
    pub async fn consent(
        &self,
        admin: &SignedInAdmin,
    ) -> Result<(Url, PendingConsent), OnboardingError> {
        let roles_missing_at_start = match self.admin_role_of(admin) {
            Some(_) => Vec::new(),
            // A user's own sign-in can create the app's service principal (user consent
            // to `openid profile`), so "no consent yet" proves nothing; only app roles,
            // which no user consent grants, can.
            None if self.required_roles.is_empty() => {
                return Err(self.admin_not_proven(
                    admin.tenant(),
                    admin.object_id(),
                    admin.directory_roles(),
                ));
            }
            None => {
                let missing = self.required_roles_missing(admin.tenant()).await?;
                if missing.is_empty() {
                    return Err(self.admin_not_proven(
                        admin.tenant(),
                        admin.object_id(),
                        admin.directory_roles(),
                    ));
                }
                missing
            }
        };
        let pending = PendingConsent {
            state: random_value()?,
            tenant: admin.tenant().clone(),
            admin_object_id: admin.object_id().to_owned(),
            issued_at: self.now_secs(),
            directory_roles: admin.directory_roles().to_vec(),
            roles_missing_at_start,
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

    /// Checks the consent callback (`callback`: its query string) against `pending`: the
    /// issued `state` (once), no `error`, `admin_consent=True`, `tenant` equal to the
    /// proven tenant, and proof of an admin's part (an admin role, or required app roles
    /// the app lacked when the flow began and carries at confirmation). Then confirms with an app-only token in that
    /// tenant, retrying while consent replicates (see
    /// [`confirm_retries`](crate::OnboardingBuilder::confirm_retries)).
    ///
    /// `pending` is consumed. Its state is recorded as spent as soon as a callback carrying
    /// it passes the state check, whatever happens next; a callback refused before that
    /// (expired pending value, malformed, an `error`, another state) spends nothing.
    pub async fn finish_consent(
        &self,
        pending: PendingConsent,
        callback: &str,
    ) -> Result<OnboardedTenant, OnboardingError> {
        self.check_age(pending.issued_at)?;
        let callback = Callback::parse(callback)?;
        // The state first: anyone can send the admin's browser to the callback with
        // `error=...`, and a refusal that counted without it would end the real flow.
        callback.check_state(&pending.state)?;
        callback.refusal()?;
        self.spend(&pending.state, pending.issued_at).await?;
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
                callback = ?crate::error::echo(named),
                admin = %pending.admin_object_id,
                "consent callback names another tenant than the admin signed in to; refused"
            );
            return Err(OnboardingError::TenantMismatch {
                proven: pending.tenant,
                callback: crate::error::echo(named),
            });
        }
        let proof = self.proof_of_admin(&pending)?;
        let token = self.confirm(&pending.tenant).await?;
        let claims = crate::jwt::peek_claims(token.secret()).unwrap_or_default();
        // The roles the proof rests on are the ones missing then, whatever is required
        // now (the configuration may have changed in between).
        let absent: Vec<String> = match proof {
            AdminProof::FreshConsent => pending
                .roles_missing_at_start
                .iter()
                .filter(|r| !claims.roles.contains(r))
                .cloned()
                .collect(),
            AdminProof::DirectoryRole(_) => Vec::new(),
        };
        if !absent.is_empty() {
            return Err(OnboardingError::MissingRoles {
                tenant: pending.tenant,
                missing: absent,
            });
        }
        if claims
            .tid
            .as_deref()
            .is_some_and(|tid| !tid.eq_ignore_ascii_case(pending.tenant.as_str()))
        {
            return Err(OnboardingError::Internal(
                "the confirmation token names another tenant",
            ));
        }
        tracing::info!(tenant = %pending.tenant, admin = %pending.admin_object_id, proof = ?proof, "tenant onboarded");
        // A cache in front of the credential drops what it remembers of the tenant (a
        // refusal from before the consent, tokens without the roles granted now), so the
        // app's next call succeeds at once.
        self.client.onboarded(&pending.tenant).await;
        Ok(OnboardedTenant {
            tenant: pending.tenant,
            admin_object_id: pending.admin_object_id,
            service_principal_object_id: claims.oid,
            roles: claims.roles,
            proof,
            confirmed_at: self.clock.now(),
        })
    }

    /// What proves an admin's part in `pending`: the user's admin role, else required app
    /// roles that were absent when the flow began (the confirmation then requires them).
    fn proof_of_admin(&self, pending: &PendingConsent) -> Result<AdminProof, OnboardingError> {
        match self.admin_role_in(&pending.directory_roles) {
            Some(role) => Ok(AdminProof::DirectoryRole(role.to_owned())),
            None if !pending.roles_missing_at_start.is_empty()
                && !self.required_roles.is_empty() =>
            {
                Ok(AdminProof::FreshConsent)
            }
            None => Err(self.admin_not_proven(
                &pending.tenant,
                &pending.admin_object_id,
                &pending.directory_roles,
            )),
        }
    }

    /// The required app roles the app lacks in `tenant` now: one app-only token request,
    /// past any cache. All of them on Entra's word that the app or the resource has no
    /// service principal there; anything else that is not a readable token means "cannot
    /// tell", and the flow stops rather than guess.
    async fn required_roles_missing(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<String>, OnboardingError> {
        let cannot_tell = |e: Error| {
            tracing::warn!(tenant = %tenant, error = %e, "could not tell whether the app holds its roles in the tenant already; refused");
            OnboardingError::ConsentCheckFailed {
                tenant: tenant.clone(),
                source: Box::new(e),
            }
        };
        let CodeClient { client, auth } = self.client.code_client();
        match client.request_once(tenant, &[&self.scope], auth).await {
            Ok(token) => match crate::jwt::peek_claims(token.secret()) {
                Some(claims) => Ok(self
                    .required_roles
                    .iter()
                    .filter(|r| !claims.roles.contains(r))
                    .cloned()
                    .collect()),
                // An unreadable token would read as "no roles": it proves nothing.
                None => Err(cannot_tell(Error::MalformedResponse {
                    tenant: tenant.clone(),
                    status: 200,
                    reason: "the token cannot be read for its roles".into(),
                })),
            },
            Err(Error::NotConsented { .. } | Error::ResourceNotFound(_)) => {
                Ok(self.required_roles.clone())
            }
            Err(e) => Err(cannot_tell(e)),
        }
    }

    fn admin_not_proven(
        &self,
        tenant: &TenantId,
        object_id: &str,
        roles: &[String],
    ) -> OnboardingError {
        tracing::warn!(
            tenant = %tenant,
            user = %object_id,
            roles = ?roles,
            "the user holds no admin role, and no app role the app lacked is required; refused"
        );
        OnboardingError::AdminNotProven {
            tenant: tenant.clone(),
            object_id: object_id.to_owned(),
            roles: roles.to_vec(),
        }
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

/// Consent (the app's or the resource's service principal) not replicated yet, or a
/// passing failure: worth another try.
fn worth_retrying(e: &Error) -> bool {
    matches!(e, Error::NotConsented { .. } | Error::ResourceNotFound(_)) || e.is_retryable()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_consent_stored_before_the_admin_proof_existed_proves_nothing() {
        let stored = r#"{"state":"s","tenant":"72f988bf-86f1-41af-91ab-2d7cd011db47","admin_object_id":"a","issued_at":1700000000}"#;
        let pending: PendingConsent = serde_json::from_str(stored).unwrap();
        assert!(pending.directory_roles().is_empty());
        assert!(pending.roles_missing_at_start().is_empty());
        let round: PendingConsent =
            serde_json::from_str(&serde_json::to_string(&pending).unwrap()).unwrap();
        assert_eq!(round.tenant(), pending.tenant());
        assert!(!format!("{pending:?}").contains("\"s\""));
    }
}

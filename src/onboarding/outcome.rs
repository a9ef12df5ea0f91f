//! [`OnboardingOutcome`] and [`OutcomeReason`]: how the onboarding routes tell the app's
//! page how the flow ended, in words a person can read.

use std::fmt;

use url::Url;

use crate::consent::OnboardingError;
use crate::registry::LinkError;
use crate::tenant::TenantId;

/// Why an onboarding through the routes did not link a tenant. Each has a stable
/// [`code`](Self::code) (what the routes put in the app page's query) and a
/// [`message`](Self::message) for the person at the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutcomeReason {
    /// The app says nobody is signed in to it (its account closure returned `None`).
    NotSignedIn,
    /// No onboarding session in this browser: it expired, cookies are blocked, or the
    /// callback came to another browser.
    SessionNotFound,
    /// A callback this session did not start (forged, or another session's).
    StateMismatch,
    /// A callback already used (replayed, possibly to another replica).
    Replayed,
    /// The session expired before the callback came back.
    Expired,
    /// The callback is malformed.
    Malformed,
    /// The signed-in user is not proven an admin of their tenant.
    NotAdmin,
    /// The admin declined consent (or consent was not granted).
    ConsentDeclined,
    /// The consent callback names another tenant than the admin signed in to (an edited
    /// callback).
    TenantMismatch,
    /// Consent was reported but could not be confirmed with a token (replication, a
    /// disabled app, a policy).
    NotConfirmed,
    /// The app lacks app roles the onboarding requires in the tenant.
    MissingRoles,
    /// Entra refused a step (the sign-in code, the id token) or could not be reached.
    EntraError,
    /// The tenant is already linked to another account of the app.
    LinkedElsewhere,
    /// The app's signed-in account changed during the flow.
    AccountChanged,
    /// The onboarding store or the registry could not be reached: try again shortly.
    Unavailable,
    /// A step this crate believes impossible (see the log).
    Internal,
}

const ALL: [OutcomeReason; 16] = [
    OutcomeReason::NotSignedIn,
    OutcomeReason::SessionNotFound,
    OutcomeReason::StateMismatch,
    OutcomeReason::Replayed,
    OutcomeReason::Expired,
    OutcomeReason::Malformed,
    OutcomeReason::NotAdmin,
    OutcomeReason::ConsentDeclined,
    OutcomeReason::TenantMismatch,
    OutcomeReason::NotConfirmed,
    OutcomeReason::MissingRoles,
    OutcomeReason::EntraError,
    OutcomeReason::LinkedElsewhere,
    OutcomeReason::AccountChanged,
    OutcomeReason::Unavailable,
    OutcomeReason::Internal,
];

impl OutcomeReason {
    /// The stable code in the app page's query (`reason=...`).
    pub fn code(self) -> &'static str {
        match self {
            Self::NotSignedIn => "not_signed_in",
            Self::SessionNotFound => "session_not_found",
            Self::StateMismatch => "state_mismatch",
            Self::Replayed => "replayed",
            Self::Expired => "expired",
            Self::Malformed => "malformed",
            Self::NotAdmin => "not_admin",
            Self::ConsentDeclined => "consent_declined",
            Self::TenantMismatch => "tenant_mismatch",
            Self::NotConfirmed => "not_confirmed",
            Self::MissingRoles => "missing_roles",
            Self::EntraError => "entra_error",
            Self::LinkedElsewhere => "linked_elsewhere",
            Self::AccountChanged => "account_changed",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// The reason of `code`, if it is one.
    pub fn from_code(code: &str) -> Option<Self> {
        ALL.into_iter().find(|r| r.code() == code)
    }

    /// One sentence for the person at the browser: what happened and what to do.
    pub fn message(self) -> &'static str {
        match self {
            Self::NotSignedIn => {
                "Sign in to your account here first, then connect your Azure tenant."
            }
            Self::SessionNotFound => {
                "The onboarding session was not found (it expired, or this browser blocks cookies). Start again."
            }
            Self::StateMismatch => {
                "The sign-in answer did not belong to this browser's onboarding, so it was ignored. Start again."
            }
            Self::Replayed => "That sign-in answer was already used. Start again.",
            Self::Expired => "The onboarding took too long and expired. Start again.",
            Self::Malformed => "The answer from Microsoft Entra was malformed. Start again.",
            Self::NotAdmin => {
                "The account that signed in is not an administrator of its tenant. Ask a Global Administrator (or an Application Administrator) to connect the tenant."
            }
            Self::ConsentDeclined => "Consent was declined, so nothing was connected.",
            Self::TenantMismatch => {
                "The consent answer named another tenant than the one you signed in to, so it was refused."
            }
            Self::NotConfirmed => {
                "Consent could not be confirmed in your tenant yet (it can take a few minutes to replicate). Try again shortly."
            }
            Self::MissingRoles => {
                "The application was not granted the permissions it needs in your tenant. Grant them and try again."
            }
            Self::EntraError => {
                "Microsoft Entra refused a step of the sign-in. Start again; contact support if it repeats."
            }
            Self::LinkedElsewhere => {
                "This tenant is already connected to another account. Contact support to move it."
            }
            Self::AccountChanged => {
                "You signed in to another account here during the onboarding. Start again."
            }
            Self::Unavailable => "The service is briefly unavailable. Try again in a moment.",
            Self::Internal => "Something went wrong on our side. Contact support.",
        }
    }

    /// The reason for an onboarding step's refusal.
    pub(crate) fn of(error: &OnboardingError) -> Self {
        match error {
            OnboardingError::StateMismatch => Self::StateMismatch,
            OnboardingError::Replayed => Self::Replayed,
            OnboardingError::Expired { .. } => Self::Expired,
            OnboardingError::Malformed(_) => Self::Malformed,
            OnboardingError::NotGranted => Self::ConsentDeclined,
            OnboardingError::Denied { error, .. }
                if matches!(error.as_str(), "access_denied" | "consent_required") =>
            {
                Self::ConsentDeclined
            }
            OnboardingError::TenantMismatch { .. } => Self::TenantMismatch,
            OnboardingError::AdminNotProven { .. } => Self::NotAdmin,
            OnboardingError::NotConfirmed { .. } => Self::NotConfirmed,
            OnboardingError::MissingRoles { .. } => Self::MissingRoles,
            OnboardingError::Store(_) => Self::Unavailable,
            OnboardingError::ConsentCheckFailed { .. } if error.is_retryable() => Self::Unavailable,
            OnboardingError::Internal(_) => Self::Internal,
            _ => Self::EntraError,
        }
    }

    pub(crate) fn of_link(error: &LinkError) -> Self {
        match error {
            LinkError::LinkedElsewhere { .. } => Self::LinkedElsewhere,
            LinkError::Registry(e) if e.is_retryable() => Self::Unavailable,
            _ => Self::Internal,
        }
    }
}

impl fmt::Display for OutcomeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// How an onboarding through [`OnboardingRoutes`](crate::OnboardingRoutes) ended, as the
/// routes put it in the query of the app's page: `onboarding=linked&tenant=<guid>`,
/// `onboarding=pending&tenant=<guid>` (linked, awaiting your approval: the admin was
/// proven by freshly granted roles, not by a directory role), or
/// `onboarding=failed&reason=<code>` (and `tenant=` when one was proven).
///
/// Anyone can link to your page with such a query: show it as a message, and take the
/// list of linked tenants from the registry, never from the URL.
///
/// ```
/// use azure_cross_tenant::{OnboardingOutcome, OutcomeReason};
///
/// let outcome = OnboardingOutcome::from_query("onboarding=failed&reason=not_admin").unwrap();
/// assert_eq!(outcome.reason(), Some(OutcomeReason::NotAdmin));
/// println!("{}", outcome.message());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnboardingOutcome {
    /// The tenant is linked to the account, active.
    Linked {
        /// The tenant.
        tenant: TenantId,
    },
    /// The tenant is linked to the account as `Pending`: approve it before use.
    PendingApproval {
        /// The tenant.
        tenant: TenantId,
    },
    /// Nothing was linked.
    Failed {
        /// Why.
        reason: OutcomeReason,
        /// The tenant the admin proved, if the flow got that far.
        tenant: Option<TenantId>,
    },
}

impl OnboardingOutcome {
    /// The outcome a query string (with or without `?`) carries, if any.
    pub fn from_query(query: &str) -> Option<Self> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut kind = None;
        let mut reason = None;
        let mut tenant = None;
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "onboarding" => kind = Some(v.into_owned()),
                "reason" => reason = OutcomeReason::from_code(&v),
                "tenant" => tenant = v.parse::<TenantId>().ok(),
                _ => {}
            }
        }
        match kind.as_deref()? {
            "linked" => Some(Self::Linked { tenant: tenant? }),
            "pending" => Some(Self::PendingApproval { tenant: tenant? }),
            "failed" => Some(Self::Failed {
                reason: reason.unwrap_or(OutcomeReason::Internal),
                tenant,
            }),
            _ => None,
        }
    }

    /// The reason, for a failure.
    pub fn reason(&self) -> Option<OutcomeReason> {
        match self {
            Self::Failed { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// The tenant, when known.
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Self::Linked { tenant } | Self::PendingApproval { tenant } => Some(tenant),
            Self::Failed { tenant, .. } => tenant.as_ref(),
        }
    }

    /// One sentence for the person at the browser.
    pub fn message(&self) -> String {
        match self {
            Self::Linked { tenant } => format!("Tenant {tenant} is connected."),
            Self::PendingApproval { tenant } => {
                format!("Tenant {tenant} is connected and awaits approval.")
            }
            Self::Failed { reason, .. } => reason.message().to_owned(),
        }
    }

    /// `page` with this outcome added to its query (`page` is a path such as `/tenants`
    /// or an absolute URL).
    pub(crate) fn on(&self, page: &str) -> String {
        let base = Url::parse("http://app.invalid/").ok();
        let mut url = match Url::parse(page) {
            Ok(url) => url,
            Err(_) => match base.and_then(|b| b.join(page).ok()) {
                Some(url) => url,
                None => return page.to_owned(),
            },
        };
        {
            let mut q = url.query_pairs_mut();
            match self {
                Self::Linked { tenant } => {
                    q.append_pair("onboarding", "linked");
                    q.append_pair("tenant", tenant.as_str());
                }
                Self::PendingApproval { tenant } => {
                    q.append_pair("onboarding", "pending");
                    q.append_pair("tenant", tenant.as_str());
                }
                Self::Failed { reason, tenant } => {
                    q.append_pair("onboarding", "failed");
                    q.append_pair("reason", reason.code());
                    if let Some(t) = tenant {
                        q.append_pair("tenant", t.as_str());
                    }
                }
            }
        }
        if url.host_str() == Some("app.invalid") {
            let mut relative = url.path().to_owned();
            if let Some(q) = url.query() {
                relative.push('?');
                relative.push_str(q);
            }
            relative
        } else {
            url.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_through_its_code_and_has_a_sentence() {
        for r in ALL {
            assert_eq!(OutcomeReason::from_code(r.code()), Some(r));
            assert!(r.message().ends_with('.'), "{r:?}");
        }
    }

    #[test]
    fn outcomes_go_into_the_page_query_and_come_back() {
        let t: TenantId = "72f988bf-86f1-41af-91ab-2d7cd011db47".parse().unwrap();
        let linked = OnboardingOutcome::Linked { tenant: t.clone() };
        let at = linked.on("/tenants?tab=all");
        assert_eq!(at, format!("/tenants?tab=all&onboarding=linked&tenant={t}"));
        assert_eq!(
            OnboardingOutcome::from_query(at.split_once('?').unwrap().1),
            Some(linked)
        );
        let failed = OnboardingOutcome::Failed {
            reason: OutcomeReason::LinkedElsewhere,
            tenant: Some(t),
        };
        let at = failed.on("https://saas.example/tenants");
        assert!(
            at.starts_with(
                "https://saas.example/tenants?onboarding=failed&reason=linked_elsewhere"
            )
        );
        assert_eq!(
            OnboardingOutcome::from_query(at.split_once('?').unwrap().1),
            Some(failed)
        );
    }
}

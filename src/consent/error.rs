//! [`OnboardingError`]: why an onboarding step refused, and what to do about it.

use std::sync::Arc;

use crate::error::{Error, TransportKind, ValidationError};
use crate::tenant::TenantId;

/// Why an onboarding step refused. Never holds a code, token, nonce or verifier.
///
/// Every refusal of a callback (`Denied`, `Replayed`, `Expired`, `Malformed`,
/// `NotGranted`, `TenantMismatch`, `AdminNotProven`) means: show the admin an error and
/// let them start over from [`Onboarding::sign_in`](crate::Onboarding::sign_in); link
/// nothing. `StateMismatch` and `Malformed` are the exceptions: the callback is not
/// provably this session's (forged, or sent by someone else), so keep the pending value,
/// as the real callback may still come; the state is checked before anything else a
/// well-formed callback says. [`is_retryable`](Self::is_retryable) tells the ones worth another try
/// as they are.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum OnboardingError {
    /// The admin declined, or Entra reported an error (`error`, `error_description`).
    #[error("Entra or the admin refused: {error:?}: {description:?}")]
    Denied {
        /// The OAuth `error` (e.g. `access_denied`, `consent_required`), bounded; shown
        /// escaped, as it comes from the browser.
        error: String,
        /// The first line of Entra's description (bounded; shown escaped).
        description: String,
    },
    /// The callback's `state` is missing or not the one issued with this pending value: a
    /// forged callback, or one from another session.
    #[error(
        "the callback's state does not match the one issued for this session; ignore it (forged or from another session)"
    )]
    StateMismatch,
    /// The callback's state was accepted before: a replayed callback. Remove the pending
    /// value from the session when a callback arrives.
    #[error("the callback's state was already used; ignore it (replayed)")]
    Replayed,
    /// The pending value is older than the configured `max_age` (or dated in the future).
    #[error("the onboarding step expired ({age_secs} s old, at most {max_age_secs} s); start over")]
    Expired {
        /// How old it was.
        age_secs: u64,
        /// The limit.
        max_age_secs: u64,
    },
    /// The callback is malformed (too long, a parameter repeated, no code).
    #[error("malformed callback: {0}")]
    Malformed(&'static str),
    /// The consent callback does not report `admin_consent=True`.
    #[error("the consent callback does not report admin_consent=True")]
    NotGranted,
    /// The consent callback names a tenant other than the one the admin signed in to: an
    /// edited callback (the tenant swap this flow exists to stop), or the admin consented
    /// in another tenant. Nothing is linked.
    #[error(
        "the consent callback names tenant {callback:?}, but the admin signed in to tenant {proven}; refused"
    )]
    TenantMismatch {
        /// The tenant the signed-in `id_token` proved.
        proven: TenantId,
        /// What the callback's `tenant` said (bounded).
        callback: String,
    },
    /// The token endpoint refused the authorization code (expired or already redeemed
    /// code, PKCE mismatch, wrong redirect URI, bad client credential).
    #[error(
        "the token endpoint refused the sign-in code (HTTP {status}, {error}, AADSTS{codes:?}): {description}; start over, and check the app's redirect URI and credential if it repeats"
    )]
    CodeRefused {
        /// HTTP status.
        status: u16,
        /// The OAuth `error`.
        error: String,
        /// The AADSTS codes.
        codes: Vec<u32>,
        /// The first line of Entra's description.
        description: String,
        /// Entra's trace id.
        trace_id: Option<String>,
        /// The correlation id sent.
        correlation_id: Option<String>,
    },
    /// The token endpoint could not be reached to redeem the code (connect error,
    /// timeout). The code may or may not have been redeemed: start over.
    #[error(
        "could not reach the token endpoint to redeem the sign-in code ({kind}); check network, proxy and DNS, then start over"
    )]
    Transport {
        /// What kind of failure.
        kind: TransportKind,
        /// The cause.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// The token endpoint answered with a redirect, which is never followed (it would
    /// carry the app's credential elsewhere). Check the authority host and any proxy.
    #[error(
        "the token endpoint redirected to {to}; redirects are never followed: check the authority host and any proxy"
    )]
    Redirected {
        /// Where it pointed (scheme, host and port).
        to: String,
    },
    /// The token endpoint answered without a usable `id_token`.
    #[error("the token endpoint's answer to the sign-in code has no usable id_token: {0}")]
    NoIdToken(&'static str),
    /// The `id_token` failed validation (signature, issuer, audience, nonce, lifetime).
    #[error("the sign-in id_token was rejected: {0}")]
    IdTokenRejected(Box<ValidationError>),
    /// The credential could not make a request (transport failure, assertion source).
    #[error("the app's credential failed during onboarding: {0}")]
    Credential(#[source] Box<Error>),
    /// Consent was reported, but no app-only token could be had in the tenant after the
    /// configured retries (`source` says why: still replicating, disabled, blocked).
    #[error("consent in tenant {tenant} could not be confirmed: {source}")]
    NotConfirmed {
        /// The proven tenant.
        tenant: TenantId,
        /// The last token request's error.
        #[source]
        source: Box<Error>,
    },
    /// The confirmation token lacks app roles the onboarding requires: the admin
    /// consented, but the roles were not granted (or have not replicated yet).
    #[error(
        "the app's token in tenant {tenant} lacks the required roles {missing:?}; the customer admin must grant them"
    )]
    MissingRoles {
        /// The proven tenant.
        tenant: TenantId,
        /// The roles not in the token.
        missing: Vec<String>,
    },
    /// Nothing proves that an admin acted: the signed-in user's `id_token` carries none of
    /// the configured admin roles in `wids`, and no app role that only an admin can grant
    /// was missing when the flow began (none is required, or the app held them already).
    /// The consent callback is unsigned and a user's own sign-in can create the app's
    /// service principal, so any member or guest could otherwise forge the callback and
    /// link the tenant. Nothing is linked.
    #[error(
        "user {object_id} of tenant {tenant} is not proven an admin: the id_token names no admin role (directory roles: {roles:?}), and the onboarding requires no app role the app lacked in the tenant before; have a Global, Privileged Role, Application or Cloud Application Administrator sign in, and make Entra emit the `wids` claim: Entra portal > App registrations > the app > Token configuration > Add groups claim > Directory roles (or the optional claim `wids`)"
    )]
    AdminNotProven {
        /// The proven tenant.
        tenant: TenantId,
        /// The signed-in user's object id.
        object_id: String,
        /// The directory role template ids the `id_token`'s `wids` carried (empty when
        /// Entra does not emit `wids` for the app).
        roles: Vec<String>,
    },
    /// Whether the app holds its required roles in the tenant already could not be told (network failure,
    /// timeout, throttling, an unexpected answer from Entra): the onboarding fails closed
    /// rather than accept a consent nobody can prove. Nothing was sent to the admin; try
    /// again shortly (see [`is_retryable`](Self::is_retryable)), and check the cause if
    /// it repeats.
    #[error(
        "could not tell whether the app already holds its roles in tenant {tenant} ({source}); nothing was accepted: try again shortly"
    )]
    ConsentCheckFailed {
        /// The proven tenant.
        tenant: TenantId,
        /// The token request's error.
        #[source]
        source: Box<Error>,
    },
    /// The onboarding store (spent states, pending flows) could not be read or written:
    /// the callback is refused rather than risk accepting it twice (fail closed).
    /// [`is_retryable`](Self::is_retryable) when the store's failure is passing; the admin
    /// starts over once it is back.
    #[error("the onboarding store failed; the step was refused: {0}")]
    Store(#[source] Box<Error>),
    /// A state this crate believes impossible. Please file a bug.
    #[error("internal error: {0}; please file a bug")]
    Internal(&'static str),
}

impl OnboardingError {
    /// The tenant the refusal is about, when the step had proven one.
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Self::TenantMismatch { proven, .. } => Some(proven),
            Self::NotConfirmed { tenant, .. }
            | Self::MissingRoles { tenant, .. }
            | Self::AdminNotProven { tenant, .. }
            | Self::ConsentCheckFailed { tenant, .. } => Some(tenant),
            _ => None,
        }
    }

    /// Entra's trace id, when Entra's answer caused the refusal: quote it in a support
    /// request.
    pub fn trace_id(&self) -> Option<&str> {
        match self {
            Self::CodeRefused { trace_id, .. } => trace_id.as_deref(),
            Self::NotConfirmed { source, .. }
            | Self::ConsentCheckFailed { source, .. }
            | Self::Credential(source) => source.trace_id(),
            _ => None,
        }
    }

    /// Whether the same step may succeed if tried again shortly, with nothing changed: the
    /// consent check in [`Onboarding::consent`](crate::Onboarding::consent) could not reach
    /// Entra, timed out, was throttled, or met a passing failure of Entra's (a 5xx);
    /// `ConsentCheckFailed` with any other cause (a disabled app, a bad credential) needs
    /// a person first.
    /// False for every refusal a person must act on (and for callbacks, which are single
    /// use: start over from the sign-in).
    ///
    /// ```
    /// use azure_cross_tenant::OnboardingError;
    ///
    /// assert!(!OnboardingError::Replayed.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::ConsentCheckFailed { source, .. } | Self::Store(source) => source.is_retryable(),
            _ => false,
        }
    }
}

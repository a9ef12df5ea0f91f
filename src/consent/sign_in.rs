//! Step 1 and 2: the admin signs in with OpenID Connect (authorization code flow with
//! PKCE), and the `id_token` the code redeems for proves their tenant.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

use super::callback::{Callback, pkce_challenge, random_value};
use super::redeem::{Redemption, redeem};
use super::{Onboarding, OnboardingError};
use crate::tenant::TenantId;
use crate::validate::IdTokenExpectations;

/// Longest authorization code accepted from a callback (Entra's are 1-2 KB).
const MAX_CODE: usize = 8 * 1024;

/// Where the admin signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignInTenant {
    /// Any work or school tenant: the admin signs in to their home tenant, which the
    /// `id_token` then names. The usual choice.
    Organizations,
    /// A given tenant: for an admin who is a *guest* in the customer's tenant (signing in
    /// at `organizations` would prove their home tenant instead). The `id_token` must
    /// come from this tenant when it is given as a GUID.
    Tenant(TenantId),
}

impl SignInTenant {
    fn as_str(&self) -> &str {
        match self {
            Self::Organizations => "organizations",
            Self::Tenant(t) => t.as_str(),
        }
    }
}

/// How Entra returns the sign-in answer to the redirect URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ResponseMode {
    /// An HTML form POSTed to the redirect URI: the code stays out of the URL, browser
    /// history and access logs. A cross-site POST carries no `SameSite=Lax` cookie, so
    /// the session cookie that finds the pending sign-in must be `SameSite=None; Secure`.
    #[default]
    FormPost,
    /// A GET with the code in the query string (it works with `SameSite=Lax` session
    /// cookies; the code is single-use and bound to the PKCE verifier kept server-side).
    Query,
}

impl ResponseMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::FormPost => "form_post",
            Self::Query => "query",
        }
    }
}

/// A sign-in sent to the browser and not yet answered: the state, nonce and PKCE
/// verifier to check the answer with. Keep it server-side in the admin's session and
/// remove it when the answer arrives (see [`Onboarding`](crate::Onboarding)); it
/// expires after the onboarding's `max_age`. `Debug` shows none of its secrets.
#[derive(Serialize, Deserialize)]
pub struct PendingSignIn {
    state: String,
    nonce: String,
    code_verifier: String,
    authority: String,
    issued_at: u64,
}

impl PendingSignIn {
    /// The state it was issued with (the routes find a `form_post` answer by it).
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn state(&self) -> &str {
        &self.state
    }
}

impl fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("authority", &self.authority)
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

/// Most directory roles read from one `id_token` (Entra defines about a hundred).
const MAX_ROLES: usize = 256;

/// A user whose sign-in was proven by a validated `id_token`: the tenant they signed in
/// to, who they are, and the directory roles the token says they hold there. Only
/// [`Onboarding::finish_sign_in`] makes one.
///
/// The sign-in proves the tenant, not that the user is an admin of it: any member or
/// guest can sign in. [`Onboarding::consent`] asks for that proof (a directory role, or
/// required app roles the app lacked before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedInAdmin {
    tenant: TenantId,
    object_id: String,
    name: Option<String>,
    username: Option<String>,
    directory_roles: Vec<String>,
}

impl SignedInAdmin {
    /// The tenant the admin signed in to (its GUID, the `id_token`'s `tid`).
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The admin's object id in that tenant (`oid`).
    pub fn object_id(&self) -> &str {
        &self.object_id
    }

    /// The admin's display name (`name`), if the token carried it.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The admin's sign-in name (`preferred_username`), for display only: it is mutable
    /// and not unique across tenants, so never key anything on it.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The directory roles the user holds in the tenant, as role *template* ids in lower
    /// case (the `id_token`'s `wids`; Global Administrator is
    /// `62e90394-69f5-4237-9190-012177145e10`). Empty when the user holds none, or when
    /// Entra does not emit `wids` for the app: it does only when the app's token
    /// configuration asks for it (Token configuration > Add groups claim > Directory
    /// roles, i.e. `groupMembershipClaims` `DirectoryRole` or `All` in the manifest, or
    /// the optional claim `wids`).
    pub fn directory_roles(&self) -> &[String] {
        &self.directory_roles
    }
}

/// The `wids` claim: directory role template ids, lower case, bounded. Anything that is
/// not a string is skipped; a `wids` that is not an array reads as no roles.
pub(super) fn directory_roles(raw: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    let Some(serde_json::Value::Array(wids)) = raw.get("wids") else {
        return Vec::new();
    };
    let mut roles: Vec<String> = wids
        .iter()
        .filter_map(serde_json::Value::as_str)
        .filter(|r| !r.is_empty() && r.len() <= 64)
        .take(MAX_ROLES)
        .map(str::to_ascii_lowercase)
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

impl Onboarding {
    /// The URL to send the admin to for sign-in, and the pending value to keep
    /// server-side until the answer comes back to the sign-in redirect URI.
    pub fn sign_in(&self, tenant: SignInTenant) -> Result<(Url, PendingSignIn), OnboardingError> {
        let pending = PendingSignIn {
            state: random_value()?,
            nonce: random_value()?,
            code_verifier: random_value()?,
            authority: tenant.as_str().to_owned(),
            issued_at: self.now_secs(),
        };
        let mut url = self.cloud.authority_host().clone();
        url.path_segments_mut()
            .map_err(|_| OnboardingError::Internal("the authority host cannot take a path"))?
            .pop_if_empty()
            .extend([tenant.as_str(), "oauth2", "v2.0", "authorize"]);
        url.query_pairs_mut()
            .append_pair("client_id", self.client_id())
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", self.sign_in_redirect.as_str())
            .append_pair("response_mode", self.response_mode.as_str())
            .append_pair("scope", "openid profile")
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &pkce_challenge(&pending.code_verifier))
            .append_pair("code_challenge_method", "S256");
        Ok((url, pending))
    }

    /// Checks the sign-in answer (`callback`: the query string, or the `form_post` body),
    /// redeems its code with the app's credential, validates the `id_token` and returns
    /// the proven user.
    ///
    /// `pending` is consumed. Its state is recorded as spent as soon as a callback carrying
    /// it passes the state check, whatever happens next, so that callback cannot be played
    /// again (in this process, while the state is younger than `max_age`). A callback
    /// refused before that point (expired pending value, malformed, an `error`, another
    /// state) spends nothing.
    pub async fn finish_sign_in(
        &self,
        pending: PendingSignIn,
        callback: &str,
    ) -> Result<SignedInAdmin, OnboardingError> {
        self.check_age(pending.issued_at)?;
        let callback = Callback::parse(callback)?;
        // The state first: anyone can send the admin's browser to the callback with
        // `error=...`, and a refusal that counted without it would end the real flow.
        callback.check_state(&pending.state)?;
        callback.refusal()?;
        self.spend(&pending.state, pending.issued_at).await?;
        let code = callback
            .get("code")
            .filter(|c| !c.is_empty())
            .ok_or(OnboardingError::Malformed("the sign-in answer has no code"))?;
        if code.len() > MAX_CODE {
            return Err(OnboardingError::Malformed("the code is longer than 8 KiB"));
        }
        let id_token = redeem(
            self.client.as_ref(),
            Redemption {
                authority: &pending.authority,
                code,
                code_verifier: &pending.code_verifier,
                redirect_uri: self.sign_in_redirect.as_str(),
            },
        )
        .await?;
        let mut expect = IdTokenExpectations::new(self.client_id(), pending.nonce.as_str());
        if let Ok(asked) = pending.authority.parse::<TenantId>()
            && asked.is_guid()
        {
            expect = expect.tenant(asked);
        }
        let claims = self
            .validator
            .validate_id_token(id_token.expose(), &expect)
            .await
            .map_err(|e| OnboardingError::IdTokenRejected(Box::new(e)))?;
        let admin = SignedInAdmin {
            tenant: claims.tid,
            object_id: claims.oid,
            name: claims.name.as_deref().map(crate::error::echo),
            username: claims.preferred_username.as_deref().map(crate::error::echo),
            directory_roles: directory_roles(&claims.raw),
        };
        tracing::info!(tenant = %admin.tenant, admin = %admin.object_id, roles = ?admin.directory_roles, "sign-in proven");
        Ok(admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_sign_in_never_shows_its_secrets() {
        let pending = PendingSignIn {
            state: random_value().unwrap(),
            nonce: random_value().unwrap(),
            code_verifier: random_value().unwrap(),
            authority: "organizations".into(),
            issued_at: 1_700_000_000,
        };
        let shown = format!("{pending:?}");
        for secret in [&pending.state, &pending.nonce, &pending.code_verifier] {
            assert!(!shown.contains(secret.as_str()), "{shown}");
        }
        assert!(shown.contains("organizations"));
    }

    #[test]
    fn wids_are_read_as_lower_case_role_ids_and_anything_else_is_no_role() {
        let read = |v: serde_json::Value| {
            let serde_json::Value::Object(raw) = v else {
                unreachable!()
            };
            directory_roles(&raw)
        };
        let ga = "62e90394-69f5-4237-9190-012177145e10";
        assert_eq!(
            read(
                serde_json::json!({"wids": [ga.to_uppercase(), 7, null, "", ga, "b79fbf4d-3ef9-4689-8143-76b194e85509"]})
            ),
            vec![
                ga.to_owned(),
                "b79fbf4d-3ef9-4689-8143-76b194e85509".to_owned()
            ]
        );
        for none in [
            serde_json::json!({}),
            serde_json::json!({"wids": ga}),
            serde_json::json!({"wids": {"0": ga}}),
            serde_json::json!({"wids": ["x".repeat(65)]}),
        ] {
            assert!(read(none.clone()).is_empty(), "{none}");
        }
        let many: Vec<String> = (0..10_000)
            .map(|i| format!("{i:08}-0000-0000-0000-000000000000"))
            .collect();
        assert_eq!(read(serde_json::json!({ "wids": many })).len(), MAX_ROLES);
    }
}

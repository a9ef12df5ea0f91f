//! Onboarding a customer tenant: the admin consent URL their admin opens, and the
//! callback Entra redirects back to (ENTRA.md section 5).
//!
//! The tenant a callback names is *unconfirmed*: anyone can craft a redirect. Bind the
//! request to a server-side `state` nonce, then [`UnconfirmedTenant::confirm`] it by
//! getting a token in that tenant.

use std::fmt;

use url::Url;

use crate::cloud::Cloud;
use crate::error::Error;
use crate::provider::TenantCredentialProvider;
use crate::tenant::TenantId;

/// Longest callback query accepted.
const MAX_QUERY: usize = 8 * 1024;

/// Which tenant the consent is asked in: a known customer, or `organizations` when the
/// admin's tenant is not known yet (the callback then names it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsentTenant {
    /// A known tenant.
    Tenant(TenantId),
    /// Any work or school tenant; the admin signs in to theirs.
    Organizations,
}

impl ConsentTenant {
    fn as_str(&self) -> &str {
        match self {
            Self::Tenant(t) => t.as_str(),
            Self::Organizations => "organizations",
        }
    }
}

impl From<TenantId> for ConsentTenant {
    fn from(t: TenantId) -> Self {
        Self::Tenant(t)
    }
}

/// The v1 admin consent URL:
/// `{authority}/{tenant|organizations}/adminconsent?client_id=..&redirect_uri=..&state=..`.
///
/// `state` must be an unguessable nonce you keep server-side and check in the callback.
///
/// ```
/// use azure_cross_tenant::{Cloud, ConsentTenant, admin_consent_url};
///
/// let url = admin_consent_url(
///     &Cloud::Public,
///     &ConsentTenant::Organizations,
///     "11111111-2222-3333-4444-555555555555",
///     "https://saas.example/onboarding/callback",
///     "b1f0c3e2a9d84c7e",
/// )?;
/// assert!(url.as_str().starts_with("https://login.microsoftonline.com/organizations/adminconsent?client_id="));
/// # Ok::<(), azure_cross_tenant::Error>(())
/// ```
pub fn admin_consent_url(
    cloud: &Cloud,
    tenant: &ConsentTenant,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
) -> Result<Url, Error> {
    build(cloud, tenant, client_id, redirect_uri, state, None)
}

/// The v2 admin consent URL, asking for the permissions of one resource:
/// `{authority}/{tenant}/v2.0/adminconsent?client_id=..&scope={resource}/.default&redirect_uri=..&state=..`.
pub fn admin_consent_url_v2(
    cloud: &Cloud,
    tenant: &ConsentTenant,
    client_id: &str,
    scope: &str,
    redirect_uri: &str,
    state: &str,
) -> Result<Url, Error> {
    let scopes = [scope];
    let scope = crate::scope::normalized(&scopes)?;
    build(cloud, tenant, client_id, redirect_uri, state, Some(scope))
}

fn build(
    cloud: &Cloud,
    tenant: &ConsentTenant,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    scope: Option<&str>,
) -> Result<Url, Error> {
    if !crate::tenant::is_guid(client_id) {
        return Err(Error::InvalidConfiguration(format!(
            "client id {:?} is not a GUID",
            crate::error::echo(client_id)
        )));
    }
    let redirect = Url::parse(redirect_uri)
        .map_err(|e| Error::InvalidConfiguration(format!("redirect URI is not a URL: {e}")))?;
    if redirect.scheme() != "https" && redirect.host_str() != Some("localhost") {
        return Err(Error::InvalidConfiguration(
            "the redirect URI must be https (or http://localhost for development)".into(),
        ));
    }
    if state.len() < 16 {
        return Err(Error::InvalidConfiguration(
            "state must be an unguessable nonce of at least 16 characters".into(),
        ));
    }
    let mut url = cloud.authority_host().clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push(tenant.as_str());
        if scope.is_some() {
            segments.push("v2.0");
        }
        segments.push("adminconsent");
    }
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", client_id);
        if let Some(scope) = scope {
            q.append_pair("scope", scope);
        }
        q.append_pair("redirect_uri", redirect.as_str());
        q.append_pair("state", state);
    }
    Ok(url)
}

/// Why a consent callback was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsentError {
    /// The admin declined, or Entra reported an error (`error`, `error_description`).
    #[error("admin consent was not granted: {error}: {description}")]
    Denied {
        /// The OAuth `error`.
        error: String,
        /// Entra's description (first line, bounded).
        description: String,
    },
    /// The `state` is missing or not the one this server issued: a forged or replayed
    /// callback.
    #[error("the callback's state does not match the one issued; ignore it (forged or replayed)")]
    StateMismatch,
    /// The callback does not say consent was granted.
    #[error("the callback does not report admin_consent=True")]
    NotGranted,
    /// The callback lacks a tenant, or names an invalid one.
    #[error("the callback names no valid tenant: {0}")]
    BadTenant(String),
    /// The query is malformed (too long, a parameter repeated).
    #[error("malformed callback query: {0}")]
    Malformed(&'static str),
}

/// A parsed admin consent callback.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AdminConsentCallback;

impl AdminConsentCallback {
    /// Parses the callback's query string (with or without the leading `?`), checking
    /// `error` first (v2 errors may also carry `admin_consent=True`), then `state`
    /// against `expected_state`, then the grant and the tenant.
    ///
    /// ```
    /// use azure_cross_tenant::{AdminConsentCallback, ConsentError};
    ///
    /// let ok = AdminConsentCallback::parse(
    ///     "admin_consent=True&tenant=72f988bf-86f1-41af-91ab-2d7cd011db47&state=b1f0c3e2a9d84c7e",
    ///     "b1f0c3e2a9d84c7e",
    /// )?;
    /// assert_eq!(ok.tenant().as_str(), "72f988bf-86f1-41af-91ab-2d7cd011db47");
    ///
    /// let forged = AdminConsentCallback::parse(
    ///     "admin_consent=True&tenant=72f988bf-86f1-41af-91ab-2d7cd011db47&state=guess",
    ///     "b1f0c3e2a9d84c7e",
    /// );
    /// assert_eq!(forged.unwrap_err(), ConsentError::StateMismatch);
    /// # Ok::<(), ConsentError>(())
    /// ```
    pub fn parse(query: &str, expected_state: &str) -> Result<UnconfirmedTenant, ConsentError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        if query.len() > MAX_QUERY {
            return Err(ConsentError::Malformed("longer than 8 KiB"));
        }
        let mut fields: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if fields.iter().any(|(seen, _)| *seen == k) {
                return Err(ConsentError::Malformed("a parameter is repeated"));
            }
            fields.push((k.into_owned(), v.into_owned()));
        }
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let short = |s: &str| crate::error::echo(s.lines().next().unwrap_or_default());
        if let Some(error) = get("error") {
            return Err(ConsentError::Denied {
                error: short(error),
                description: short(get("error_description").unwrap_or_default()),
            });
        }
        match get("state") {
            Some(state) if constant_time_eq(state.as_bytes(), expected_state.as_bytes()) => {}
            _ => return Err(ConsentError::StateMismatch),
        }
        if !get("admin_consent").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Err(ConsentError::NotGranted);
        }
        let tenant = get("tenant").ok_or_else(|| ConsentError::BadTenant("missing".into()))?;
        let tenant: TenantId = tenant
            .parse()
            .map_err(|e: Error| ConsentError::BadTenant(e.to_string()))?;
        Ok(UnconfirmedTenant {
            tenant,
            scope: get("scope").map(str::to_owned),
        })
    }
}

/// Compares without an early exit, so timing does not reveal how much of a guessed
/// state matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A tenant a consent callback named, not yet proven: a token request in it confirms it.
#[derive(Clone, PartialEq, Eq)]
pub struct UnconfirmedTenant {
    tenant: TenantId,
    scope: Option<String>,
}

impl fmt::Debug for UnconfirmedTenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnconfirmedTenant")
            .field("tenant", &self.tenant)
            .field("scope", &self.scope)
            .finish()
    }
}

impl UnconfirmedTenant {
    /// The tenant the callback named (unconfirmed).
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The scope a v2 callback reported, if any.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// Confirms consent by getting a token for `scope` in the tenant. Right after consent,
    /// replication can make this fail with `NotConsented` for a few minutes: retry later.
    pub async fn confirm<P: TenantCredentialProvider + ?Sized>(
        self,
        provider: &P,
        scope: &str,
    ) -> Result<ConfirmedTenant, Error> {
        let token = provider.get_token(&self.tenant, &[scope]).await?;
        let claims = crate::jwt::peek_claims(token.secret());
        Ok(ConfirmedTenant {
            tenant: self.tenant,
            tenant_guid: claims.as_ref().and_then(|c| c.tid.clone()),
            service_principal_object_id: claims.and_then(|c| c.oid),
        })
    }
}

/// A tenant where the app is now proven to have a service principal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfirmedTenant {
    /// The tenant, as the callback named it.
    pub tenant: TenantId,
    /// Its GUID, from the token.
    pub tenant_guid: Option<String>,
    /// The app's service principal object id there (the `oid` tokens will carry): store it
    /// as the expected `oid`.
    pub service_principal_object_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = "0123456789abcdef0123";
    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    #[test]
    fn the_not_consented_url_names_tenant_and_client() {
        let url =
            Cloud::Public.admin_consent_url("contoso.com", "11111111-2222-3333-4444-555555555555");
        assert_eq!(
            url.as_str(),
            "https://login.microsoftonline.com/contoso.com/adminconsent?client_id=11111111-2222-3333-4444-555555555555"
        );
    }

    #[test]
    fn v1_and_v2_urls_have_their_documented_shapes() {
        let t = ConsentTenant::Tenant(TID.parse().unwrap());
        let app = "11111111-2222-3333-4444-555555555555";
        let v1 = admin_consent_url(
            &Cloud::UsGovernment,
            &t,
            app,
            "https://saas.example/cb",
            STATE,
        )
        .unwrap();
        assert_eq!(
            v1.as_str(),
            format!(
                "https://login.microsoftonline.us/{TID}/adminconsent?client_id={app}&redirect_uri=https%3A%2F%2Fsaas.example%2Fcb&state={STATE}"
            )
        );
        let v2 = admin_consent_url_v2(
            &Cloud::Public,
            &t,
            app,
            "https://vault.azure.net/.default",
            "https://saas.example/cb",
            STATE,
        )
        .unwrap();
        assert!(v2.path().ends_with("/v2.0/adminconsent"), "{v2}");
        assert!(
            v2.query()
                .unwrap()
                .contains("scope=https%3A%2F%2Fvault.azure.net%2F.default")
        );
    }

    #[test]
    fn bad_url_inputs_are_refused() {
        let t = ConsentTenant::Organizations;
        let app = "11111111-2222-3333-4444-555555555555";
        assert!(admin_consent_url(&Cloud::Public, &t, "app", "https://a.example/", STATE).is_err());
        assert!(admin_consent_url(&Cloud::Public, &t, app, "http://a.example/", STATE).is_err());
        assert!(admin_consent_url(&Cloud::Public, &t, app, "https://a.example/", "short").is_err());
        assert!(
            admin_consent_url_v2(
                &Cloud::Public,
                &t,
                app,
                "User.Read",
                "https://a.example/",
                STATE
            )
            .is_err()
        );
    }

    #[test]
    fn callbacks_check_error_first_then_state_then_grant() {
        let ok = AdminConsentCallback::parse(
            &format!("?admin_consent=True&tenant={TID}&state={STATE}&scope=x"),
            STATE,
        )
        .unwrap();
        assert_eq!(ok.tenant().as_str(), TID);
        assert_eq!(ok.scope(), Some("x"));

        // v2 errors may carry admin_consent=True: the error wins.
        let err = AdminConsentCallback::parse(
            &format!("admin_consent=True&error=access_denied&error_description=AADSTS65004%3A+User+declined&tenant={TID}&state={STATE}"),
            STATE,
        )
        .unwrap_err();
        assert!(
            matches!(err, ConsentError::Denied { ref error, .. } if error == "access_denied"),
            "{err:?}"
        );

        for (query, want) in [
            (
                format!("admin_consent=True&tenant={TID}"),
                ConsentError::StateMismatch,
            ),
            (
                format!("admin_consent=True&tenant={TID}&state={STATE}x"),
                ConsentError::StateMismatch,
            ),
            (
                format!("admin_consent=True&tenant={TID}&state=0123456789abcdef0124"),
                ConsentError::StateMismatch,
            ),
            (
                format!("admin_consent=False&tenant={TID}&state={STATE}"),
                ConsentError::NotGranted,
            ),
            (
                format!("tenant={TID}&state={STATE}"),
                ConsentError::NotGranted,
            ),
            (
                format!("admin_consent=True&tenant={TID}&tenant=evil.example&state={STATE}"),
                ConsentError::Malformed("a parameter is repeated"),
            ),
        ] {
            assert_eq!(
                AdminConsentCallback::parse(&query, STATE).unwrap_err(),
                want,
                "{query}"
            );
        }
        for bad in ["common", "../x", ""] {
            let q = format!("admin_consent=True&tenant={bad}&state={STATE}");
            assert!(
                matches!(
                    AdminConsentCallback::parse(&q, STATE),
                    Err(ConsentError::BadTenant(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            AdminConsentCallback::parse(&format!("admin_consent=True&state={STATE}"), STATE),
            Err(ConsentError::BadTenant(_))
        ));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any query either parses into a GUID-or-domain tenant with the right state, or
        /// is refused; never a panic.
        #[test]
        fn arbitrary_callbacks_never_panic(query in ".{0,300}", state in "[a-z0-9]{16,24}") {
            if let Ok(t) = AdminConsentCallback::parse(&query, &state) {
                prop_assert!(query.contains(&state));
                prop_assert!(t.tenant().as_str().parse::<TenantId>().is_ok());
            }
        }
    }
}

//! The [`TenantCredentialProvider`] trait: "an app-only token from this tenant for this resource".

use std::sync::Arc;

use crate::error::Error;
use crate::tenant::TenantId;
use crate::token::AccessToken;

/// Gets app-only tokens for one multitenant app from any tenant that consented to it.
///
/// The credentials in this crate ([`ClientSecret`](crate::ClientSecret), …) make one
/// request per call and cache nothing; wrap them in [`Cached`](crate::Cached) to reuse
/// tokens. To write your own provider, implement it like this:
///
/// ```
/// use azure_cross_tenant::{AccessToken, Error, Scopes, TenantCredentialProvider, TenantId};
///
/// #[derive(Debug)]
/// struct FromVault;
///
/// #[async_trait::async_trait]
/// impl TenantCredentialProvider for FromVault {
///     fn client_id(&self) -> &str {
///         "00000000-0000-0000-0000-000000000001"
///     }
///     async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
///         let scopes = Scopes::parse(scopes)?;
///         Err(Error::provider(tenant.clone(), format!("no token for {scopes} in this example")))
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait TenantCredentialProvider: Send + Sync + std::fmt::Debug {
    /// The multitenant app's client id (the same in every tenant).
    fn client_id(&self) -> &str;

    /// An app-only token for `scopes` (one resource, e.g. `"https://vault.azure.net/.default"`)
    /// issued by `tenant`.
    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error>;

    /// The authority host tokens come from; part of every cache key so tokens never cross
    /// clouds. Defaults to the public cloud's.
    fn authority_host(&self) -> &url::Url {
        crate::Cloud::Public.authority_host()
    }

    /// The GUID of `tenant` when it is named by one of its domains, if this provider can
    /// tell without a token: the credentials of this crate read it from the tenant's
    /// OpenID metadata (one GET to the authority). [`Cached`](crate::Cached) uses it to
    /// give a tenant one cache identity whichever form is asked, before the first token
    /// (after it, the token's `tid` tells). `Ok(None)` when it cannot tell, or the tenant
    /// does not exist; a GUID gives itself. Defaults to `Ok(None)`.
    async fn resolve_tenant(&self, tenant: &TenantId) -> Result<Option<TenantId>, Error> {
        Ok(tenant.is_guid().then(|| tenant.clone()))
    }

    /// What the app's credential reports about itself: its label, when it expires and
    /// how many days are left, how often Entra refused it, certificate reloads, and a
    /// [`CredentialSet`](crate::CredentialSet)'s switches. This crate's credentials (and
    /// [`Cached`](crate::Cached) or `Arc` of one) answer; defaults to `None` for a
    /// provider that does not say.
    fn credential_stats(&self) -> Option<crate::CredentialStats> {
        None
    }
}

#[async_trait::async_trait]
impl<P: TenantCredentialProvider + ?Sized> TenantCredentialProvider for Arc<P> {
    fn client_id(&self) -> &str {
        (**self).client_id()
    }

    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        (**self).get_token(tenant, scopes).await
    }

    fn authority_host(&self) -> &url::Url {
        (**self).authority_host()
    }

    async fn resolve_tenant(&self, tenant: &TenantId) -> Result<Option<TenantId>, Error> {
        (**self).resolve_tenant(tenant).await
    }

    fn credential_stats(&self) -> Option<crate::CredentialStats> {
        (**self).credential_stats()
    }
}

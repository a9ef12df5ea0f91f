//! [`TenantCredential`]: any [`TenantCredentialProvider`] as an `azure_core`
//! `TokenCredential` for one tenant, so every official Azure SDK client works with it.
//! Feature `azure-core`.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use azure_core::credentials::{
    AccessToken as CoreToken, Secret, TokenCredential, TokenRequestOptions,
};
use azure_core::error::ErrorKind;
use azure_core::time::OffsetDateTime;

use crate::error::Error;
use crate::provider::TenantCredentialProvider;
use crate::tenant::TenantId;

/// A `TokenCredential` answering with tokens from one customer tenant.
///
/// The Azure SDK's bearer policy keeps one token per client, so build **one SDK client per
/// tenant**, all from one shared [`Cached`](crate::Cached) provider: the cache, not the
/// SDK, is where tokens live, and no client can ever be handed another tenant's token.
///
/// Errors arrive as `azure_core::Error` of kind `Credential` wrapping this crate's
/// [`Error`]: get it back with [`find_error`](crate::find_error) to branch on
/// `NotConsented` and friends. Transport failures too are of kind `Credential`, as
/// azure_identity's credentials report them: the credential's own
/// [`RetryPolicy`](crate::RetryPolicy) has retried them already, and the SDK's retry
/// policy, which retries `Io` and `Connection` errors, would call it again up to eight
/// times.
///
/// ```
/// use azure_core::credentials::TokenCredential;
/// use mock_entra::MockEntra;
/// use azure_cross_tenant::{Cached, ClientSecret, TenantCredentialExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let entra = MockEntra::start().await;
/// # let home = entra.add_tenant("provider.example");
/// # let fabrikam = entra.add_tenant("fabrikam.example");
/// # let app = entra.register_app(&home, "saas");
/// # let secret = entra.add_secret(&app);
/// # entra.consent(&fabrikam, &app);
/// let provider = Cached::new(
///     ClientSecret::new(app.client_id(), secret).authority_host(entra.uri()).build()?,
/// );
/// // One credential (and one SDK client) per tenant, all sharing `provider`'s cache.
/// let for_fabrikam = provider.for_tenant(fabrikam);
/// let token = for_fabrikam.get_token(&["https://vault.azure.net/.default"], None).await?;
/// assert!(!token.token.secret().is_empty());
/// # Ok(()) }
/// ```
pub struct TenantCredential {
    provider: Arc<dyn TenantCredentialProvider>,
    tenant: TenantId,
}

impl fmt::Debug for TenantCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantCredential")
            .field("tenant", &self.tenant)
            .field("client_id", &self.provider.client_id())
            .finish()
    }
}

impl TenantCredential {
    /// A credential for `tenant` over `provider`.
    pub fn new(provider: Arc<dyn TenantCredentialProvider>, tenant: TenantId) -> Arc<Self> {
        Arc::new(Self { provider, tenant })
    }

    /// The tenant its tokens come from.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

#[async_trait::async_trait]
impl TokenCredential for TenantCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<CoreToken> {
        let token = self
            .provider
            .get_token(&self.tenant, scopes)
            .await
            .map_err(into_core_error)?;
        Ok(CoreToken::new(
            Secret::new(token.secret().to_owned()),
            core_time(token.expires_on()),
        ))
    }
}

/// The last second `azure_core`'s time type holds in every build: 9999-12-31T23:59:59Z.
const LATEST_CORE_TIME: i64 = 253_402_300_799;

/// `at` in `azure_core`'s time, which ends with the year 9999 (`From<SystemTime>` panics
/// past it). An expiry comes from the token endpoint's `expires_in` or a custom provider,
/// so it may be anything: a later one is cut to the last second azure_core can hold (our
/// cache, not the SDK's, decides when the token is refreshed), an earlier than 1970 one is
/// the epoch (expired either way).
fn core_time(at: SystemTime) -> OffsetDateTime {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    OffsetDateTime::from_unix_timestamp(secs.min(LATEST_CORE_TIME))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Every failure is a `Credential` error, whatever its cause: what could be retried was
/// retried by the credential's own policy, and an `Io` or `Connection` kind would make the
/// SDK's retry policy ask again, multiplying attempts (and their timeouts) on an
/// authority that is already failing.
fn into_core_error(err: Error) -> azure_core::Error {
    azure_core::Error::new(ErrorKind::Credential, err)
}

/// This crate's [`Error`] inside an `azure_core::Error` an SDK client returned, however
/// deeply the SDK's policies wrapped it: branch on it (`NotConsented`, `Throttled`...)
/// instead of parsing messages.
pub fn find_error(err: &azure_core::Error) -> Option<&Error> {
    let mut current: &(dyn std::error::Error + 'static) = err.get_ref()?;
    // Bounded: a wrapping chain is a few levels deep.
    for _ in 0..16 {
        if let Some(ours) = current.downcast_ref::<Error>() {
            return Some(ours);
        }
        current = match current.downcast_ref::<azure_core::Error>() {
            Some(core) => core.get_ref()?,
            None => current.source()?,
        };
    }
    None
}

/// `provider.for_tenant(tenant)`: an `azure_core` credential for one tenant. Implemented
/// for every cloneable provider (`Cached<P>`, `Arc<P>`).
pub trait TenantCredentialExt {
    /// A `TokenCredential` for `tenant` sharing this provider (and its cache).
    fn for_tenant(&self, tenant: TenantId) -> Arc<TenantCredential>;
}

impl<P: TenantCredentialProvider + Clone + 'static> TenantCredentialExt for P {
    fn for_tenant(&self, tenant: TenantId) -> Arc<TenantCredential> {
        TenantCredential::new(Arc::new(self.clone()), tenant)
    }
}

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
/// **Invalidation reaches the SDK at its next call.** azure_core's bearer policy keeps the
/// token it was given and asks its credential again only within 5 minutes of the expiry
/// it was told; when that second ask fails it keeps the old token until that expiry. So
/// this credential tells azure_core that each token has already expired (`expires_on` is
/// the Unix epoch): the policy asks again before every request, each ask is a cache hit
/// (about 1 us more per SDK call than a policy holding its own copy, a tenth of the SDK's
/// own request path without the network; see the README's benchmarks), and once [`invalidate_tenant`](crate::Cached::invalidate_tenant) (or any
/// invalidation) has returned, no request of an SDK client sends the token it dropped:
/// the next one carries a new token, or fails with the cache's error (`NotConsented` once
/// consent is revoked). A request already past its policy when the invalidation runs
/// still goes out with the old token.
///
/// A consumer that schedules its own refresh from `expires_on` instead of asking per
/// request (the AMQP clients of Event Hubs and Service Bus authorize a connection once
/// and refresh shortly before the expiry) would refresh in a loop on that answer: give it
/// [`reporting_token_expiry`](Self::reporting_token_expiry), and know that it then keeps
/// a token past an invalidation until it refreshes, up to the token's expiry.
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
    /// Whether azure_core is told each token's own expiry (else: already expired).
    token_expiry: bool,
}

impl fmt::Debug for TenantCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantCredential")
            .field("tenant", &self.tenant)
            .field("client_id", &self.provider.client_id())
            .field("token_expiry", &self.token_expiry)
            .finish()
    }
}

impl TenantCredential {
    /// A credential for `tenant` over `provider`.
    pub fn new(provider: Arc<dyn TenantCredentialProvider>, tenant: TenantId) -> Arc<Self> {
        Arc::new(Self {
            provider,
            tenant,
            token_expiry: false,
        })
    }

    /// The tenant its tokens come from.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The same credential, telling azure_core each token's own expiry instead of "already
    /// expired": for consumers that schedule their own refresh from `expires_on` (Event
    /// Hubs' and Service Bus's AMQP clients). Such a consumer keeps a token after an
    /// invalidation until it refreshes it, up to the token's expiry. HTTP clients (Key
    /// Vault, Storage, ARM...) want the credential as [`for_tenant`](TenantCredentialExt::for_tenant)
    /// makes it.
    ///
    /// ```
    /// use azure_cross_tenant::{Cached, ClientSecret, TenantCredentialExt};
    ///
    /// let provider = Cached::new(ClientSecret::new("11111111-2222-3333-4444-555555555555", "secret").build()?);
    /// let for_amqp = provider.for_tenant("fabrikam.example".parse()?).reporting_token_expiry();
    /// # let _ = for_amqp;
    /// # Ok::<(), azure_cross_tenant::Error>(())
    /// ```
    pub fn reporting_token_expiry(&self) -> Arc<Self> {
        Arc::new(Self {
            provider: self.provider.clone(),
            tenant: self.tenant.clone(),
            token_expiry: true,
        })
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
        // "Already expired" makes azure_core's bearer policy ask again before every
        // request and, when asking fails, fail the request instead of keeping this token
        // (it keeps a token whose reported expiry has not passed): see the type's docs.
        let expires_on = if self.token_expiry {
            core_time(token.expires_on())
        } else {
            OffsetDateTime::UNIX_EPOCH
        };
        Ok(CoreToken::new(
            Secret::new(token.secret().to_owned()),
            expires_on,
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

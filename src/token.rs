//! [`AccessToken`]: an app-only token, its lifetime, and the tenant and scope it was issued for.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::scope::Scopes;
use crate::tenant::TenantId;

/// An access token issued by one tenant for one resource.
///
/// Cloning is a reference-count bump: the token's text is shared, never copied, so a
/// cache hit costs no allocation. `Debug` prints `<redacted>` instead of the token; the
/// text comes out only through [`AccessToken::secret`].
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use azure_cross_tenant::{AccessToken, Scopes, TenantId};
///
/// let tenant: TenantId = "contoso.com".parse()?;
/// let scopes = Scopes::parse(&["https://vault.azure.net/.default"])?;
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let token = AccessToken::new("eyJ0eXAi...", now + Duration::from_secs(3600), tenant, scopes);
/// assert!(!format!("{token:?}").contains("eyJ0eXAi"));
/// assert_eq!(token.secret(), "eyJ0eXAi...");
/// assert!(!token.is_expired_at(now));
/// # Ok::<(), azure_cross_tenant::Error>(())
/// ```
#[derive(Clone)]
pub struct AccessToken {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    secret: Box<str>,
    expires_on: SystemTime,
    refresh_on: Option<SystemTime>,
    issued_on: Option<SystemTime>,
    tenant: TenantId,
    scopes: Scopes,
}

impl AccessToken {
    /// A token that expires at `expires_on`, issued by `tenant` for `scopes`.
    pub fn new(
        secret: impl Into<Box<str>>,
        expires_on: SystemTime,
        tenant: TenantId,
        scopes: Scopes,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                secret: secret.into(),
                expires_on,
                refresh_on: None,
                issued_on: None,
                tenant,
                scopes,
            }),
        }
    }

    /// The same token, with the time Entra suggested refreshing it (`refresh_in`).
    #[must_use]
    pub fn with_refresh_on(mut self, refresh_on: SystemTime) -> Self {
        Arc::make_mut(&mut self.inner).refresh_on = Some(refresh_on);
        self
    }

    /// The same token, stamped with when it was issued (on the clock of whoever received
    /// it). Caches measure a token's lifetime from it, so a token passed from cache to
    /// cache (or through a shared cache) keeps the expiry margin of its full lifetime.
    #[must_use]
    pub fn with_issued_on(mut self, issued_on: SystemTime) -> Self {
        Arc::make_mut(&mut self.inner).issued_on = Some(issued_on);
        self
    }

    /// The same token, filed under `tenant` (the GUID a cache learned for the domain it
    /// was asked by).
    #[must_use]
    pub(crate) fn with_tenant(mut self, tenant: TenantId) -> Self {
        Arc::make_mut(&mut self.inner).tenant = tenant;
        self
    }

    /// The same token, expiring no later than `at` (a refresh hint past it is dropped):
    /// the token endpoint's `expires_in` is not allowed to outlive the token's own `exp`.
    #[must_use]
    pub(crate) fn expiring_no_later_than(mut self, at: SystemTime) -> Self {
        if at < self.inner.expires_on {
            let inner = Arc::make_mut(&mut self.inner);
            inner.expires_on = at;
            inner.refresh_on = inner.refresh_on.filter(|r| *r < at);
        }
        self
    }

    /// When the token's life started, if known: for tokens from this crate's credentials,
    /// when the token request was sent (Entra's `expires_in` counts from its answer,
    /// which came later, so the life counted from here never runs past the real one).
    /// [`Cached`](crate::Cached) stamps tokens that lack it with the time it asked for them.
    pub fn issued_on(&self) -> Option<SystemTime> {
        self.inner.issued_on
    }

    /// The token's text, for an `Authorization: Bearer` header. Keep it out of logs.
    pub fn secret(&self) -> &str {
        &self.inner.secret
    }

    /// When the token stops being accepted.
    pub fn expires_on(&self) -> SystemTime {
        self.inner.expires_on
    }

    /// When Entra suggested refreshing it (from `refresh_in`), if it did.
    pub fn refresh_on(&self) -> Option<SystemTime> {
        self.inner.refresh_on
    }

    /// The tenant that issued it: as it was asked for (GUID or domain) from a credential;
    /// from [`Cached`](crate::Cached), its GUID once known, whichever form was asked (a
    /// tenant has one cache entry).
    pub fn tenant(&self) -> &TenantId {
        &self.inner.tenant
    }

    /// The scope it was issued for.
    pub fn scopes(&self) -> &Scopes {
        &self.inner.scopes
    }

    /// Whether the token has expired at `now`.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        now >= self.inner.expires_on
    }

    /// Whether two handles share the same token text (used to tell a cached token from a new one).
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"<redacted>")
            .field("tenant", &self.inner.tenant)
            .field("scopes", &self.inner.scopes)
            .field("expires_on", &self.inner.expires_on)
            .field("refresh_on", &self.inner.refresh_on)
            .field("issued_on", &self.inner.issued_on)
            .finish()
    }
}

/// A secret string (client secret, assertion) whose `Debug` is `<redacted>`.
#[derive(Clone)]
pub(crate) struct Secret(Arc<str>);

impl Secret {
    pub(crate) fn new(s: impl Into<Arc<str>>) -> Self {
        Self(s.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

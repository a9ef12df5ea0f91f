//! Onboarding a customer tenant, bound to a tenant its admin *proved* by signing in:
//! [`Onboarding`] (the flow and why it has two steps are on its docs).

mod admin_consent;
mod builder;
mod callback;
#[cfg(fuzzing)]
pub(crate) use callback::fuzz_callback;
#[cfg(feature = "axum")]
pub(crate) use callback::{Callback, random_value};
mod error;
mod redeem;
mod sign_in;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use url::Url;

use crate::clock::{SharedClock, SharedSleeper, SystemClock, TokioSleeper, unix_secs};
use crate::cloud::Cloud;
use crate::error::Error;
use crate::onboarding::OnboardingStore;
use crate::validate::TokenValidator;

pub use admin_consent::{AdminProof, OnboardedTenant, PendingConsent};
pub use builder::OnboardingBuilder;
pub use error::OnboardingError;
pub use redeem::SignInClient;
pub use sign_in::{PendingSignIn, ResponseMode, SignInTenant, SignedInAdmin};

/// How often (at most) a spend also purges the store's expired entries.
const PURGE_EVERY_SECS: u64 = 60;
/// How long past `max_age` a spent state is kept: pending values dated up to a minute
/// ahead (clock skew between replicas) are accepted.
const SPENT_MARGIN_SECS: u64 = 120;
/// How long a pending sign-in or consent stays usable by default.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(15 * 60);
/// Confirmation attempts by default: the first and five retries, 1 + 2 + 4 + 8 + 16 s apart.
const DEFAULT_CONFIRM_ATTEMPTS: u32 = 6;
const DEFAULT_CONFIRM_DELAY: Duration = Duration::from_secs(1);

/// Directory role template ids that may grant tenant-wide admin consent: Global
/// Administrator, Privileged Role Administrator, Cloud Application Administrator,
/// Application Administrator. The last two cannot grant application permissions of
/// Microsoft Graph; an app that asks for those should trust only the first two
/// ([`OnboardingBuilder::admin_roles`]).
pub const DEFAULT_ADMIN_ROLES: [&str; 4] = [
    "62e90394-69f5-4237-9190-012177145e10",
    "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "158c047a-c907-4556-b7ef-446551a6b5f7",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
];

/// The onboarding flow of one multitenant app: admin sign-in, then admin consent bound
/// to the tenant the sign-in proved. Share it behind an `Arc`; every method takes `&self`.
///
/// # Why two steps
///
/// An admin consent callback says `tenant=...`, and anyone can edit that URL. A token
/// request in the named tenant proves only that *some* admin of that tenant consented at
/// *some* time, not that the person at the browser did: customer X's admin could finish
/// their own consent, change `tenant=` to customer Y (who consented long ago), and get
/// Y's tenant linked to X's account. So the tenant is never taken from the callback:
///
/// 1. [`sign_in`](Self::sign_in): the admin signs in with OpenID Connect (authorization
///    code flow with PKCE, `scope=openid profile`, a fresh `state` and `nonce`).
/// 2. [`finish_sign_in`](Self::finish_sign_in): the code is redeemed with the app's credential and
///    the returned `id_token` is validated (signature by the tenant's published key,
///    `aud` = the app, `iss` of its `tid`, `nonce`, lifetime). Its `tid` is the
///    **proven tenant** and its `oid` the admin: a [`SignedInAdmin`].
/// 3. [`consent`](Self::consent): the admin consent URL *of that tenant*, with a new
///    single-use `state` bound to the proven tenant, once an admin's part is provable
///    (below).
/// 4. [`finish_consent`](Self::finish_consent): accepts only a callback without `error`, with
///    `admin_consent=True`, that `state`, and `tenant` equal to the proven tenant; then
///    confirms by getting an app-only token in the tenant carrying the required roles
///    (retrying a few times while the new service principal and its grants replicate).
///
/// # Proof that an admin acted
///
/// Any member or guest of a tenant can sign in, and the consent callback is unsigned: a
/// user of a tenant that consented long ago could skip the consent page, forge
/// `?admin_consent=True&tenant=<their tid>&state=...`, and the confirmation token would
/// succeed on the old consent. So the onboarding also needs proof that an *admin* took
/// part, one of:
///
/// - **a directory role**: the signed-in `id_token`'s `wids` claim holds one of the
///   [admin roles](OnboardingBuilder::admin_roles) (by default Global, Privileged Role,
///   Cloud Application and Application Administrator). Entra emits `wids` only when the
///   app's token configuration asks for it: Entra portal > App registrations > the app >
///   Token configuration > Add groups claim > Directory roles (or the optional claim
///   `wids`);
/// - **freshly granted app roles**: when the user holds no such role and the onboarding
///   [requires app roles](OnboardingBuilder::require_role) (application permissions,
///   which only an admin's consent grants, or an assignment by an admin, an app allowed
///   to assign app roles or an owner of the resource; never a user's own consent), [`consent`](Self::consent) first asks Entra for an app-only token in the
///   tenant. If the app lacks the required roles there (no service principal yet, or a
///   token without them), the pending consent records it, and a confirmation token
///   carrying them after the callback proves an admin granted them in between. Whether
///   the app's service principal merely exists proves nothing: a member's own sign-in
///   (user consent to `openid profile`) can create it. If the app holds the roles
///   already, or none is required, `consent` refuses with
///   [`OnboardingError::AdminNotProven`]; if Entra cannot be asked (network,
///   throttling), it fails closed with the retryable
///   [`OnboardingError::ConsentCheckFailed`].
///
/// So an app that needs no app role (its access comes from Azure RBAC, as for Key
/// Vault or Storage data) onboards only admins proven by `wids`. The second proof does
/// not name the admin, and [`OnboardingBuilder::admin_roles`] does not constrain who
/// granted: a member who asked an admin to grant the roles, or whose pending consents
/// (each lives 15 minutes; a script can keep some open) were open when any admin granted
/// them, finishes the flow as themselves. So [`OnboardedTenant::record`] makes an
/// [`AdminProof::FreshConsent`] record `Pending`: activate it after your own approval.
///
/// [`OnboardedTenant::proof`] says which proof was used. The confirmation token proves
/// that consent *exists* in the tenant; the signed-in `id_token` is what binds the
/// tenant to your customer's account. Link it with
/// [`TenantRegistry::link`](crate::TenantRegistry::link), which refuses a tenant that
/// another account holds.
///
/// # Where the pending values live
///
/// [`PendingSignIn`] and [`PendingConsent`] hold the state, nonce and PKCE verifier
/// between the redirects. Keep them **server-side** (not in a cookie-only session), and
/// *remove* them once a callback got past the state check (any result but
/// [`OnboardingError::StateMismatch`] or [`OnboardingError::Malformed`]: anyone can send
/// the admin's browser to the callback with a forged or malformed query). Server-side,
/// because the nonce and verifier are secrets the browser must not see, because only a
/// store you control makes `state` single-use (a sealed cookie would be tamper-evident
/// but could be replayed), and because the proof of an admin's part that a
/// [`PendingConsent`] records is trusted as stored: whoever can write your store can
/// write it. They serialize with serde, and expire after [`OnboardingBuilder::max_age`].
///
/// The drop-in routes ([`OnboardingRoutes`](crate::OnboardingRoutes), feature `axum`) do
/// all of this for you: the browser carries an opaque cookie, everything else lives in
/// the [`OnboardingStore`].
///
/// The `Onboarding` also records each state whose callback passed the state check and
/// carried no `error` (whether the step then succeeded or not) in its
/// [`OnboardingStore`](OnboardingBuilder::store), and refuses it again while it could
/// still be accepted (`max_age` and two minutes), so a replayed callback is refused even
/// if a session was not cleared. With the default store that record lives in this
/// process's memory (another replica or a restart does not know it; at most 100,000
/// entries, the soonest-expiring tenth dropped past that); with a shared store
/// ([`SqlRegistry::onboarding_store`](crate::SqlRegistry), features `sqlite`/`postgres`)
/// a callback is accepted at most once across every replica. A store that cannot be
/// reached refuses the callback ([`OnboardingError::Store`], retryable): the flow fails
/// closed.
///
/// ```no_run
/// use azure_cross_tenant::{
///     Cached, ClientSecret, InMemoryRegistry, Onboarding, Relink, SignInTenant, TenantRegistry,
/// };
///
/// # async fn run(sign_in_callback: &str, consent_callback: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let provider = Cached::new(ClientSecret::new("11111111-2222-3333-4444-555555555555", "secret").build()?);
/// let onboarding = Onboarding::builder(
///     provider.clone(),
///     "https://vault.azure.net/.default",
///     "https://saas.example/onboarding/signed-in",
/// )
/// .consent_redirect_uri("https://saas.example/onboarding/consented")
/// .build()?;
///
/// // GET /onboarding: send the admin to sign in; keep `pending` in the server-side session.
/// let (url, pending) = onboarding.sign_in(SignInTenant::Organizations)?;
/// # let _ = url;
/// // POST /onboarding/signed-in (form_post: code and state in the body).
/// let admin = onboarding.finish_sign_in(pending, sign_in_callback).await?;
/// // Send the same admin to consent in the tenant they proved.
/// let (url, pending) = onboarding.consent(&admin).await?;
/// # let _ = url;
/// // GET /onboarding/consented?admin_consent=True&tenant=...&state=...
/// let onboarded = onboarding.finish_consent(pending, consent_callback).await?;
/// let registry = InMemoryRegistry::new();
/// registry.link("customer-account-42", onboarded.record("Fabrikam"), Relink::Refuse).await?;
/// # Ok(()) }
/// ```
pub struct Onboarding {
    client: Arc<dyn SignInClient>,
    cloud: Cloud,
    validator: TokenValidator,
    scope: String,
    sign_in_redirect: Url,
    consent_redirect: Url,
    response_mode: ResponseMode,
    required_roles: Vec<String>,
    /// Directory role template ids (lower case) that prove an admin signed in.
    admin_roles: Vec<String>,
    max_age: Duration,
    confirm_attempts: u32,
    confirm_delay: Duration,
    clock: SharedClock,
    sleeper: SharedSleeper,
    /// Spent states (and, for the routes, pending flows).
    store: Arc<dyn OnboardingStore>,
    /// Whether `store` is the in-process default (the routes then take the registry's).
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    store_is_default: bool,
    /// When expired entries were last purged (Unix seconds).
    last_purge: AtomicU64,
}

impl fmt::Debug for Onboarding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Onboarding")
            .field("client", &self.client)
            .field("scope", &self.scope)
            .field("sign_in_redirect", &self.sign_in_redirect.as_str())
            .field("consent_redirect", &self.consent_redirect.as_str())
            .field("response_mode", &self.response_mode)
            .field("required_roles", &self.required_roles)
            .field("admin_roles", &self.admin_roles)
            .field("max_age", &self.max_age)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Onboarding {
    /// Starts building the flow of the app behind `client` (its credential: it redeems
    /// the admin's sign-in code and gets the confirmation token). `scope` is the
    /// `{resource}/.default` the admin consents to and the confirmation token is asked
    /// for; `sign_in_redirect_uri` receives the sign-in answer. Both redirect URIs must be
    /// registered on the app (Web platform).
    pub fn builder(
        client: impl SignInClient + 'static,
        scope: impl Into<String>,
        sign_in_redirect_uri: impl Into<String>,
    ) -> OnboardingBuilder {
        OnboardingBuilder {
            client: Arc::new(client),
            scope: scope.into(),
            sign_in_redirect: sign_in_redirect_uri.into(),
            consent_redirect: None,
            validator: None,
            response_mode: ResponseMode::FormPost,
            required_roles: Vec::new(),
            admin_roles: DEFAULT_ADMIN_ROLES
                .iter()
                .map(|r| (*r).to_owned())
                .collect(),
            max_age: DEFAULT_MAX_AGE,
            confirm_attempts: DEFAULT_CONFIRM_ATTEMPTS,
            confirm_delay: DEFAULT_CONFIRM_DELAY,
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(TokioSleeper),
            store: None,
        }
    }

    /// The app's client id.
    pub fn client_id(&self) -> &str {
        self.client.client_id()
    }

    /// The first of the configured admin roles that `admin`'s `id_token` carried, if any:
    /// whether their sign-in alone proves them an admin (see "Proof that an admin acted").
    ///
    /// ```no_run
    /// # async fn run(onboarding: &azure_cross_tenant::Onboarding, admin: &azure_cross_tenant::SignedInAdmin) {
    /// if onboarding.admin_role_of(admin).is_none() {
    ///     // Only a consent that does not exist yet can prove this user's part; say so
    ///     // before sending them on.
    /// }
    /// # }
    /// ```
    pub fn admin_role_of(&self, admin: &SignedInAdmin) -> Option<&str> {
        self.admin_role_in(admin.directory_roles())
    }

    fn admin_role_in(&self, roles: &[String]) -> Option<&str> {
        self.admin_roles
            .iter()
            .find(|r| roles.iter().any(|held| held.eq_ignore_ascii_case(r)))
            .map(String::as_str)
    }

    fn now_secs(&self) -> u64 {
        unix_secs(self.clock.now())
    }

    /// Refuses a pending value issued more than `max_age` ago (or in the future: a
    /// clock jump or a forged value).
    fn check_age(&self, issued_at: u64) -> Result<(), OnboardingError> {
        let now = self.now_secs();
        let max = self.max_age.as_secs();
        if issued_at > now.saturating_add(60) || now.saturating_sub(issued_at) > max {
            return Err(OnboardingError::Expired {
                age_secs: now.saturating_sub(issued_at),
                max_age_secs: max,
            });
        }
        Ok(())
    }

    /// The store holding spent states (and the routes' pending flows).
    pub fn store(&self) -> &Arc<dyn OnboardingStore> {
        &self.store
    }

    /// How long a pending sign-in or consent stays usable.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn store_is_default(&self) -> bool {
        self.store_is_default
    }

    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn set_store(&mut self, store: Arc<dyn OnboardingStore>) {
        self.store = store;
        self.store_is_default = false;
    }

    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The paths of the sign-in and consent redirect URIs.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn redirect_paths(&self) -> (&str, &str) {
        (self.sign_in_redirect.path(), self.consent_redirect.path())
    }

    /// Marks `state` spent in the store, atomically for every user of it; refuses one
    /// spent before. Now and then also purges the store's expired entries.
    async fn spend(&self, state: &str, issued_at: u64) -> Result<(), OnboardingError> {
        let key = format!("spent:{}", hex_digest(state.as_bytes()));
        let now = self.now_secs();
        let expires = issued_at
            .max(now)
            .saturating_add(self.max_age.as_secs())
            .saturating_add(SPENT_MARGIN_SECS);
        let fresh = self
            .store
            .insert_new(&key, b"", expires, now)
            .await
            .map_err(|e| OnboardingError::Store(Box::new(e)))?;
        self.purge_now_and_then(now).await;
        if !fresh {
            return Err(OnboardingError::Replayed);
        }
        Ok(())
    }

    /// Purges the store's expired entries at most once a minute per process; a failure
    /// is logged (the next spend tries again), never the caller's problem.
    pub(crate) async fn purge_now_and_then(&self, now: u64) {
        let last = self.last_purge.load(Ordering::Relaxed);
        if now < last.saturating_add(PURGE_EVERY_SECS)
            || self
                .last_purge
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        match self.store.purge_expired(now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired onboarding entries purged"),
            Err(e) => tracing::warn!(error = %e, "could not purge expired onboarding entries"),
        }
    }
}

/// Lower-case hex SHA-256 of `bytes`: how states and session ids become store keys.
pub(crate) fn hex_digest(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = String::with_capacity(64);
    for b in digest.as_ref() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A redirect URI Entra will send codes and consent answers to: `https`, or plain `http`
/// only on a loopback host (local development). Any other scheme is refused, whatever
/// its host (`javascript://localhost/` is not a loopback web server).
pub(crate) fn checked_redirect_uri(uri: &str) -> Result<Url, Error> {
    let bad = |why: &str| {
        Error::InvalidConfiguration(format!("redirect URI {:?} {why}", crate::error::echo(uri)))
    };
    let url = Url::parse(uri).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(bad("must not have a fragment"));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if is_loopback_host(&url) => Ok(url),
        "http" => Err(bad(
            "uses plain http; use https (plain http only on localhost or a loopback address)",
        )),
        _ => Err(bad("must be an https URL")),
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn onboarding() -> Onboarding {
        let credential = crate::ClientSecret::new("11111111-2222-3333-4444-555555555555", "s")
            .authority_host(Url::parse("http://127.0.0.1:9/").unwrap())
            .build()
            .unwrap();
        Onboarding::builder(
            credential,
            "https://vault.azure.net/.default",
            "https://saas.example/cb",
        )
        .build()
        .unwrap()
    }

    #[tokio::test]
    async fn a_spent_state_is_refused_until_it_could_no_longer_be_accepted() {
        let onboarding = onboarding();
        let now = onboarding.now_secs();
        onboarding.spend("state-1", now).await.unwrap();
        assert!(matches!(
            onboarding.spend("state-1", now).await,
            Err(OnboardingError::Replayed)
        ));
        onboarding.spend("state-2", now).await.unwrap();
    }

    #[test]
    fn redirect_uris_must_be_https_or_http_on_loopback() {
        for ok in [
            "https://saas.example/cb",
            "https://localhost:8443/cb",
            "http://localhost/cb",
            "http://LOCALHOST:3000/cb",
            "http://127.0.0.1:8080/cb",
            "http://[::1]:8080/cb",
        ] {
            assert!(checked_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "javascript://localhost/%0Aalert(1)",
            "data://localhost/x",
            "ftp://localhost/cb",
            "file://localhost/etc/passwd",
            "http://saas.example/cb",
            "http://localhost.evil.example/cb",
            "http://127.0.0.1.evil.example/cb",
            "https://user:pw@saas.example/cb",
            "https://saas.example/cb#frag",
            "not a url",
        ] {
            assert!(checked_redirect_uri(bad).is_err(), "{bad}");
        }
    }
}

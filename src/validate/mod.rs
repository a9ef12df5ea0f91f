//! Token validation: [`TokenValidator`] checks an Entra access token's signature, issuer,
//! lifetime and [`Expectations`] (`tid`, `oid`, `aud`, app id, roles), per tenant or in
//! multi-tenant mode ([`Discovery`]), and an OpenID Connect id token against
//! [`IdTokenExpectations`]. [`Claims`] and [`IdTokenClaims`] are what they return.
//! (`insecure::decode_unverified` reads claims without any check, for diagnostics only.)

mod cache;
mod checks;
mod expect;
mod ext;
mod id_token;

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SharedClock, SystemClock, unix_secs};
use crate::cloud::Cloud;
use crate::error::ValidationError;
use crate::jwks::{FetchPolicy, JwksCache, Source};
use crate::jwt::{Claims, Jws};

use cache::{Fingerprint, Validated, ValidatedCache};
use checks::{
    check_access, check_id_token_audience, check_issuer, check_signature, check_times,
    issuing_tenant, signing_kid, token_version,
};

pub use expect::{Discovery, Expectations, TokenVersion};
pub use ext::ValidatedTokenExt;
pub use id_token::{IdTokenClaims, IdTokenExpectations};

/// Validates Entra access tokens and id tokens: RS256 signature with the issuer's
/// published key, the issuer, lifetime, and the expectations.
///
/// Keys are fetched through OpenID metadata on the validator's cloud and cached; an
/// unknown `kid` triggers at most one refetch per 5 minutes, keys older than 12 hours are
/// fetched again in the background, a failed fetch is not retried for 10 seconds, and
/// concurrent validations share one fetch. A validation with cached keys waits for no
/// I/O, and a token validated before is answered from the
/// validated-token cache (its lifetime and the expectations re-checked). Share one
/// validator (cheap to clone).
///
/// ```
/// use mock_entra::MockEntra;
/// use azure_cross_tenant::{ClientSecret, Expectations, TenantCredentialProvider, TokenValidator};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let entra = MockEntra::start().await;
/// # let home = entra.add_tenant("provider.example");
/// # let customer = entra.add_tenant("fabrikam.example");
/// # let app = entra.register_app(&home, "saas");
/// # let secret = entra.add_secret(&app);
/// let sp = entra.consent(&customer, &app);
/// let credential = ClientSecret::new(app.client_id(), secret).authority_host(entra.uri()).build()?;
/// let token = credential.get_token(&customer, &["https://vault.azure.net/.default"]).await?;
///
/// let validator = TokenValidator::new(entra.cloud())?;
/// let expect = Expectations::new(customer.clone())
///     .audience("https://vault.azure.net")
///     .object_id(sp)
///     .app_id(app.client_id());
/// let claims = validator.validate(token.secret(), &expect).await?;
/// assert_eq!(claims.tid.as_deref(), Some(customer.as_str()));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct TokenValidator {
    jwks: Arc<JwksCache>,
    cache: Option<Arc<ValidatedCache>>,
    clock: SharedClock,
}

/// Builds a [`TokenValidator`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build()`"]
pub struct TokenValidatorBuilder {
    cloud: Cloud,
    http: Option<crate::HttpClient>,
    clock: SharedClock,
    policy: FetchPolicy,
    cache_capacity: u64,
}

impl TokenValidatorBuilder {
    /// The HTTP client fetching metadata and keys. Built by this crate with redirects
    /// off, so a fetch goes only to the URL it names; a 3xx answer, or an answer from
    /// another URL than the one asked, is refused. Defaults to a client with a 5 s
    /// connect timeout.
    pub fn http_client(mut self, client: crate::HttpClient) -> Self {
        self.http = Some(client);
        self
    }

    /// The clock checking `exp`/`nbf`/`iat` and pacing refetches. Defaults to the
    /// system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Least time between two key fetches for one tenant caused by unknown `kid`s, after
    /// a successful fetch. Defaults to 5 minutes.
    pub fn refetch_interval(mut self, interval: Duration) -> Self {
        self.policy.refetch_interval = interval;
        self
    }

    /// How long a failed key fetch is remembered: validations needing that tenant's keys
    /// in this window fail at once with [`ValidationError::KeysUnavailable`], without a
    /// request. Defaults to 10 seconds.
    pub fn failure_backoff(mut self, backoff: Duration) -> Self {
        self.policy.failure_backoff = backoff;
        self
    }

    /// How long fetched keys are trusted without fetching them again: the first
    /// validation using keys older than this starts a fetch in the background (it, and
    /// every validation until the fetch lands, still uses the old keys, as do all if the
    /// fetch fails). Entra withdraws a compromised signing key at once, only by no longer
    /// publishing it; this bounds how long such a key still validates when no token with
    /// a new `kid` comes by to cause a refetch. Defaults to 12 hours (what Microsoft's
    /// own validators use).
    pub fn key_max_age(mut self, age: Duration) -> Self {
        self.policy.max_age = age;
        self
    }

    /// Deadline of one key fetch (metadata and JWKS together); no validation waits for
    /// keys longer than this. Defaults to 10 seconds.
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.policy.timeout = timeout;
        self
    }

    /// How many successful validations the validated-token cache keeps (each about the
    /// size of the token's claims, 1 to 3 KB); 0 turns the cache off. Defaults to 10,000.
    pub fn cache_capacity(mut self, entries: u64) -> Self {
        self.cache_capacity = entries;
        self
    }

    /// Builds the validator.
    pub fn build(self) -> Result<TokenValidator, crate::Error> {
        let authority = crate::cloud::checked_authority(self.cloud.authority_host().as_str())?;
        if self.policy.timeout.is_zero() {
            return Err(crate::Error::InvalidConfiguration(
                "the key fetch timeout must be more than zero".into(),
            ));
        }
        let http = match self.http {
            Some(c) => c.reqwest().clone(),
            None => crate::http::default_client(&authority)?,
        };
        let cache =
            (self.cache_capacity > 0).then(|| Arc::new(ValidatedCache::new(self.cache_capacity)));
        Ok(TokenValidator {
            jwks: Arc::new(JwksCache::new(
                http,
                authority,
                self.clock.clone(),
                self.policy,
            )),
            cache,
            clock: self.clock,
        })
    }
}

impl TokenValidator {
    /// A validator for tokens of `cloud` (its authority serves the metadata and keys).
    pub fn new(cloud: Cloud) -> Result<Self, crate::Error> {
        Self::builder(cloud).build()
    }

    /// A builder, for the HTTP client, clock, fetch pacing and cache size.
    pub fn builder(cloud: Cloud) -> TokenValidatorBuilder {
        TokenValidatorBuilder {
            cloud,
            http: None,
            clock: Arc::new(SystemClock),
            policy: FetchPolicy {
                refetch_interval: Duration::from_secs(300),
                failure_backoff: Duration::from_secs(10),
                timeout: Duration::from_secs(10),
                max_age: Duration::from_secs(12 * 3600),
            },
            cache_capacity: 10_000,
        }
    }

    /// Validates the access token `token` against `expect`; returns its claims when every
    /// check passes.
    ///
    /// The checks, in order: the expectations are usable; the token is a JWT whose header
    /// is an object naming RS256 and a `kid` (no `crit`); `tid` is a GUID and an allowed
    /// tenant and `ver` an accepted version, all before any key is fetched; the signature
    /// verifies with the key of that `kid`; `iss` is the tenant's issuer and the key's
    /// own; `exp`, `nbf`, `iat`; then `aud`, `oid`, the client (`appid` or `azp`,
    /// required), app-only, and roles last.
    pub async fn validate(
        &self,
        token: &str,
        expect: &Expectations,
    ) -> Result<Claims, ValidationError> {
        check_usable(expect)?;
        let fingerprint = self.cache.as_ref().map(|c| c.fingerprint(token));
        if let Some(hit) = self.cached(token, fingerprint, expect) {
            return hit;
        }
        let jws = Jws::parse(token)?;
        let kid = signing_kid(&jws.header)?;
        let tid = issuing_tenant(&jws.claims)?;
        expect.check_tenant(&tid)?;
        let version = token_version(&jws.claims)?;
        expect.check_version(version)?;
        let source = match expect.discovery.shared_segment() {
            Some(shared) => Source::Shared(shared),
            None => Source::Tenant(&tid),
        };
        let found = self
            .jwks
            .key(source, version == TokenVersion::V2, kid)
            .await?;
        check_signature(&jws, &found)?;
        check_issuer(&jws.claims, &tid, &found)?;
        check_times(&jws.claims, self.now(), expect.clock_skew, false)?;
        check_access(&jws.claims, version, expect)?;
        if let (Some(cache), Some(fingerprint), Some(exp)) =
            (&self.cache, fingerprint, jws.claims.exp)
        {
            cache.remember(token, fingerprint, self.now(), || Validated {
                claims: jws.claims.clone(),
                tid,
                version,
                discovery: expect.discovery,
                generation: found.generation,
                exp,
            });
        }
        Ok(jws.claims)
    }

    /// A validation answered from the cache, re-checking the lifetime and `expect`;
    /// `None` on a miss.
    fn cached(
        &self,
        token: &str,
        fingerprint: Option<Fingerprint>,
        expect: &Expectations,
    ) -> Option<Result<Claims, ValidationError>> {
        let now = self.now();
        let entry = self.cache.as_ref()?.get(token, fingerprint?, now)?;
        if entry.discovery != expect.discovery {
            return None;
        }
        self.jwks.used(&entry.generation);
        let checked = expect
            .check_tenant(&entry.tid)
            .and_then(|()| expect.check_version(entry.version))
            .and_then(|()| check_times(&entry.claims, now, expect.clock_skew, false))
            .and_then(|()| check_access(&entry.claims, entry.version, expect));
        Some(checked.map(|()| entry.claims.clone()))
    }

    /// Validates the OpenID Connect id token `token` against `expect`; returns who
    /// signed in.
    ///
    /// The same discipline as [`validate`](Self::validate): RS256 with a `kid`, `tid` a
    /// GUID (and the pinned tenant, if any) before any key is fetched, keys and issuer
    /// from the pinned tenant's metadata or the `organizations` one (whose issuer template
    /// is filled from `tid`, and whose key's own `issuer` must match), then `exp`, `nbf`
    /// and `iat` (required), `aud` = the client id, the `nonce`, and an `oid`. Id tokens
    /// are never cached: each nonce is used once.
    pub async fn validate_id_token(
        &self,
        token: &str,
        expect: &IdTokenExpectations,
    ) -> Result<IdTokenClaims, ValidationError> {
        expect.check_sane()?;
        let jws = Jws::parse(token)?;
        let kid = signing_kid(&jws.header)?;
        let tid = issuing_tenant(&jws.claims)?;
        expect.check_tenant(&tid)?;
        let version = token_version(&jws.claims)?;
        let source = match expect.tenant {
            Some(_) => Source::Tenant(&tid),
            None => Source::Shared("organizations"),
        };
        let found = self
            .jwks
            .key(source, version == TokenVersion::V2, kid)
            .await?;
        check_signature(&jws, &found)?;
        check_issuer(&jws.claims, &tid, &found)?;
        check_times(&jws.claims, self.now(), expect.clock_skew, true)?;
        check_id_token_audience(&jws.claims, &expect.client_id)?;
        expect.check_nonce(&jws.claims)?;
        IdTokenClaims::from_checked(jws.claims, &tid)
    }

    fn now(&self) -> u64 {
        unix_secs(self.clock.now())
    }
}

/// Expectations that would accept too much are a configuration error, reported before
/// looking at the token.
fn check_usable(expect: &Expectations) -> Result<(), ValidationError> {
    if expect.audiences.is_empty() {
        return Err(ValidationError::InvalidExpectations(
            "no audience expected; name the API or resource the token must be for".into(),
        ));
    }
    Ok(())
}

/// The validator's path for untrusted token text, without keys: parsing, the header and
/// tenant checks before any key is fetched, then the claim checks a signature would
/// guard (so the fuzzer reaches them without forging RSA signatures).
#[cfg(fuzzing)]
pub(crate) fn fuzz_token(token: &str, expect: &Expectations, now: u64) {
    let Ok(jws) = Jws::parse(token) else { return };
    let _ = signing_kid(&jws.header);
    let Ok(tid) = issuing_tenant(&jws.claims) else {
        return;
    };
    if expect.check_tenant(&tid).is_err() {
        return;
    }
    let Ok(version) = token_version(&jws.claims) else {
        return;
    };
    let _ = expect.check_version(version);
    for (set, key) in [
        ("https://login.microsoftonline.com/{tenantid}/v2.0", None),
        (
            "https://sts.windows.net/{tenantid}/",
            Some("https://login.microsoftonline.com/{tenantid}/v2.0"),
        ),
    ] {
        let _ = checks::check_issuer_against(&jws.claims, &tid, set, key);
    }
    let _ = check_times(&jws.claims, now, expect.clock_skew, true);
    let _ = check_access(&jws.claims, version, expect);
}

//! Token validation: [`TokenValidator`] checks an Entra access token's signature, issuer,
//! lifetime and [`Expectations`] (`tid`, `oid`, `aud`, app id, roles); [`Claims`] are what it
//! returns. (`insecure::decode_unverified` reads claims without any check, for diagnostics only.)

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::clock::{Clock, SharedClock, SystemClock};
use crate::cloud::Cloud;
use crate::error::ValidationError;
use crate::jwks::JwksCache;
use crate::jwt::{Claims, Header, b64_json, claims_from, split};
use crate::tenant::TenantId;

/// Token versions a validator accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenVersion {
    /// `ver` = `1.0`: `iss` = `https://sts.windows.net/{tid}/`, client id in `appid`.
    V1,
    /// `ver` = `2.0`: `iss` = `https://{authority}/{tid}/v2.0`, client id in `azp`.
    V2,
}

/// What a token must say to be accepted.
///
/// ```
/// use azure_cross_tenant::{Expectations, TenantId};
///
/// let customer: TenantId = "72f988bf-86f1-41af-91ab-2d7cd011db47".parse()?;
/// let expect = Expectations::new(customer)
///     .audience("https://vault.azure.net")
///     .object_id("a1b2c3d4-0000-0000-0000-000000000001")
///     .app_id("11111111-2222-3333-4444-555555555555");
/// # Ok::<(), azure_cross_tenant::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Expectations {
    tenants: Vec<TenantId>,
    audiences: Vec<String>,
    object_id: Option<String>,
    app_id: Option<String>,
    roles: Vec<String>,
    app_only: bool,
    versions: Vec<TokenVersion>,
    clock_skew: Duration,
}

impl Expectations {
    /// Tokens issued by `tenant` (a GUID: tokens carry `tid` as one).
    pub fn new(tenant: TenantId) -> Self {
        Self::any_of([tenant])
    }

    /// Tokens issued by any of `tenants` (the onboarded ones): a customer-hosted API
    /// accepting calls from several tenants. A token from another tenant is refused
    /// before any key is fetched for it.
    pub fn any_of(tenants: impl IntoIterator<Item = TenantId>) -> Self {
        Self {
            tenants: tenants.into_iter().collect(),
            audiences: Vec::new(),
            object_id: None,
            app_id: None,
            roles: Vec::new(),
            app_only: true,
            versions: vec![TokenVersion::V1, TokenVersion::V2],
            clock_skew: Duration::from_secs(300),
        }
    }

    /// Accepts `audience` in `aud` (call once per accepted form: the API's client id GUID,
    /// its App ID URI, or a resource URL such as `https://vault.azure.net`). At least one
    /// is required.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Requires `oid` = `object_id`: the app's service principal in that tenant.
    pub fn object_id(mut self, object_id: impl Into<String>) -> Self {
        self.object_id = Some(object_id.into());
        self
    }

    /// Requires `appid` (v1) or `azp` (v2) = `client_id`.
    pub fn app_id(mut self, client_id: impl Into<String>) -> Self {
        self.app_id = Some(client_id.into());
        self
    }

    /// Requires the app role `role` in `roles`.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// Whether `idtyp`, when present, must be `app` (default true).
    pub fn app_only(mut self, app_only: bool) -> Self {
        self.app_only = app_only;
        self
    }

    /// The token versions accepted (default both).
    pub fn versions(mut self, versions: &[TokenVersion]) -> Self {
        self.versions = versions.to_vec();
        self
    }

    /// Clock skew allowed on `exp`, `nbf` and `iat` (default 5 min).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }
}

/// Validates Entra access tokens: RS256 signature with the issuing tenant's published
/// key, the tenant's issuer, lifetime, and the [`Expectations`].
///
/// Keys are fetched through the tenant's OpenID metadata on the validator's cloud and
/// cached; an unknown `kid` triggers at most one refetch per 5 minutes. A validation with
/// cached keys does no I/O. Share one validator (cheap to clone).
///
/// ```
/// use azure_cross_tenant::testing::MockEntra;
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
    clock: SharedClock,
}

/// Builds a [`TokenValidator`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build()` (or `start()`)"]
pub struct TokenValidatorBuilder {
    cloud: Cloud,
    http: Option<reqwest::Client>,
    clock: SharedClock,
    refetch_interval: Duration,
}

impl TokenValidatorBuilder {
    /// The HTTP client fetching metadata and keys.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The clock checking `exp`/`nbf` and pacing refetches (default the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Least time between two key fetches for one tenant (default 5 min).
    pub fn refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// Builds the validator.
    pub fn build(self) -> Result<TokenValidator, crate::Error> {
        let authority = crate::cloud::checked_authority(self.cloud.authority_host().as_str())?;
        let http = match self.http {
            Some(c) => c,
            None => crate::http::default_client()?,
        };
        Ok(TokenValidator {
            jwks: Arc::new(JwksCache::new(
                http,
                authority,
                self.clock.clone(),
                self.refetch_interval,
            )),
            clock: self.clock,
        })
    }
}

impl TokenValidator {
    /// A validator for tokens of `cloud` (its authority serves the metadata and keys).
    pub fn new(cloud: Cloud) -> Result<Self, crate::Error> {
        Self::builder(cloud).build()
    }

    /// A builder, for the HTTP client, clock and refetch interval.
    pub fn builder(cloud: Cloud) -> TokenValidatorBuilder {
        TokenValidatorBuilder {
            cloud,
            http: None,
            clock: Arc::new(SystemClock),
            refetch_interval: Duration::from_secs(300),
        }
    }

    /// Validates `token` against `expect`; returns its claims when every check passes.
    pub async fn validate(
        &self,
        token: &str,
        expect: &Expectations,
    ) -> Result<Claims, ValidationError> {
        let parts = split(token)?;
        let header: Header = b64_json(parts.header, "the header is not a JSON object")?;
        match header.alg {
            Some(Value::String(ref a)) if a == "RS256" => {}
            Some(Value::String(a)) => {
                return Err(ValidationError::DisallowedAlgorithm(crate::error::echo(&a)));
            }
            _ => return Err(ValidationError::DisallowedAlgorithm("(missing)".into())),
        }
        if let Some(crit) = header.crit {
            return Err(ValidationError::CriticalHeader(crate::error::echo(
                &crit.to_string(),
            )));
        }
        let Some(Value::String(kid)) = header.kid else {
            return Err(ValidationError::Malformed("the header has no kid"));
        };

        let raw: Map<String, Value> = b64_json(parts.payload, "the payload is not a JSON object")?;
        let claims = claims_from(raw)?;

        // Who issued it, checked before any key is fetched for an unknown tenant.
        let tid = claims
            .tid
            .clone()
            .ok_or(ValidationError::MissingClaim("tid"))?;
        if !crate::tenant::is_guid(&tid) {
            return Err(ValidationError::TenantNotGuid(crate::error::echo(&tid)));
        }
        let tid = tid.to_ascii_lowercase();
        if expect.tenants.iter().any(|t| !t.is_guid()) {
            return Err(ValidationError::InvalidExpectations(
                "expected tenants must be GUIDs (tokens carry tid as one)".into(),
            ));
        }
        if !expect.tenants.iter().any(|t| t.as_str() == tid) {
            return Err(ValidationError::WrongTenant {
                expected: expect
                    .tenants
                    .iter()
                    .map(TenantId::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                found: tid,
            });
        }
        let version = match claims.ver.as_deref() {
            Some("1.0") => TokenVersion::V1,
            Some("2.0") => TokenVersion::V2,
            Some(other) => {
                return Err(ValidationError::VersionNotAccepted(crate::error::echo(
                    other,
                )));
            }
            None => return Err(ValidationError::MissingClaim("ver")),
        };
        if !expect.versions.contains(&version) {
            let v = if version == TokenVersion::V1 {
                "1.0"
            } else {
                "2.0"
            };
            return Err(ValidationError::VersionNotAccepted(v.into()));
        }

        let (key, keys) = self
            .jwks
            .key(&tid, version == TokenVersion::V2, &kid)
            .await?;
        let message_len = parts.header.len() + 1 + parts.payload.len();
        let verified = jsonwebtoken::crypto::verify(
            parts.signature,
            &token.as_bytes()[..message_len],
            &key.decoding,
            jsonwebtoken::Algorithm::RS256,
        )
        .unwrap_or(false);
        if !verified {
            return Err(ValidationError::BadSignature);
        }

        // Issuer: the tenant's own (from its metadata), and the key's, when it names one.
        let iss = claims
            .iss
            .clone()
            .ok_or(ValidationError::MissingClaim("iss"))?;
        let tenant_issuer = keys.issuer.replace("{tenantid}", &tid);
        if iss != tenant_issuer {
            return Err(ValidationError::IssuerMismatch {
                expected: tenant_issuer,
                found: crate::error::echo(&iss),
            });
        }
        if let Some(key_issuer) = &key.issuer {
            let key_issuer = key_issuer.replace("{tenantid}", &tid);
            if iss != key_issuer {
                return Err(ValidationError::IssuerMismatch {
                    expected: key_issuer,
                    found: crate::error::echo(&iss),
                });
            }
        }

        self.check_times(&claims, expect.clock_skew)?;

        if expect.audiences.is_empty() {
            return Err(ValidationError::InvalidExpectations(
                "no audience expected; name the API or resource the token must be for".into(),
            ));
        }
        if !claims
            .aud
            .iter()
            .any(|a| expect.audiences.iter().any(|e| e == a))
        {
            return Err(ValidationError::WrongAudience {
                expected: expect.audiences.clone(),
                found: claims.aud.iter().map(|a| crate::error::echo(a)).collect(),
            });
        }
        if let Some(oid) = &expect.object_id
            && !claims
                .oid
                .as_deref()
                .is_some_and(|o| o.eq_ignore_ascii_case(oid))
        {
            return Err(ValidationError::WrongObjectId {
                expected: oid.clone(),
                found: claims.oid.as_deref().map(crate::error::echo),
            });
        }
        if let Some(app) = &expect.app_id {
            let found = match version {
                TokenVersion::V1 => claims.appid.as_deref(),
                TokenVersion::V2 => claims.azp.as_deref(),
            };
            if !found.is_some_and(|f| f.eq_ignore_ascii_case(app)) {
                return Err(ValidationError::WrongAppId {
                    expected: app.clone(),
                    found: found.map(crate::error::echo),
                });
            }
        }
        if expect.app_only
            && let Some(idtyp) = claims.idtyp.as_deref()
            && idtyp != "app"
        {
            return Err(ValidationError::NotAppOnly(crate::error::echo(idtyp)));
        }
        for role in &expect.roles {
            if !claims.roles.iter().any(|r| r == role) {
                return Err(ValidationError::MissingRole(role.clone()));
            }
        }
        Ok(claims)
    }

    fn check_times(&self, claims: &Claims, skew: Duration) -> Result<(), ValidationError> {
        let now = self
            .clock
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let skew = skew.as_secs();
        let exp = claims.exp.ok_or(ValidationError::MissingClaim("exp"))?;
        if now >= exp.saturating_add(skew) {
            return Err(ValidationError::Expired { exp });
        }
        if let Some(nbf) = claims.nbf
            && now.saturating_add(skew) < nbf
        {
            return Err(ValidationError::NotYetValid { nbf });
        }
        if let Some(iat) = claims.iat
            && now.saturating_add(skew) < iat
        {
            return Err(ValidationError::NotYetValid { nbf: iat });
        }
        Ok(())
    }
}

//! Token validation: [`TokenValidator`] checks an Entra access token's signature, issuer,
//! lifetime and [`Expectations`] (`tid`, `oid`, `aud`, app id, roles); [`Claims`] are what it
//! returns; [`decode_unverified`] is for diagnostics only.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::clock::{Clock, SharedClock, SystemClock};
use crate::cloud::Cloud;
use crate::jwks::JwksCache;
use crate::tenant::TenantId;

/// Tokens longer than this are not Entra access tokens; they are refused before decoding.
const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Why a token was refused. Says which check failed and with what values; never
/// repeats the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The text is not a JWT (three base64url parts holding JSON objects), or is too long.
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    /// The header names an algorithm other than RS256 (`none`, `HS256`, `rs256`...).
    #[error("the token's algorithm {0:?} is not allowed; only RS256 is")]
    DisallowedAlgorithm(String),
    /// The header carries `crit`: extensions this validator does not understand.
    #[error("the token's header carries critical extensions ({0}); refused")]
    CriticalHeader(String),
    /// No key of the tenant has this `kid`, even after refetching the keys.
    #[error("no signing key with kid {kid:?} is published for the tenant")]
    UnknownKey {
        /// The `kid` of the token's header.
        kid: String,
    },
    /// The signature does not verify with the tenant's key.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` has passed (beyond the allowed clock skew).
    #[error("the token expired at {exp} (unix seconds)")]
    Expired {
        /// The `exp` claim.
        exp: u64,
    },
    /// `nbf` has not come yet (beyond the allowed clock skew).
    #[error("the token is not valid before {nbf} (unix seconds)")]
    NotYetValid {
        /// The `nbf` claim.
        nbf: u64,
    },
    /// A claim the checks need is absent.
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    /// `tid` is not a GUID.
    #[error("the token's tid {0:?} is not a tenant GUID")]
    TenantNotGuid(String),
    /// `tid` is not the expected tenant (or not in the allowlist).
    #[error("the token was issued by tenant {found}, expected {expected}")]
    WrongTenant {
        /// The tenant(s) expected.
        expected: String,
        /// The token's `tid`.
        found: String,
    },
    /// `iss` is not the issuer the tenant's metadata names, or the key's own `issuer`.
    #[error("the token's issuer {found:?} is not the tenant's issuer {expected:?}")]
    IssuerMismatch {
        /// The issuer expected.
        expected: String,
        /// The token's `iss`.
        found: String,
    },
    /// `aud` is none of the accepted audiences.
    #[error("the token is for audience {found:?}, expected one of {expected:?}")]
    WrongAudience {
        /// Accepted audiences.
        expected: Vec<String>,
        /// The token's `aud`.
        found: Vec<String>,
    },
    /// `oid` is not the expected service principal.
    #[error("the token's oid {found:?} is not the expected service principal {expected}")]
    WrongObjectId {
        /// Expected object id.
        expected: String,
        /// The token's `oid`.
        found: Option<String>,
    },
    /// `appid`/`azp` is not the expected app.
    #[error("the token was issued to app {found:?}, expected {expected}")]
    WrongAppId {
        /// Expected client id.
        expected: String,
        /// The token's `appid` or `azp`.
        found: Option<String>,
    },
    /// A required app role is missing from `roles`.
    #[error("the token lacks the required role {0:?}; the customer admin must grant it")]
    MissingRole(String),
    /// `idtyp` says the token is not app-only.
    #[error("the token is not an app-only token (idtyp={0:?})")]
    NotAppOnly(String),
    /// The token's version (`ver`) is not accepted.
    #[error("token version {0:?} is not accepted")]
    VersionNotAccepted(String),
    /// The tenant's keys could not be fetched and none are cached.
    #[error("signing keys of tenant {tenant} are unavailable: {reason}")]
    KeysUnavailable {
        /// The tenant.
        tenant: String,
        /// What went wrong.
        reason: String,
    },
    /// The expectations cannot be checked (e.g. a domain where a tenant GUID is needed).
    #[error("invalid expectations: {0}")]
    InvalidExpectations(String),
}

/// The claims of an Entra access token that matter for cross-tenant app-only access.
///
/// ```
/// use azure_cross_tenant::decode_unverified;
///
/// // header {"alg":"none"} . payload {"tid":"t","oid":"o","aud":"https://vault.azure.net","appid":"a","ver":"1.0"} . no signature
/// let token = "eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ0Iiwib2lkIjoibyIsImF1ZCI6Imh0dHBzOi8vdmF1bHQuYXp1cmUubmV0IiwiYXBwaWQiOiJhIiwidmVyIjoiMS4wIn0.";
/// let claims = decode_unverified(token)?;
/// assert_eq!(claims.tid.as_deref(), Some("t"));
/// assert_eq!(claims.aud, vec!["https://vault.azure.net".to_string()]);
/// assert_eq!(claims.app_id(), Some("a"));
/// # Ok::<(), azure_cross_tenant::ValidationError>(())
/// ```
#[derive(Clone, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Claims {
    /// The issuing tenant.
    #[serde(default, deserialize_with = "opt_string")]
    pub tid: Option<String>,
    /// The object id of the service principal in the issuing tenant.
    #[serde(default, deserialize_with = "opt_string")]
    pub oid: Option<String>,
    /// The audience(s): the resource the token is for.
    #[serde(default, deserialize_with = "string_or_list")]
    pub aud: Vec<String>,
    /// The issuer.
    #[serde(default, deserialize_with = "opt_string")]
    pub iss: Option<String>,
    /// The client id of the app (v1 tokens).
    #[serde(default, deserialize_with = "opt_string")]
    pub appid: Option<String>,
    /// The client id of the app (v2 tokens).
    #[serde(default, deserialize_with = "opt_string")]
    pub azp: Option<String>,
    /// App roles granted to the app in the issuing tenant.
    #[serde(default, deserialize_with = "string_or_list")]
    pub roles: Vec<String>,
    /// Token version, `1.0` or `2.0`.
    #[serde(default, deserialize_with = "opt_string")]
    pub ver: Option<String>,
    /// `app` for app-only tokens (an optional claim).
    #[serde(default, deserialize_with = "opt_string")]
    pub idtyp: Option<String>,
    /// Subject.
    #[serde(default, deserialize_with = "opt_string")]
    pub sub: Option<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default, deserialize_with = "opt_secs")]
    pub exp: Option<u64>,
    /// Not before, seconds since the epoch.
    #[serde(default, deserialize_with = "opt_secs")]
    pub nbf: Option<u64>,
    /// Issued at, seconds since the epoch.
    #[serde(default, deserialize_with = "opt_secs")]
    pub iat: Option<u64>,
    /// Every claim, as decoded.
    #[serde(skip)]
    pub raw: Map<String, Value>,
}

impl Claims {
    /// The app's client id: `appid` (v1) or `azp` (v2).
    pub fn app_id(&self) -> Option<&str> {
        self.appid.as_deref().or(self.azp.as_deref())
    }
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Claims hold no secret, but `raw` can be long; show the fields that matter.
        f.debug_struct("Claims")
            .field("tid", &self.tid)
            .field("oid", &self.oid)
            .field("aud", &self.aud)
            .field("iss", &self.iss)
            .field("app_id", &self.app_id())
            .field("roles", &self.roles)
            .field("ver", &self.ver)
            .field("idtyp", &self.idtyp)
            .field("exp", &self.exp)
            .finish_non_exhaustive()
    }
}

fn opt_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

fn opt_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        _ => None,
    })
}

fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => vec![s],
        Value::Array(a) => a
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    })
}

/// Decodes a JWT's claims **without checking its signature, issuer or lifetime**.
///
/// For diagnostics only (logging which tenant and app a token is for, the local answer to
/// pasting tokens into a website). Never base an access decision on its result.
pub fn decode_unverified(token: &str) -> Result<Claims, ValidationError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(ValidationError::Malformed("longer than 64 KiB"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ValidationError::Malformed("not three dot-separated parts"));
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| ValidationError::Malformed("a part is not base64url"))
    };
    let header: Value = serde_json::from_slice(&decode(header)?)
        .map_err(|_| ValidationError::Malformed("the header is not JSON"))?;
    if !header.is_object() {
        return Err(ValidationError::Malformed(
            "the header is not a JSON object",
        ));
    }
    let payload = decode(payload)?;
    let raw: Map<String, Value> = serde_json::from_slice(&payload)
        .map_err(|_| ValidationError::Malformed("the payload is not a JSON object"))?;
    claims_from(raw)
}

/// Typed claims read from the payload map by reference (no copy of the map), which then
/// becomes `raw`.
fn claims_from(raw: Map<String, Value>) -> Result<Claims, ValidationError> {
    let value = Value::Object(raw);
    let mut claims = Claims::deserialize(&value)
        .map_err(|_| ValidationError::Malformed("the payload has unexpected claim types"))?;
    if let Value::Object(raw) = value {
        claims.raw = raw;
    }
    Ok(claims)
}

/// Claims of `token` if it is a JWT; `None` for opaque tokens.
pub(crate) fn peek_claims(token: &str) -> Option<Claims> {
    decode_unverified(token).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for t in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.!!.!!",
            "e30.bm90anNvbg.",
            "W10.e30.",
        ] {
            assert!(decode_unverified(t).is_err(), "{t}");
        }
        assert!(decode_unverified("e30.e30.").is_ok());
    }

    #[test]
    fn audience_may_be_a_list() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"aud":["a","b"],"roles":"r","exp":1.5}"#);
        let c = decode_unverified(&format!("e30.{payload}.")).unwrap();
        assert_eq!(c.aud, vec!["a", "b"]);
        assert_eq!(c.roles, vec!["r"]);
        assert_eq!(c.exp, Some(1));
    }
}

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
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| {
                    crate::Error::InvalidConfiguration(format!(
                        "could not build the HTTP client: {e}"
                    ))
                })?,
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

/// The parts of a JWT, split once.
struct Parts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

fn split(token: &str) -> Result<Parts<'_>, ValidationError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(ValidationError::Malformed("longer than 64 KiB"));
    }
    let mut it = token.split('.');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(header), Some(payload), Some(signature), None) => Ok(Parts {
            header,
            payload,
            signature,
        }),
        _ => Err(ValidationError::Malformed("not three dot-separated parts")),
    }
}

fn b64_json<T: serde::de::DeserializeOwned>(
    part: &str,
    what: &'static str,
) -> Result<T, ValidationError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ValidationError::Malformed("a part is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| ValidationError::Malformed(what))
}

/// The header fields that matter; everything else (`jku`, `x5u`, `x5c`, `jwk`) is
/// ignored on purpose: keys come only from the tenant's published JWKS.
#[derive(Deserialize)]
struct Header {
    alg: Option<Value>,
    kid: Option<Value>,
    crit: Option<Value>,
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
                return Err(ValidationError::DisallowedAlgorithm(crate::tenant::echo(
                    &a,
                )));
            }
            _ => return Err(ValidationError::DisallowedAlgorithm("(missing)".into())),
        }
        if let Some(crit) = header.crit {
            return Err(ValidationError::CriticalHeader(crate::tenant::echo(
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
            return Err(ValidationError::TenantNotGuid(crate::tenant::echo(&tid)));
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
                return Err(ValidationError::VersionNotAccepted(crate::tenant::echo(
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
                found: crate::tenant::echo(&iss),
            });
        }
        if let Some(key_issuer) = &key.issuer {
            let key_issuer = key_issuer.replace("{tenantid}", &tid);
            if iss != key_issuer {
                return Err(ValidationError::IssuerMismatch {
                    expected: key_issuer,
                    found: crate::tenant::echo(&iss),
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
                found: claims.aud.iter().map(|a| crate::tenant::echo(a)).collect(),
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
                found: claims.oid.as_deref().map(crate::tenant::echo),
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
                    found: found.map(crate::tenant::echo),
                });
            }
        }
        if expect.app_only
            && let Some(idtyp) = claims.idtyp.as_deref()
            && idtyp != "app"
        {
            return Err(ValidationError::NotAppOnly(crate::tenant::echo(idtyp)));
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

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// JWT-shaped garbage: claims or an error, never a panic.
        #[test]
        fn arbitrary_jwt_parts_never_panic(h in proptest::collection::vec(any::<u8>(), 0..64), p in proptest::collection::vec(any::<u8>(), 0..256)) {
            let token = format!("{}.{}.x", URL_SAFE_NO_PAD.encode(h), URL_SAFE_NO_PAD.encode(p));
            let _ = decode_unverified(&token);
        }
    }
}

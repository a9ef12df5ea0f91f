//! [`Expectations`]: what an access token must say to be accepted, and where its keys
//! come from ([`Discovery`]).

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ValidationError;
use crate::tenant::TenantId;

/// Token versions a validator accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenVersion {
    /// `ver` = `1.0`: `iss` = `https://sts.windows.net/{tid}/`, client id in `appid`.
    V1,
    /// `ver` = `2.0`: `iss` = `https://{authority}/{tid}/v2.0`, client id in `azp`.
    V2,
}

impl TokenVersion {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "1.0",
            Self::V2 => "2.0",
        }
    }
}

/// Which OpenID metadata document, and so which issuer and key set, tokens are checked
/// against.
///
/// [`PerTenant`](Self::PerTenant) (the default) reads each tenant's own metadata
/// (`/{tid}/v2.0/.well-known/openid-configuration`): one key set per tenant.
/// [`Organizations`](Self::Organizations) and [`Common`](Self::Common) are the
/// multi-tenant mode of Microsoft.Identity.Web: one metadata document and one key set for
/// every tenant, whose issuer is the template `https://{authority}/{tenantid}/v2.0`. The
/// template is filled from the token's `tid` only after `tid` is checked to be a GUID and
/// an allowed tenant, and a key's own `issuer` must match the filled issuer too, so a key
/// bound to one tenant never signs for another.
///
/// ```
/// use azure_cross_tenant::{Discovery, Expectations, TenantId};
///
/// let onboarded: Vec<TenantId> = vec!["72f988bf-86f1-41af-91ab-2d7cd011db47".parse()?];
/// let expect = Expectations::any_of(onboarded)
///     .discovery(Discovery::Organizations)
///     .audience("api://my-saas-api");
/// # Ok::<(), azure_cross_tenant::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Discovery {
    /// Each tenant's own metadata and keys.
    #[default]
    PerTenant,
    /// The `organizations` metadata and keys (work and school accounts).
    Organizations,
    /// The `common` metadata and keys (which also hold Microsoft account keys, bound to
    /// their own fixed issuer).
    Common,
}

impl Discovery {
    /// The path segment of the shared document, or `None` per tenant.
    pub(crate) fn shared_segment(self) -> Option<&'static str> {
        match self {
            Self::PerTenant => None,
            Self::Organizations => Some("organizations"),
            Self::Common => Some("common"),
        }
    }
}

/// The tenants whose tokens are accepted.
#[derive(Clone)]
enum Tenants {
    /// One tenant (a GUID, or a domain that makes the expectations invalid).
    One(TenantId),
    /// A set of GUIDs, lower-cased, looked up by hash; `domains` counts entries that are
    /// not GUIDs (which make the expectations invalid).
    Set {
        guids: Arc<HashSet<Box<str>>>,
        domains: usize,
    },
    /// Decided at run time (a registry of onboarded tenants).
    Check(Arc<dyn Fn(&TenantId) -> bool + Send + Sync>),
}

impl fmt::Debug for Tenants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::One(t) => write!(f, "{t}"),
            Self::Set { guids, .. } => write!(f, "{} tenants", guids.len()),
            Self::Check(_) => f.write_str("a run-time check"),
        }
    }
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
    tenants: Tenants,
    pub(crate) discovery: Discovery,
    pub(crate) audiences: Vec<String>,
    pub(crate) object_id: Option<String>,
    pub(crate) app_id: Option<String>,
    pub(crate) roles: Vec<String>,
    pub(crate) app_only: bool,
    pub(crate) versions: Vec<TokenVersion>,
    pub(crate) clock_skew: Duration,
}

impl Expectations {
    /// Tokens issued by `tenant` (a GUID: tokens carry `tid` as one).
    pub fn new(tenant: TenantId) -> Self {
        Self::with_tenants(Tenants::One(tenant))
    }

    /// Tokens issued by any of `tenants` (the onboarded ones): a customer-hosted API
    /// accepting calls from several tenants. Looked up by hash, so 10,000 tenants cost
    /// what one does. A token from another tenant is refused before any key is fetched
    /// for it.
    pub fn any_of(tenants: impl IntoIterator<Item = TenantId>) -> Self {
        let mut guids = HashSet::new();
        let mut domains = 0;
        for t in tenants {
            if t.is_guid() {
                guids.insert(Box::from(t.as_str()));
            } else {
                domains += 1;
            }
        }
        Self::with_tenants(Tenants::Set {
            guids: Arc::new(guids),
            domains,
        })
    }

    /// Tokens issued by any tenant `allowed` accepts: for tenants onboarded at run time
    /// (a registry lookup). It is called with the token's `tid`, a lower-case GUID,
    /// before any key is fetched for it; keep it fast and non-blocking.
    ///
    /// ```
    /// use std::collections::HashSet;
    /// use std::sync::{Arc, RwLock};
    /// use azure_cross_tenant::{Discovery, Expectations, TenantId};
    ///
    /// let onboarded: Arc<RwLock<HashSet<TenantId>>> = Arc::default();
    /// let registry = onboarded.clone();
    /// let expect = Expectations::any_tenant(move |tid| registry.read().unwrap().contains(tid))
    ///     .discovery(Discovery::Organizations)
    ///     .audience("api://my-saas-api");
    /// // Later, when a customer completes onboarding:
    /// onboarded.write().unwrap().insert("72f988bf-86f1-41af-91ab-2d7cd011db47".parse()?);
    /// # Ok::<(), azure_cross_tenant::Error>(())
    /// ```
    pub fn any_tenant(allowed: impl Fn(&TenantId) -> bool + Send + Sync + 'static) -> Self {
        Self::with_tenants(Tenants::Check(Arc::new(allowed)))
    }

    fn with_tenants(tenants: Tenants) -> Self {
        Self {
            tenants,
            discovery: Discovery::PerTenant,
            audiences: Vec::new(),
            object_id: None,
            app_id: None,
            roles: Vec::new(),
            app_only: true,
            versions: vec![TokenVersion::V1, TokenVersion::V2],
            clock_skew: Duration::from_secs(300),
        }
    }

    /// Where keys and issuer come from (default [`Discovery::PerTenant`]).
    pub fn discovery(mut self, discovery: Discovery) -> Self {
        self.discovery = discovery;
        self
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

    /// Requires `appid` (v1) or `azp` (v2) = `client_id`. (Without it, the claim must
    /// still be present: every access token names its client, an id token does not.)
    pub fn app_id(mut self, client_id: impl Into<String>) -> Self {
        self.app_id = Some(client_id.into());
        self
    }

    /// Requires the app role `role` in `roles`. A token lacking it is otherwise valid:
    /// the error is [`ValidationError::MissingRole`] (403, `insufficient_scope`).
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// Whether only app-only tokens are accepted (default true): `idtyp`, when present,
    /// must be `app`, and tokens carrying a delegated `scp` or a user's `upn` or
    /// `unique_name` are refused.
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

    /// Whether `tid` (a lower-case GUID, checked) is an allowed tenant.
    pub(crate) fn check_tenant(&self, tid: &str) -> Result<(), ValidationError> {
        let wrong = |expected: String| ValidationError::WrongTenant {
            expected,
            found: tid.to_owned(),
        };
        match &self.tenants {
            Tenants::One(t) if !t.is_guid() => Err(domains_refused()),
            Tenants::One(t) if t.as_str() == tid => Ok(()),
            Tenants::One(t) => Err(wrong(t.to_string())),
            Tenants::Set { domains, .. } if *domains > 0 => Err(domains_refused()),
            Tenants::Set { guids, .. } if guids.contains(tid) => Ok(()),
            Tenants::Set { guids, .. } => Err(wrong(match guids.len() {
                1 => guids
                    .iter()
                    .next()
                    .map(|g| g.to_string())
                    .unwrap_or_default(),
                n => format!("one of {n} allowed tenants"),
            })),
            Tenants::Check(allowed) => {
                let parsed: TenantId = tid
                    .parse()
                    .map_err(|_| ValidationError::TenantNotGuid(crate::error::echo(tid)))?;
                if allowed(&parsed) {
                    Ok(())
                } else {
                    Err(wrong("a tenant the allow check accepts".into()))
                }
            }
        }
    }

    /// Whether tokens of `version` are accepted.
    pub(crate) fn check_version(&self, version: TokenVersion) -> Result<(), ValidationError> {
        if self.versions.contains(&version) {
            Ok(())
        } else {
            Err(ValidationError::VersionNotAccepted(version.as_str().into()))
        }
    }
}

fn domains_refused() -> ValidationError {
    ValidationError::InvalidExpectations(
        "expected tenants must be GUIDs (tokens carry tid as one)".into(),
    )
}

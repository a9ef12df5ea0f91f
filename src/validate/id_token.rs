//! OpenID Connect id tokens: proof of who signed in (an admin, before onboarding their
//! tenant), checked with the same discipline as access tokens.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::ValidationError;
use crate::jwt::Claims;
use crate::tenant::TenantId;

/// What an id token must say: issued to our app (`aud` = client id), for our sign-in
/// request (`nonce`), by the tenant it names (`iss` from `tid`), and still valid.
///
/// By default any work or school tenant may have signed the user in (keys and issuer
/// template from the `organizations` metadata); [`tenant`](Self::tenant) pins one.
///
/// ```
/// use std::time::Duration;
/// use azure_cross_tenant::IdTokenExpectations;
///
/// // The nonce sent in the authorize request and kept with the user's session.
/// let expect = IdTokenExpectations::new("11111111-2222-3333-4444-555555555555", "n-0S6_WzA2Mj")
///     .clock_skew(Duration::from_secs(120));
/// ```
#[derive(Clone)]
pub struct IdTokenExpectations {
    pub(super) client_id: String,
    pub(super) nonce: String,
    pub(super) tenant: Option<TenantId>,
    pub(super) clock_skew: Duration,
}

impl fmt::Debug for IdTokenExpectations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The nonce is a one-time value tied to a browser session: not printed.
        f.debug_struct("IdTokenExpectations")
            .field("client_id", &self.client_id)
            .field("nonce", &"<redacted>")
            .field("tenant", &self.tenant)
            .field("clock_skew", &self.clock_skew)
            .finish()
    }
}

impl IdTokenExpectations {
    /// An id token for the app `client_id`, answering the sign-in request that sent
    /// `nonce`.
    pub fn new(client_id: impl Into<String>, nonce: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            nonce: nonce.into(),
            tenant: None,
            clock_skew: Duration::from_secs(300),
        }
    }

    /// Only an id token issued by `tenant` (a GUID), verified with that tenant's own
    /// keys and issuer. Default: any tenant, through the `organizations` metadata.
    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Clock skew allowed on `exp`, `nbf` and `iat` (default 5 min).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// Refuses expectations that would accept anything.
    pub(super) fn check_sane(&self) -> Result<(), ValidationError> {
        let invalid = |why: &str| Err(ValidationError::InvalidExpectations(why.into()));
        if self.client_id.is_empty() {
            return invalid("no client id: name the app the id token must be issued to");
        }
        if self.nonce.is_empty() {
            return invalid("no nonce: pass the one sent with the sign-in request");
        }
        if self.tenant.as_ref().is_some_and(|t| !t.is_guid()) {
            return invalid("the pinned tenant must be a GUID (id tokens carry tid as one)");
        }
        Ok(())
    }

    /// Whether `tid` (checked, lower-case) may have issued the token.
    pub(super) fn check_tenant(&self, tid: &str) -> Result<(), ValidationError> {
        match &self.tenant {
            Some(t) if t.as_str() != tid => Err(ValidationError::WrongTenant {
                expected: t.to_string(),
                found: tid.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// The token's `nonce` is ours (compared in constant time).
    pub(super) fn check_nonce(&self, claims: &Claims) -> Result<(), ValidationError> {
        let Some(Value::String(nonce)) = claims.raw.get("nonce") else {
            return Err(ValidationError::MissingClaim("nonce"));
        };
        aws_lc_rs::constant_time::verify_slices_are_equal(nonce.as_bytes(), self.nonce.as_bytes())
            .map_err(|_| ValidationError::WrongNonce)
    }
}

/// Who signed in, from a validated id token.
///
/// `tid` and `oid` identify the user (`oid` needs the `profile` scope in the sign-in
/// request); `name` and `preferred_username` are for display only, never for
/// authorization (users can change them).
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct IdTokenClaims {
    /// The user's tenant, checked to be a GUID.
    pub tid: TenantId,
    /// The user's object id in that tenant.
    pub oid: String,
    /// The subject (pairwise per app).
    pub sub: Option<String>,
    /// The user's display name (`profile` scope).
    pub name: Option<String>,
    /// The user's sign-in name, usually an email address (`profile` scope).
    pub preferred_username: Option<String>,
    /// Every claim, as decoded.
    pub raw: Arc<Map<String, Value>>,
}

impl fmt::Debug for IdTokenClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTokenClaims")
            .field("tid", &self.tid)
            .field("oid", &self.oid)
            .field("name", &self.name)
            .field("preferred_username", &self.preferred_username)
            .finish_non_exhaustive()
    }
}

impl IdTokenClaims {
    pub(super) fn from_checked(claims: Claims, tid: &str) -> Result<Self, ValidationError> {
        let tid = tid
            .parse()
            .map_err(|_| ValidationError::TenantNotGuid(crate::error::echo(tid)))?;
        let string = |name: &str| match claims.raw.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        Ok(Self {
            tid,
            oid: claims
                .oid
                .clone()
                .ok_or(ValidationError::MissingClaim("oid"))?,
            sub: claims.sub.clone(),
            name: string("name"),
            preferred_username: string("preferred_username"),
            raw: claims.raw,
        })
    }
}

//! The check after every acquisition: trust no bookkeeping alone. A JWT naming another
//! tenant or app, one without a `tid`, or one that looks like a JWT and does not decode,
//! is an error and never reaches a cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Mismatch, ValidationError};
use crate::tenant::TenantId;

/// How far `expires_in` may run past `exp` before it is cut: `exp`'s whole-second rounding.
const EXP_ROUNDING: Duration = Duration::from_secs(2);
/// How far this host's clock may run ahead of the issuer's before tokens are cut short.
const HOST_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
use crate::token::AccessToken;

/// What tokens said so far: a domain tenant's GUID, learnt from its first token, so a
/// later token claiming another GUID for the same domain is caught.
#[derive(Debug, Default)]
pub(super) struct IssuedTokenCheck {
    /// A std lock: never held across an await.
    learned_tids: Mutex<HashMap<TenantId, Arc<str>>>,
}

impl IssuedTokenCheck {
    /// `token` if it is for `tenant` and `client_id` as far as its claims tell. Opaque
    /// (non-JWT) tokens cannot be read and pass.
    pub(super) fn check(
        &self,
        tenant: &TenantId,
        client_id: &str,
        token: AccessToken,
        now: SystemTime,
    ) -> Result<AccessToken, Error> {
        let claims = match crate::jwt::claims_if_jwt(token.secret()) {
            Ok(Some(claims)) => claims,
            Ok(None) => return Ok(token),
            Err(e) => {
                let why = match e {
                    ValidationError::Malformed(why) => why,
                    _ => "its parts are not base64url JSON objects",
                };
                return Err(Error::UnexpectedToken {
                    tenant: tenant.clone(),
                    claim: "token",
                    mismatch: Box::new(Mismatch::Undecodable(why)),
                });
            }
        };
        let Some(tid) = claims.tid.as_deref() else {
            return Err(Error::UnexpectedToken {
                tenant: tenant.clone(),
                claim: "tid",
                mismatch: Box::new(Mismatch::Missing),
            });
        };
        self.check_tid(tenant, tid)?;
        check_client(tenant, client_id, &claims.raw)?;
        // `expires_in` beside the token is not signed by anyone; the token's own lifetime
        // is what its resource enforces. A longer `expires_in` would keep it cached (and
        // handed out) after every resource refuses it. Two caps: `exp - iat` counted from
        // now (both the issuer's clock), and `exp` itself plus the clock skew a host may
        // have (a stale token replayed with a fresh `expires_in`): a host clock up to five
        // minutes ahead of the issuer's shortens nothing. `exp` counts whole seconds, so an honest answer runs
        // past it by a fraction of one.
        let secs = |s: u64| Duration::from_secs(s);
        let relative = match (claims.iat, claims.exp) {
            (Some(iat), Some(exp)) => now.checked_add(secs(exp.saturating_sub(iat))),
            _ => None,
        };
        let absolute = claims.exp.and_then(|exp| {
            SystemTime::UNIX_EPOCH.checked_add(secs(exp).saturating_add(HOST_CLOCK_SKEW))
        });
        let latest = match (relative, absolute) {
            (Some(r), Some(a)) => Some(r.min(a)),
            (r, a) => r.or(a),
        };
        Ok(match latest {
            Some(latest) if latest.checked_add(EXP_ROUNDING) < Some(token.expires_on()) => {
                token.expiring_no_later_than(latest)
            }
            _ => token,
        })
    }

    /// `tid` must be the tenant asked; for a domain, the GUID its first token carried.
    fn check_tid(&self, tenant: &TenantId, tid: &str) -> Result<(), Error> {
        if tenant.is_guid() {
            if !tid.eq_ignore_ascii_case(tenant.as_str()) {
                return Err(Error::unexpected_claim(tenant, "tid", tenant.as_str(), tid));
            }
            return Ok(());
        }
        let mut learned = self.learned_tids.lock().unwrap_or_else(|p| p.into_inner());
        match learned.get(tenant) {
            Some(known) if !known.eq_ignore_ascii_case(tid) => {
                Err(Error::unexpected_claim(tenant, "tid", known, tid))
            }
            Some(_) => Ok(()),
            None => {
                learned.insert(tenant.clone(), Arc::from(tid.to_ascii_lowercase()));
                Ok(())
            }
        }
    }
}

/// Every Entra access token names the client it was issued to in exactly one claim,
/// `appid` (v1) or `azp` (v2), a string: it must be `client_id`. None, both, or one that
/// is not a string is a token this app did not ask for.
fn check_client(
    tenant: &TenantId,
    client_id: &str,
    raw: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), Error> {
    use serde_json::Value;
    let refused = |claim, mismatch| Error::UnexpectedToken {
        tenant: tenant.clone(),
        claim,
        mismatch: Box::new(mismatch),
    };
    let (claim, value) = match (raw.get("appid"), raw.get("azp")) {
        (Some(_), Some(_)) => return Err(refused("appid", Mismatch::Conflicting("azp"))),
        (Some(v), None) => ("appid", v),
        (None, Some(v)) => ("azp", v),
        (None, None) => return Err(refused("appid", Mismatch::Missing)),
    };
    match value {
        Value::String(v) if v.eq_ignore_ascii_case(client_id) => Ok(()),
        Value::String(v) => Err(Error::unexpected_claim(tenant, claim, client_id, v)),
        _ => Err(refused(claim, Mismatch::Missing)),
    }
}

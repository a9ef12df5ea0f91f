//! The named checks a validation is made of, shared by access tokens and id tokens.
//! Each takes what it checks and returns the error naming what failed.

use std::time::Duration;

use serde_json::Value;

use crate::error::{ValidationError, echo};
use crate::jwks::Found;
use crate::jwt::{Claims, Header, Jws};
use crate::tenant::is_guid;

use super::expect::{Expectations, TokenVersion};

/// The header names RS256, carries no `crit`, and names a key; returns the `kid`.
pub(super) fn signing_kid(header: &Header) -> Result<&str, ValidationError> {
    match &header.alg {
        Some(Value::String(a)) if a == "RS256" => {}
        Some(Value::String(a)) => return Err(ValidationError::DisallowedAlgorithm(echo(a))),
        _ => return Err(ValidationError::DisallowedAlgorithm("(missing)".into())),
    }
    if let Some(crit) = &header.crit {
        return Err(ValidationError::CriticalHeader(echo(&crit.to_string())));
    }
    match &header.kid {
        Some(Value::String(kid)) => Ok(kid),
        _ => Err(ValidationError::Malformed("the header has no kid")),
    }
}

/// The token's `tid`: present and a GUID (so never `{tenantid}` or a path), lower-cased.
/// Checked before the `tid` fills any issuer template or chooses any key.
pub(super) fn issuing_tenant(claims: &Claims) -> Result<String, ValidationError> {
    let tid = claims
        .tid
        .as_deref()
        .ok_or(ValidationError::MissingClaim("tid"))?;
    if !is_guid(tid) {
        return Err(ValidationError::TenantNotGuid(echo(tid)));
    }
    Ok(tid.to_ascii_lowercase())
}

/// The token's version from `ver`.
pub(super) fn token_version(claims: &Claims) -> Result<TokenVersion, ValidationError> {
    match claims.ver.as_deref() {
        Some("1.0") => Ok(TokenVersion::V1),
        Some("2.0") => Ok(TokenVersion::V2),
        Some(other) => Err(ValidationError::VersionNotAccepted(echo(other))),
        None => Err(ValidationError::MissingClaim("ver")),
    }
}

/// The RS256 signature verifies with the key the header named.
pub(super) fn check_signature(jws: &Jws<'_>, found: &Found) -> Result<(), ValidationError> {
    if found.key.public.verify_rs256(jws.signed, jws.signature) {
        Ok(())
    } else {
        Err(ValidationError::BadSignature)
    }
}

/// `iss` is the issuer of the metadata the keys came from, with `{tenantid}` filled from
/// the (already checked) `tid`, and the key's own `issuer` when it names one.
pub(super) fn check_issuer(
    claims: &Claims,
    tid: &str,
    found: &Found,
) -> Result<(), ValidationError> {
    check_issuer_against(claims, tid, &found.set.issuer, found.key.issuer.as_deref())
}

/// [`check_issuer`] on the issuers themselves: the metadata's (`set_issuer`) and the
/// key's own, if any, both possibly the `{tenantid}` template.
pub(super) fn check_issuer_against(
    claims: &Claims,
    tid: &str,
    set_issuer: &str,
    key_issuer: Option<&str>,
) -> Result<(), ValidationError> {
    let iss = claims
        .iss
        .as_deref()
        .ok_or(ValidationError::MissingClaim("iss"))?;
    let mismatch = |expected: String| ValidationError::IssuerMismatch {
        expected,
        found: echo(iss),
    };
    let issuer = fill(set_issuer, tid);
    if iss != issuer {
        return Err(mismatch(issuer));
    }
    if let Some(key_issuer) = key_issuer {
        let key_issuer = fill(key_issuer, tid);
        if iss != key_issuer {
            return Err(mismatch(key_issuer));
        }
    }
    Ok(())
}

fn fill(template: &str, tid: &str) -> String {
    template.replace("{tenantid}", tid)
}

/// `exp` (required), `nbf` and `iat` (required when `require_iat`) against `now` (unix
/// seconds), with `skew` either way.
pub(super) fn check_times(
    claims: &Claims,
    now: u64,
    skew: Duration,
    require_iat: bool,
) -> Result<(), ValidationError> {
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
    match claims.iat {
        Some(iat) if now.saturating_add(skew) < iat => Err(ValidationError::IssuedInFuture { iat }),
        None if require_iat => Err(ValidationError::MissingClaim("iat")),
        _ => Ok(()),
    }
}

/// Who the token is for and who holds it: `aud`, `oid`, the client (`appid` or `azp`,
/// required: access tokens always name one), app-only, then roles last, so a token that
/// fails only on a role is told apart (403, not 401).
pub(super) fn check_access(
    claims: &Claims,
    version: TokenVersion,
    expect: &Expectations,
) -> Result<(), ValidationError> {
    if !claims
        .aud
        .iter()
        .any(|a| expect.audiences.iter().any(|e| e == a))
    {
        return Err(ValidationError::WrongAudience {
            expected: expect.audiences.clone(),
            found: claims.aud.iter().map(|a| echo(a)).collect(),
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
            found: claims.oid.as_deref().map(echo),
        });
    }
    // Every Entra access token names the client it was issued to; an id token (same
    // keys, same issuer, `aud` = the app's client id, no `scp`) names none, so without
    // this a user's id token would pass as an app-only token of an API whose audience is
    // its client id.
    let (claim, client) = match version {
        TokenVersion::V1 => ("appid", claims.appid.as_deref()),
        TokenVersion::V2 => ("azp", claims.azp.as_deref()),
    };
    let client = client.ok_or(ValidationError::MissingClaim(claim))?;
    if let Some(app) = &expect.app_id
        && !client.eq_ignore_ascii_case(app)
    {
        return Err(ValidationError::WrongAppId {
            expected: app.clone(),
            found: Some(echo(client)),
        });
    }
    if expect.app_only {
        check_app_only(claims)?;
    }
    for role in &expect.roles {
        if !claims.roles.iter().any(|r| r == role) {
            return Err(ValidationError::MissingRole(role.clone()));
        }
    }
    Ok(())
}

/// An app-only token: `idtyp` (an optional claim) is `app` when present, and nothing
/// only a user's token carries: a delegated `scp`, a `upn` or a `unique_name`.
fn check_app_only(claims: &Claims) -> Result<(), ValidationError> {
    if let Some(idtyp) = claims.idtyp.as_deref()
        && idtyp != "app"
    {
        return Err(ValidationError::NotAppOnly {
            claim: "idtyp",
            found: echo(idtyp),
        });
    }
    for claim in ["scp", "upn", "unique_name"] {
        if let Some(value) = claims.raw.get(claim) {
            let found = match value {
                Value::String(s) => echo(s),
                other => echo(&other.to_string()),
            };
            return Err(ValidationError::NotAppOnly { claim, found });
        }
    }
    Ok(())
}

/// `aud` names `client_id`, and when it names others too, `azp` is `client_id`
/// (OpenID Connect Core 3.1.3.7).
pub(super) fn check_id_token_audience(
    claims: &Claims,
    client_id: &str,
) -> Result<(), ValidationError> {
    let wrong = || ValidationError::WrongAudience {
        expected: vec![client_id.to_owned()],
        found: claims.aud.iter().map(|a| echo(a)).collect(),
    };
    if !claims.aud.iter().any(|a| a == client_id) {
        return Err(wrong());
    }
    if claims.aud.len() > 1 && claims.azp.as_deref() != Some(client_id) {
        return Err(ValidationError::WrongAppId {
            expected: client_id.to_owned(),
            found: claims.azp.as_deref().map(echo),
        });
    }
    Ok(())
}

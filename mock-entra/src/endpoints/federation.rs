//! Workload identity federation: a signed, unexpired assertion from another issuer is
//! matched against the app's federated identity credentials, in Entra's order.

use std::time::SystemTime;

use crate::jose::TokenClaims;
use crate::state::{App, Directory};
use crate::wire::{EntraErr, err};

/// The issuing tenant of an Entra token, then the app's FICs by issuer, subject and
/// audience (exact, case-sensitive), then replication.
pub(crate) fn match_fic(
    _dir: &Directory,
    base: &str,
    app: &App,
    claims: &TokenClaims,
    now: SystemTime,
) -> Result<(), EntraErr> {
    let iss = claims.iss.clone().unwrap_or_default();
    let sub = claims.sub.clone().unwrap_or_default();
    // An Entra-issued token (a managed identity's) from outside the app's home tenant.
    if iss.starts_with(base)
        && let Some(tid) = claims.tid.as_deref()
        && tid != app.home_tenant
    {
        return Err(err(
            400,
            "invalid_client",
            700236,
            format!(
                "Entra ID tokens issued by issuer '{iss}' may not be used for federated identity credential flows for applications or managed identities registered in this tenant."
            ),
        ));
    }
    if app.fics.is_empty() {
        return Err(err(
            400,
            "invalid_client",
            70025,
            format!(
                "The client '{}'({}) has no configured federated identity credentials.",
                app.client_id, app.display_name
            ),
        ));
    }
    let by_issuer: Vec<_> = app.fics.iter().filter(|f| f.issuer == iss).collect();
    if by_issuer.is_empty() {
        return Err(err(
            400,
            "invalid_client",
            700211,
            format!(
                "No matching federated identity record found for presented assertion issuer '{iss}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."
            ),
        ));
    }
    let by_subject: Vec<_> = by_issuer.into_iter().filter(|f| f.subject == sub).collect();
    if by_subject.is_empty() {
        return Err(err(
            400,
            "invalid_client",
            700213,
            format!(
                "No matching federated identity record found for presented assertion subject '{sub}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."
            ),
        ));
    }
    let matched: Vec<_> = by_subject
        .into_iter()
        .filter(|f| claims.aud.contains(&f.audience))
        .collect();
    if matched.is_empty() {
        return Err(err(
            400,
            "invalid_client",
            700212,
            format!(
                "No matching federated identity record found for presented assertion audience '{}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.",
                claims.aud.join(",")
            ),
        ));
    }
    if matched.iter().all(|f| now < f.ready_at) {
        return Err(err(
            400,
            "invalid_client",
            70021,
            "No matching federated identity record found for presented assertion. Assertion Issuer, Subject and Audience match a credential that is still being provisioned.",
        ));
    }
    Ok(())
}

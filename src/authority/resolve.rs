//! A tenant's GUID from its OpenID metadata (`{authority}/{domain}/v2.0/.well-known/
//! openid-configuration`): its `token_endpoint` names the tenant by GUID. One GET to the
//! authority's own origin, no credential, bounded by the credential's timeout, never
//! following a redirect.

use url::Url;

use super::TokenClient;
use super::response::parse_error;
use crate::error::{Error, TransportKind};
use crate::http::{self, BodyError, SendError};
use crate::tenant::TenantId;

/// Entra's codes for a tenant that does not exist in this cloud.
const UNKNOWN_TENANT: [u32; 2] = [90002, 900023];

impl TokenClient {
    /// The GUID of `tenant` (a GUID gives itself); `Ok(None)` if the authority does not
    /// know the tenant.
    pub(crate) async fn resolve_tenant(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<TenantId>, Error> {
        if tenant.is_guid() {
            return Ok(Some(tenant.clone()));
        }
        let authority = self.cloud.authority_host();
        let mut url = authority.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend([
                tenant.as_str(),
                "v2.0",
                ".well-known",
                "openid-configuration",
            ]);
        }
        let request = self.http.get(url).timeout(self.timeout);
        let transport = |kind, e: reqwest::Error| Error::Transport {
            tenant: tenant.clone(),
            kind,
            source: std::sync::Arc::new(e),
        };
        let response = http::send_no_redirect(request).await.map_err(|e| match e {
            SendError::Transport(e) if e.is_timeout() => transport(TransportKind::Timeout, e),
            SendError::Transport(e) if e.is_connect() => transport(TransportKind::Connect, e),
            SendError::Transport(e) => transport(TransportKind::Other, e),
            SendError::Redirected { to } => Error::Redirected {
                tenant: tenant.clone(),
                to: to.into_boxed_str(),
            },
        })?;
        let status = response.status().as_u16();
        let body = http::read_capped(response).await.map_err(|e| match e {
            BodyError::TooLarge => Error::MalformedResponse {
                tenant: tenant.clone(),
                status,
                reason: "the metadata is larger than 1 MiB".into(),
            },
            BodyError::Transport(e) => transport(TransportKind::Other, e),
        })?;
        if !(200..300).contains(&status) {
            let unknown = parse_error(&body)
                .is_some_and(|e| e.codes.iter().any(|c| UNKNOWN_TENANT.contains(c)));
            if unknown {
                return Ok(None);
            }
            return Err(Error::MalformedResponse {
                tenant: tenant.clone(),
                status,
                reason: "the tenant's OpenID metadata could not be read".into(),
            });
        }
        guid_in_metadata(&body, authority)
            .map(Some)
            .ok_or_else(|| Error::MalformedResponse {
                tenant: tenant.clone(),
                status,
                reason: "the tenant's OpenID metadata names no tenant GUID on the authority".into(),
            })
    }
}

/// The tenant GUID of the metadata's `token_endpoint`, if it is on `authority`'s origin
/// and one of its path segments is a GUID.
fn guid_in_metadata(body: &[u8], authority: &Url) -> Option<TenantId> {
    let doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    let endpoint = Url::parse(doc.get("token_endpoint")?.as_str()?).ok()?;
    if endpoint.origin() != authority.origin() {
        return None;
    }
    let prefix = authority
        .path_segments()
        .map_or(0, |s| s.filter(|s| !s.is_empty()).count());
    let segment = endpoint.path_segments()?.nth(prefix)?;
    if !crate::tenant::is_guid(segment) {
        return None;
    }
    segment.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guid_comes_from_the_token_endpoint_on_the_authority_only() {
        let authority = Url::parse("https://login.microsoftonline.com/").unwrap();
        let guid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let doc = |endpoint: &str| format!(r#"{{"token_endpoint":"{endpoint}"}}"#);
        let found = guid_in_metadata(
            doc(&format!(
                "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
                guid.to_uppercase()
            ))
            .as_bytes(),
            &authority,
        );
        assert_eq!(found.unwrap().as_str(), guid);
        for wrong in [
            format!("https://evil.example/{guid}/oauth2/v2.0/token"),
            "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token".to_owned(),
            format!("https://login.microsoftonline.com/x/{guid}/oauth2/v2.0/token"),
        ] {
            assert!(
                guid_in_metadata(doc(&wrong).as_bytes(), &authority).is_none(),
                "{wrong}"
            );
        }
        assert!(guid_in_metadata(b"not json", &authority).is_none());
        let prefixed = Url::parse("https://proxy.example/entra/").unwrap();
        let found = guid_in_metadata(
            doc(&format!(
                "https://proxy.example/entra/{guid}/oauth2/v2.0/token"
            ))
            .as_bytes(),
            &prefixed,
        );
        assert_eq!(found.unwrap().as_str(), guid);
    }
}

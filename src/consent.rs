//! Admin consent: the URL a customer admin opens to provision the app's service principal
//! in their tenant (ENTRA.md section 5).

use url::Url;

use crate::cloud::Cloud;

/// The v1 admin consent URL of `client_id` for `tenant` (a tenant id, a domain, or
/// `organizations` when the tenant is not known yet).
///
/// `{authority}/{tenant}/adminconsent?client_id={client_id}`. Opening it as a global or
/// privileged-role admin of the tenant creates the service principal; the app's
/// configured redirect URI then receives `admin_consent=True&tenant=...`.
pub(crate) fn admin_consent_url(cloud: &Cloud, tenant: &str, client_id: &str) -> Url {
    let mut url = cloud.authority_host().clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend([tenant, "adminconsent"]);
    }
    url.query_pairs_mut().append_pair("client_id", client_id);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_names_tenant_and_client() {
        let url = admin_consent_url(
            &Cloud::Public,
            "contoso.com",
            "11111111-2222-3333-4444-555555555555",
        );
        assert_eq!(
            url.as_str(),
            "https://login.microsoftonline.com/contoso.com/adminconsent?client_id=11111111-2222-3333-4444-555555555555"
        );
    }
}

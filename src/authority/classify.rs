//! Entra's refusals, classified by what the operator does next.

use std::time::Duration;

use crate::cloud::Cloud;
use crate::error::{EntraError, Error, FederationField};

/// Maps Entra's answer to the variant that says what the operator does next. Branches on
/// `error_codes` (and the HTTP status), never on the description text.
pub(crate) fn classify(entra: EntraError, retry_after: Option<Duration>, cloud: &Cloud) -> Error {
    let entra = Box::new(entra);
    match entra.code() {
        Some(700016 | 7000229) => {
            let consent_url = cloud
                .admin_consent_url(entra.tenant.as_str(), &entra.client_id)
                .to_string();
            Error::NotConsented { entra, consent_url }
        }
        Some(7000215) => Error::InvalidClientSecret(entra),
        Some(7000222) => Error::ClientSecretExpired(entra),
        Some(700027) => Error::InvalidClientAssertion(entra),
        Some(700024) => Error::AssertionExpired(entra),
        Some(70021) => Error::FederationPending(entra),
        Some(700211) => Error::FederationMismatch {
            field: FederationField::Issuer,
            entra,
        },
        Some(700212) => Error::FederationMismatch {
            field: FederationField::Audience,
            entra,
        },
        Some(700213) => Error::FederationMismatch {
            field: FederationField::Subject,
            entra,
        },
        Some(70025) => Error::NoFederatedCredentials(entra),
        Some(700236) => Error::FederatedIdentityInWrongTenant(entra),
        Some(700227 | 700222 | 700226) => Error::AssertionRejected(entra),
        Some(90002 | 900023) => Error::TenantNotFound(entra),
        Some(500011 | 650052) => Error::ResourceNotFound(entra),
        Some(7000112 | 70001) => Error::AppDisabled(entra),
        Some(53003) => Error::BlockedByConditionalAccess(entra),
        Some(90055 | 50196) => Error::Throttled { retry_after, entra },
        _ if entra.status == 429 => Error::Throttled { retry_after, entra },
        _ => Error::Authority(entra),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::TenantId;

    #[test]
    fn classification_follows_codes_not_text() {
        let t: TenantId = "contoso.com".parse().unwrap();
        let mk = |code: u32, status: u16| {
            let mut e = EntraError::bare(t.clone(), "app", status);
            e.codes = vec![code];
            e.description = "AADSTS7000215: misleading text".into();
            classify(e, None, &Cloud::Public)
        };
        assert!(matches!(mk(700016, 400), Error::NotConsented { .. }));
        assert!(matches!(mk(7000222, 401), Error::ClientSecretExpired(_)));
        assert!(matches!(mk(90002, 400), Error::TenantNotFound(_)));
        assert!(matches!(mk(12345, 429), Error::Throttled { .. }));
        assert!(matches!(mk(12345, 400), Error::Authority(_)));
    }
}

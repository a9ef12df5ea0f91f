//! [`ValidatedTokenExt`]: get a token and validate it in one call, for any provider.

use crate::error::Error;
use crate::jwt::Claims;
use crate::provider::TenantCredentialProvider;
use crate::tenant::TenantId;
use crate::token::AccessToken;

use super::{Expectations, TokenValidator};

/// Adds [`get_validated_token`](Self::get_validated_token) to every
/// [`TenantCredentialProvider`].
///
/// ```
/// use mock_entra::MockEntra;
/// use azure_cross_tenant::{ClientSecret, Expectations, TokenValidator, ValidatedTokenExt};
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
/// let validator = TokenValidator::new(entra.cloud())?;
/// let expect = Expectations::new(customer.clone())
///     .audience("https://vault.azure.net")
///     .object_id(sp);
/// let (token, claims) = credential
///     .get_validated_token(&customer, &["https://vault.azure.net/.default"], &validator, &expect)
///     .await?;
/// # let _ = (token, claims);
/// # Ok(()) }
/// ```
#[async_trait::async_trait]
pub trait ValidatedTokenExt: TenantCredentialProvider {
    /// Gets a token and validates it against `expect` in one call: the token is returned
    /// only if its signature, issuer, lifetime, `tid`, `oid`, `aud` and app id check out
    /// (the advice of Microsoft's cross-tenant walkthroughs for the provider's own side).
    /// A token that fails is dropped and the error is [`Error::Validation`].
    async fn get_validated_token(
        &self,
        tenant: &TenantId,
        scopes: &[&str],
        validator: &TokenValidator,
        expect: &Expectations,
    ) -> Result<(AccessToken, Claims), Error> {
        let token = self.get_token(tenant, scopes).await?;
        let claims = validator
            .validate(token.secret(), expect)
            .await
            .map_err(|e| Error::Validation {
                tenant: tenant.clone(),
                source: Box::new(e),
            })?;
        Ok((token, claims))
    }
}

impl<P: TenantCredentialProvider + ?Sized> ValidatedTokenExt for P {}

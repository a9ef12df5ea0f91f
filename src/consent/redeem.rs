//! Redeeming the admin's sign-in code at the token endpoint with the app's own
//! credential, and [`SignInClient`]: the credentials that can do it.

use std::sync::Arc;

use serde_json::Value;
use url::Url;

use crate::authority::{GrantError, TokenClient, parse_error};
use crate::cache::Cached;
use crate::credential::{ClientCertificate, ClientSecret, FederatedAssertion};
use crate::provider::TenantCredentialProvider;
use crate::tenant::TenantId;
use crate::token::Secret;

use super::OnboardingError;

pub(super) use sealed::CodeClient;

/// Public but unnameable outside the crate: only this crate implements `SignInClient`.
pub(super) mod sealed {
    use crate::authority::{AuthSource, TokenClient};

    /// The token client and client authentication of a credential.
    #[allow(missing_debug_implementations)]
    pub struct CodeClient<'a> {
        pub(crate) client: &'a TokenClient,
        pub(crate) auth: &'a dyn AuthSource,
    }

    pub trait Sealed {
        fn code_client(&self) -> CodeClient<'_>;

        /// `tenant` just finished onboarding: a cache drops what it remembers of it.
        fn onboarded<'a>(
            &'a self,
            tenant: &'a crate::TenantId,
        ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
            let _ = tenant;
            Box::pin(async {})
        }
    }
}

/// A credential that can redeem an admin's sign-in code as well as get app-only tokens:
/// [`ClientSecret`], [`ClientCertificate`], [`FederatedAssertion`], and
/// [`Cached`] or `Arc` of one. Sealed: the redemption is this crate's own request.
pub trait SignInClient: TenantCredentialProvider + sealed::Sealed {}

impl sealed::Sealed for ClientSecret {
    fn code_client(&self) -> CodeClient<'_> {
        let (client, auth) = self.token_client();
        CodeClient { client, auth }
    }
}
impl SignInClient for ClientSecret {}

impl sealed::Sealed for ClientCertificate {
    fn code_client(&self) -> CodeClient<'_> {
        let (client, auth) = self.token_client();
        CodeClient { client, auth }
    }
}
impl SignInClient for ClientCertificate {}

impl sealed::Sealed for FederatedAssertion {
    fn code_client(&self) -> CodeClient<'_> {
        let (client, auth) = self.token_client();
        CodeClient { client, auth }
    }
}
impl SignInClient for FederatedAssertion {}

impl<P: SignInClient + 'static> sealed::Sealed for Cached<P> {
    fn code_client(&self) -> CodeClient<'_> {
        self.provider().code_client()
    }

    fn onboarded<'a>(
        &'a self,
        tenant: &'a TenantId,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            self.invalidate_tenant(tenant).await;
            self.provider().onboarded(tenant).await;
        })
    }
}
impl<P: SignInClient + 'static> SignInClient for Cached<P> {}

impl<P: SignInClient + ?Sized> sealed::Sealed for Arc<P> {
    fn code_client(&self) -> CodeClient<'_> {
        (**self).code_client()
    }

    fn onboarded<'a>(
        &'a self,
        tenant: &'a TenantId,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        (**self).onboarded(tenant)
    }
}
impl<P: SignInClient + ?Sized> SignInClient for Arc<P> {}

/// What the sign-in answer carried, to redeem.
pub(super) struct Redemption<'a> {
    /// `organizations` or the tenant the admin signed in at.
    pub(super) authority: &'a str,
    pub(super) code: &'a str,
    pub(super) code_verifier: &'a str,
    pub(super) redirect_uri: &'a str,
}

/// Redeems the code (one attempt: a code is single-use) and returns the `id_token`.
/// The access token that comes with it is dropped unread.
///
/// It goes through the same one POST as every token request ([`TokenClient::send_grant`]):
/// the form is a one-shot body, a redirect is refused whatever HTTP client the credential
/// was given, and getting the app's credential (a federated assertion) shares the
/// credential's deadline.
pub(super) async fn redeem(
    client: &dyn SignInClient,
    redemption: Redemption<'_>,
) -> Result<Secret, OnboardingError> {
    let CodeClient { client, auth } = client.code_client();
    let endpoint = token_endpoint(client.cloud.authority_host(), redemption.authority)?;
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", redemption.code),
        ("redirect_uri", redemption.redirect_uri),
        ("code_verifier", redemption.code_verifier),
        ("scope", "openid profile"),
    ];
    let answer = client
        .send_grant(&endpoint, &grant, auth, false)
        .await
        .map_err(|e| match e {
            GrantError::Credential(e) => OnboardingError::Credential(Box::new(e)),
            GrantError::Transport { kind, source } => OnboardingError::Transport { kind, source },
            GrantError::Redirected { to } => OnboardingError::Redirected { to },
            GrantError::TooLarge { .. } => {
                OnboardingError::NoIdToken("the answer is larger than 1 MiB")
            }
        })?;
    if !(200..300).contains(&answer.status) {
        return Err(refused(
            client,
            answer.status,
            &answer.body,
            answer.trace_id,
            answer.correlation_id,
        ));
    }
    let value: Value = serde_json::from_slice(&answer.body)
        .map_err(|_| OnboardingError::NoIdToken("the answer is not JSON"))?;
    match value.get("id_token") {
        Some(Value::String(t)) if !t.is_empty() => Ok(Secret::new(t.clone())),
        _ => Err(OnboardingError::NoIdToken("the answer has no id_token")),
    }
}

/// Entra's refusal of the code, with the ids its support asks for.
fn refused(
    client: &TokenClient,
    status: u16,
    body: &[u8],
    trace_id: Option<String>,
    correlation_id: String,
) -> OnboardingError {
    let parsed = parse_error(body).unwrap_or_default();
    tracing::warn!(
        client_id = %client.client_id,
        status,
        codes = ?parsed.codes,
        correlation_id = %correlation_id,
        "sign-in code refused"
    );
    OnboardingError::CodeRefused {
        status,
        error: parsed.error,
        codes: parsed.codes,
        description: parsed.description,
        trace_id: parsed.trace_id.or(trace_id),
        correlation_id: parsed.correlation_id.or(Some(correlation_id)),
    }
}

/// `{authority}/{organizations|tenant}/oauth2/v2.0/token`.
fn token_endpoint(host: &Url, authority: &str) -> Result<Url, OnboardingError> {
    let mut url = host.clone();
    url.path_segments_mut()
        .map_err(|_| OnboardingError::Internal("the authority host cannot take a path"))?
        .pop_if_empty()
        .extend([authority, "oauth2", "v2.0", "token"]);
    Ok(url)
}

//! [`CredentialSet`]: several credentials of one app, in order, with fallback: the way to
//! rotate a certificate or a secret, or to move to a secretless credential, without a
//! moment when every tenant fails together.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use url::Url;

use super::status::{CredentialStats, CredentialStatus};
use crate::error::Error;
use crate::provider::TenantCredentialProvider;
use crate::tenant::TenantId;
use crate::token::AccessToken;

/// Several credentials of one app, tried in order: the new certificate, then the old one;
/// or a certificate, then a managed identity while moving to secretless. Microsoft.Identity.Web's
/// `ClientCredentials` list, as a [`TenantCredentialProvider`] (wrap it in
/// [`Cached`](crate::Cached) like any credential).
///
/// Each call goes to the credential in use (the first, until one is refused). When Entra
/// refuses it *for the credential itself* ([`Error::is_credential_error`]: a wrong or
/// expired secret, an unknown certificate, an expired assertion, a federated credential
/// that does not match, or a credential that could not be produced), the next one is
/// tried at once for the same call, and so on around the list, each at most once; the one
/// that works is used for every tenant from then on, until it too is refused. A refusal
/// about the tenant (not consented, tenant not found, app disabled, conditional access,
/// throttling) is returned as it is: no other credential would change it.
///
/// Each switch is logged once, at `warn`, with the labels of both credentials (never their
/// values), and counted in [`CredentialStats::switches`]; each refusal is counted in that
/// credential's [`CredentialStatus::rejections`]. When every credential is refused, the
/// call fails with the error of the one that was in use.
///
/// All credentials must be for the same app (client id) and authority.
///
/// ```
/// use azure_cross_tenant::{Cached, ClientCertificate, ClientSecret, CredentialSet};
/// # let (new_cert, new_key, old_cert, old_key) = (vec![], vec![], vec![], vec![]);
/// # let _ = || -> Result<(), azure_cross_tenant::Error> {
/// const APP: &str = "11111111-2222-3333-4444-555555555555";
///
/// let credential = CredentialSet::builder()
///     .credential(ClientCertificate::from_pem(APP, &new_cert, &new_key).label("2026 certificate").build()?)
///     .credential(ClientCertificate::from_pem(APP, &old_cert, &old_key).label("2025 certificate").build()?)
///     .build()?;
/// let provider = Cached::new(credential);
/// # Ok(()) };
/// ```
pub struct CredentialSet {
    members: Vec<Member>,
    /// Index of the credential in use.
    preferred: AtomicUsize,
    switches: AtomicU64,
}

struct Member {
    provider: Arc<dyn TenantCredentialProvider>,
    label: Arc<str>,
    /// Refusals of a credential that keeps no statistics of its own.
    rejections: AtomicU64,
}

impl fmt::Debug for CredentialSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<&str> = self.members.iter().map(|m| &*m.label).collect();
        f.debug_struct("CredentialSet")
            .field("client_id", &self.client_id())
            .field("credentials", &labels)
            .field(
                "in_use",
                &labels.get(self.preferred.load(Ordering::Relaxed)),
            )
            .finish()
    }
}

/// Builds a [`CredentialSet`]: add the credentials in order of preference, then `build`.
#[derive(Default)]
#[must_use = "a builder does nothing until `build()`"]
pub struct CredentialSetBuilder {
    members: Vec<Arc<dyn TenantCredentialProvider>>,
}

impl fmt::Debug for CredentialSetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialSetBuilder")
            .field("credentials", &self.members.len())
            .finish()
    }
}

impl CredentialSet {
    /// Starts an empty set.
    pub fn builder() -> CredentialSetBuilder {
        CredentialSetBuilder::default()
    }

    /// The label of the credential in use now.
    pub fn in_use(&self) -> String {
        self.label(self.preferred.load(Ordering::Relaxed) % self.members.len())
            .to_string()
    }
}

impl CredentialSetBuilder {
    /// Adds a credential after those added so far: any of this crate's credentials (its
    /// [`label`](crate::CredentialBuilder::label) names it in logs and statistics), or a
    /// provider of your own (named `credential N`).
    pub fn credential(mut self, credential: impl TenantCredentialProvider + 'static) -> Self {
        self.members.push(Arc::new(credential));
        self
    }

    /// Checks that there is at least one credential, that all are for one app and one
    /// authority, and that their labels differ; builds the set.
    pub fn build(self) -> Result<CredentialSet, Error> {
        let Some(first) = self.members.first() else {
            return Err(Error::InvalidConfiguration(
                "a credential set needs at least one credential".into(),
            ));
        };
        let (client_id, authority) = (first.client_id().to_owned(), first.authority_host().clone());
        let mut members: Vec<Member> = Vec::with_capacity(self.members.len());
        for (i, provider) in self.members.into_iter().enumerate() {
            if !provider.client_id().eq_ignore_ascii_case(&client_id) {
                return Err(Error::InvalidConfiguration(format!(
                    "credential {} of the set is for app {}, the first for app {client_id}: a set holds credentials of one app",
                    i + 1,
                    provider.client_id()
                )));
            }
            if *provider.authority_host() != authority {
                return Err(Error::InvalidConfiguration(format!(
                    "credential {} of the set asks {}, the first asks {authority}: a set holds credentials of one authority",
                    i + 1,
                    provider.authority_host()
                )));
            }
            let label = label_of(&*provider, i);
            if members.iter().any(|m| *m.label == *label) {
                return Err(Error::InvalidConfiguration(format!(
                    "two credentials of the set are labelled {label:?}: give each its own `.label(..)`"
                )));
            }
            members.push(Member {
                provider,
                label,
                rejections: AtomicU64::new(0),
            });
        }
        Ok(CredentialSet {
            members,
            preferred: AtomicUsize::new(0),
            switches: AtomicU64::new(0),
        })
    }
}

/// A member's label: its own, if it reports one, else its place in the set.
fn label_of(provider: &dyn TenantCredentialProvider, index: usize) -> Arc<str> {
    match provider.credential_stats() {
        Some(stats) if stats.credentials.len() == 1 => {
            Arc::from(stats.credentials[0].label.as_str())
        }
        _ => Arc::from(format!("credential {}", index + 1)),
    }
}

impl CredentialSet {
    /// Member `index`'s label now (a certificate nobody named is named for its
    /// thumbprint, which changes when it is reloaded).
    fn label(&self, index: usize) -> Arc<str> {
        let member = &self.members[index];
        match member.provider.credential_stats() {
            Some(stats) if stats.credentials.len() == 1 => {
                Arc::from(stats.credentials[0].label.as_str())
            }
            _ => member.label.clone(),
        }
    }

    /// Makes `to` the credential in use, if `from` still was (concurrent calls refused by
    /// the same credential switch once, and the first to find a working one logs it).
    fn switch(&self, from: usize, to: usize, tenant: &TenantId, error: &Error) {
        if self
            .preferred
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.switches.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                client_id = %self.client_id(),
                tenant = %tenant,
                from = %self.label(from),
                to = %self.label(to),
                code = error.aadsts_code().unwrap_or(0),
                reason = %error,
                "Entra refused the app's credential in use; switched to the next one for every tenant"
            );
        }
    }
}

#[async_trait::async_trait]
impl TenantCredentialProvider for CredentialSet {
    fn client_id(&self) -> &str {
        self.members[0].provider.client_id()
    }

    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        let count = self.members.len();
        let start = self.preferred.load(Ordering::Acquire) % count;
        let mut first_error: Option<Error> = None;
        for step in 0..count {
            let index = (start + step) % count;
            let member = &self.members[index];
            match member.provider.get_token(tenant, scopes).await {
                Ok(token) => {
                    if let Some(error) = &first_error {
                        self.switch(start, index, tenant, error);
                    }
                    return Ok(token);
                }
                Err(e) if e.is_credential_error() => {
                    member.rejections.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        client_id = %self.client_id(),
                        tenant = %tenant,
                        credential = %self.label(index),
                        error = %e,
                        "credential refused; trying the next of the set"
                    );
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(first_error.unwrap_or(Error::Internal("a credential set tried no credential")))
    }

    fn authority_host(&self) -> &Url {
        self.members[0].provider.authority_host()
    }

    /// The credential in use answers (every member is of one app and authority).
    async fn resolve_tenant(&self, tenant: &TenantId) -> Result<Option<TenantId>, Error> {
        let index = self.preferred.load(Ordering::Acquire) % self.members.len();
        self.members[index].provider.resolve_tenant(tenant).await
    }

    fn credential_stats(&self) -> Option<CredentialStats> {
        let preferred = self.preferred.load(Ordering::Relaxed) % self.members.len();
        let credentials = self
            .members
            .iter()
            .enumerate()
            .map(|(i, member)| {
                let own = member
                    .provider
                    .credential_stats()
                    .and_then(|s| s.credentials.into_iter().next());
                let mut status = own.unwrap_or_else(|| CredentialStatus {
                    label: member.label.to_string(),
                    kind: "custom",
                    in_use: false,
                    expires_on: None,
                    days_left: None,
                    rejections: member.rejections.load(Ordering::Relaxed),
                    reloads: 0,
                    reload_failures: 0,
                });
                status.in_use = i == preferred;
                status
            })
            .collect();
        Some(CredentialStats {
            credentials,
            switches: self.switches.load(Ordering::Relaxed),
        })
    }
}

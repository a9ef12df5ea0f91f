//! [`KeyVaultCertificate`]: the app proves itself with a certificate whose private key
//! never leaves Azure Key Vault. Key Vault signs each client assertion's digest
//! (`POST {vault}/keys/{name}/{version}/sign`); the certificate's `x5t#S256` comes from
//! `GET {vault}/certificates/{name}`.
//!
//! The REST calls go through the crate's own HTTP rules (no redirect followed, capped
//! answers, a deadline on each) rather than `azure_security_keyvault_keys`: reading the
//! certificate needs `azure_security_keyvault_certificates`, which is a beta, and two
//! more SDK crates would be a large dependency for two requests.
//!
//! No assertion is reused: Entra wants each one's `aud` to be the tenant's token endpoint
//! and refuses a `jti` it has seen (ENTRA.md s.1), so Key Vault signs once per token
//! request (with [`Cached`](crate::Cached), about once per tenant and scope per token
//! lifetime). The certificate is read once per reload interval and after a refusal.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use azure_core::credentials::TokenCredential;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use url::Url;

use super::builder::{CredentialBuilder, Kind};
use super::certificate::x509::cert_facts;
use super::status::{CredentialStats, Watch};
use crate::authority::{AuthSource, ClientAuth, TokenClient};
use crate::clock::{Deadline, SharedClock};
use crate::error::Error;
use crate::provider::TenantCredentialProvider;
use crate::tenant::TenantId;
use crate::token::{AccessToken, Secret};

/// The Key Vault REST API version asked for.
const API_VERSION: &str = "7.4";

/// An assertion is valid this long; Entra accepts at most 10 minutes.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(600);

/// How often the certificate is read again when nothing was refused.
const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// A multitenant app authenticating with a certificate kept in Azure Key Vault, whose
/// private key never exists in the process: Key Vault signs each client assertion.
///
/// The identity that calls Key Vault (a managed identity, or any `azure_core`
/// [`TokenCredential`]) needs, on the vault, the `keys/sign` and `certificates/read` data
/// actions: the built-in roles **Key Vault Crypto User** (sign) and **Key Vault Reader**
/// (read the certificate; Key Vault Certificate User would also let it download an
/// exportable private key), or with access policies the key permission
/// *Sign* and the certificate permission *Get*. The certificate is registered on the app
/// as usual (download its `.cer` from Key Vault and upload it to the app registration).
///
/// Each Key Vault request is bounded by the credential's [`timeout`](CredentialBuilder::timeout):
/// a vault that is slow or down costs a call at most that, and is reported as
/// [`Error::KeyVault`]. A new version of the certificate in Key Vault is picked up at
/// the next [`reload_interval`](CredentialBuilder::reload_interval) (1 hour), and at once
/// when Entra refuses the version in use. Feature `azure-core`.
///
/// ```no_run
/// use azure_cross_tenant::{Cached, KeyVaultCertificate, ManagedIdentity, TenantId};
///
/// # async fn run() -> Result<(), azure_cross_tenant::Error> {
/// let credential = KeyVaultCertificate::managed_identity(
///     "11111111-2222-3333-4444-555555555555",
///     "https://saas-signing.vault.azure.net/",
///     "saas-app",
///     ManagedIdentity::UserAssigned { client_id: "the identity's client id".into() },
/// )
/// .build()?;
/// let provider = Cached::new(credential);
/// let tenant: TenantId = "contoso.onmicrosoft.com".parse()?;
/// let token = provider.get_token(&tenant, &["https://graph.microsoft.com/.default"]).await?;
/// # Ok(()) }
/// ```
pub struct KeyVaultCertificate {
    client: TokenClient,
    signer: VaultSigner,
}

impl fmt::Debug for KeyVaultCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultCertificate")
            .field("client_id", &self.client.client_id)
            .field(
                "authority_host",
                &self.client.cloud.authority_host().as_str(),
            )
            .field("label", &self.signer.watch.label())
            .field("vault", &self.signer.vault.as_str())
            .field("certificate", &self.signer.name)
            .finish_non_exhaustive()
    }
}

/// What only a Key Vault credential's builder holds.
pub struct KeyVaultParts {
    vault: String,
    name: String,
    credential: Source,
    scope: Option<String>,
    reload_interval: Duration,
}

impl fmt::Debug for KeyVaultParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultParts")
            .field("vault", &self.vault)
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("reload_interval", &self.reload_interval)
            .finish_non_exhaustive()
    }
}

enum Source {
    Ready(Arc<dyn TokenCredential>),
    ManagedIdentity(super::sources::ManagedIdentity),
}

impl Kind for KeyVaultCertificate {
    type Parts = KeyVaultParts;
}

impl KeyVaultCertificate {
    /// Starts building a credential for `client_id` signing with the certificate
    /// `certificate_name` of the vault at `vault_url` (`https://{name}.vault.azure.net/`),
    /// calling Key Vault with tokens from `credential`.
    #[allow(clippy::new_ret_no_self)] // the API contract: new(..) -> builder
    pub fn new(
        client_id: impl Into<String>,
        vault_url: impl Into<String>,
        certificate_name: impl Into<String>,
        credential: Arc<dyn TokenCredential>,
    ) -> CredentialBuilder<Self> {
        Self::builder(
            client_id,
            vault_url,
            certificate_name,
            Source::Ready(credential),
        )
    }

    /// Like [`new`](Self::new), calling Key Vault with a managed identity (the same
    /// transport rules as [`FederatedAssertion::managed_identity`](crate::FederatedAssertion::managed_identity)).
    pub fn managed_identity(
        client_id: impl Into<String>,
        vault_url: impl Into<String>,
        certificate_name: impl Into<String>,
        identity: super::sources::ManagedIdentity,
    ) -> CredentialBuilder<Self> {
        Self::builder(
            client_id,
            vault_url,
            certificate_name,
            Source::ManagedIdentity(identity),
        )
    }

    fn builder(
        client_id: impl Into<String>,
        vault_url: impl Into<String>,
        certificate_name: impl Into<String>,
        credential: Source,
    ) -> CredentialBuilder<Self> {
        CredentialBuilder::new(
            client_id,
            KeyVaultParts {
                vault: vault_url.into(),
                name: certificate_name.into(),
                credential,
                scope: None,
                reload_interval: DEFAULT_RELOAD_INTERVAL,
            },
        )
    }
}

/// The settings only a [`KeyVaultCertificate`] has.
impl CredentialBuilder<KeyVaultCertificate> {
    /// The scope Key Vault tokens are asked for. Defaults to
    /// `https://vault.azure.net/.default` (the public cloud's and the vault's own audience;
    /// use `https://vault.usgovcloudapi.net/.default` or `https://vault.azure.cn/.default`
    /// in those clouds).
    pub fn vault_scope(mut self, scope: impl Into<String>) -> Self {
        self.parts.scope = Some(scope.into());
        self
    }

    /// How often the certificate is read from Key Vault again, for a new version (it is
    /// read at once, too, when Entra refuses the version in use). Defaults to 1 hour.
    pub fn reload_interval(mut self, interval: Duration) -> Self {
        self.parts.reload_interval = interval;
        self
    }

    /// Checks the configuration (the vault URL is https, or http on loopback for tests;
    /// a certificate name) and builds the credential. Nothing is sent yet.
    pub fn build(self) -> Result<KeyVaultCertificate, Error> {
        let (client, parts, watch) = self.into_client()?;
        let vault = crate::cloud::checked_authority(&parts.vault).map_err(|e| {
            Error::InvalidConfiguration(format!("the Key Vault URL is not usable: {e}"))
        })?;
        let name = parts.name;
        if name.is_empty()
            || name.len() > 127
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(Error::InvalidConfiguration(format!(
                "Key Vault certificate name {:?} is not one (1-127 letters, digits and dashes)",
                crate::error::echo(&name)
            )));
        }
        if parts.reload_interval < Duration::from_secs(1) {
            return Err(Error::InvalidConfiguration(
                "the certificate reload interval is under a second; use a minute or more".into(),
            ));
        }
        let credential = match parts.credential {
            Source::Ready(credential) => credential,
            Source::ManagedIdentity(identity) => identity.credential()?,
        };
        let http = crate::http::default_client(&vault)?;
        let watch = watch.watch(
            "key vault certificate",
            || format!("key vault certificate {name}"),
            None,
        );
        let signer = VaultSigner {
            vault,
            name,
            scope: parts
                .scope
                .unwrap_or_else(|| "https://vault.azure.net/.default".into()),
            credential,
            http,
            timeout: client.timeout(),
            client_id: client.client_id.clone(),
            clock: client.clock.clone(),
            reload_interval: parts.reload_interval,
            certificate: Mutex::new(None),
            thumbprint: Mutex::new(None),
            watch,
        };
        Ok(KeyVaultCertificate { client, signer })
    }
}

/// What the vault said about the certificate in use.
#[derive(Clone)]
struct Certificate {
    /// The key's version (the certificate's).
    version: String,
    x5t_s256: String,
    not_after: SystemTime,
    /// When it was read; read again after the reload interval.
    read_at: SystemTime,
}

struct VaultSigner {
    vault: Url,
    name: String,
    scope: String,
    credential: Arc<dyn TokenCredential>,
    http: reqwest::Client,
    timeout: Duration,
    client_id: Arc<str>,
    clock: SharedClock,
    reload_interval: Duration,
    certificate: Mutex<Option<Certificate>>,
    /// `x5t#S256` of the last certificate read (kept when `certificate` is forgotten, to
    /// tell a new version from the same one read again).
    thumbprint: Mutex<Option<String>>,
    watch: Watch,
}

impl VaultSigner {
    fn error(&self, status: Option<u16>, reason: impl Into<String>) -> Error {
        Error::KeyVault {
            status,
            reason: format!(
                "vault {}, certificate {}: {}",
                self.vault.origin().ascii_serialization(),
                self.name,
                reason.into()
            )
            .into(),
        }
    }

    fn forget_certificate(&self) -> Option<String> {
        self.certificate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .map(|c| c.version)
    }

    /// The certificate in use: the one read before, unless the reload interval passed.
    async fn certificate(&self) -> Result<Certificate, Error> {
        let now = self.clock.now();
        let kept = self
            .certificate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(kept) = &kept
            && now.duration_since(kept.read_at).unwrap_or_default() < self.reload_interval
        {
            return Ok(kept.clone());
        }
        let url = self.url(&format!("certificates/{}", self.name))?;
        let answer = self.call(self.http.get(url)).await?;
        let cer = answer
            .get("cer")
            .and_then(Value::as_str)
            .and_then(|c| STANDARD.decode(c).ok())
            .ok_or_else(|| self.error(Some(200), "the certificate answer has no cer"))?;
        let facts = cert_facts(&cer).map_err(|e| {
            self.error(
                Some(200),
                format!("the certificate's cer does not parse: {e}"),
            )
        })?;
        let version = answer
            .get("kid")
            .and_then(Value::as_str)
            .and_then(|kid| kid.trim_end_matches('/').rsplit('/').next())
            .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric()))
            .ok_or_else(|| self.error(Some(200), "the certificate answer has no usable kid"))?
            .to_owned();
        let certificate = Certificate {
            version,
            x5t_s256: facts.x5t_s256.clone(),
            not_after: facts.not_after,
            read_at: now,
        };
        let previous = self
            .thumbprint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(certificate.x5t_s256.clone());
        match previous {
            None => self.watch.loaded(certificate.not_after),
            Some(previous) if previous != certificate.x5t_s256 => {
                tracing::info!(
                    client_id = %self.client_id,
                    credential = %self.watch.label(),
                    old_thumbprint = %previous,
                    new_thumbprint = %certificate.x5t_s256,
                    "a new version of the Key Vault certificate is in use"
                );
                self.watch.reloaded(
                    certificate.not_after,
                    format!("key vault certificate {}", self.name),
                );
            }
            Some(_) => {}
        }
        *self.certificate.lock().unwrap_or_else(|p| p.into_inner()) = Some(certificate.clone());
        Ok(certificate)
    }

    fn url(&self, path: &str) -> Result<Url, Error> {
        let mut url = self
            .vault
            .join(path)
            .map_err(|_| self.error(None, "the vault URL and certificate name make no URL"))?;
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        Ok(url)
    }

    /// One Key Vault request with a fresh bearer token, within the credential's timeout:
    /// the answer's JSON, or why there is none.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, Error> {
        let work = async {
            let token = self
                .credential
                .get_token(&[self.scope.as_str()], None)
                .await
                .map_err(|e| {
                    self.error(
                        None,
                        format!("no token for Key Vault ({}): {e}", self.scope),
                    )
                })?;
            let request = request
                .bearer_auth(token.token.secret())
                .header("accept", "application/json");
            let response = crate::http::send_no_redirect(request)
                .await
                .map_err(|e| self.error(None, format!("the request failed: {e}")))?;
            let status = response.status().as_u16();
            let body = crate::http::read_capped(response).await.map_err(|_| {
                self.error(
                    Some(status),
                    "the answer could not be read or is over 1 MiB",
                )
            })?;
            let json: Option<Value> = serde_json::from_slice(&body).ok();
            if !(200..300).contains(&status) {
                let said = |key: &str| {
                    json.as_ref()
                        .and_then(|j| j.pointer(&format!("/error/{key}")))
                        .and_then(Value::as_str)
                        .map(crate::error::echo)
                        .unwrap_or_default()
                };
                let advice = match status {
                    401 => "; the token was refused: check the vault's tenant and the scope",
                    403 => {
                        "; give the identity the Key Vault Crypto User and Key Vault Reader roles (or the Sign and Get permissions)"
                    }
                    404 => "; check the vault URL and the certificate's name",
                    429 => "; Key Vault is throttling: retry later",
                    _ => "",
                };
                return Err(self.error(
                    Some(status),
                    format!("{} {}{advice}", said("code"), said("message")),
                ));
            }
            json.ok_or_else(|| self.error(Some(status), "the answer is not JSON"))
        };
        Deadline::after(self.timeout)
            .run(work)
            .await
            .unwrap_or_else(|| {
                Err(self.error(
                    None,
                    format!("no answer within {} ms", self.timeout.as_millis()),
                ))
            })
    }

    /// A client assertion for `endpoint`, signed by Key Vault.
    async fn assertion(&self, endpoint: &Url) -> Result<String, Error> {
        let certificate = self.certificate().await?;
        let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": certificate.x5t_s256});
        let iat = crate::clock::unix_secs(self.clock.now());
        let claims = json!({
            "aud": endpoint.as_str(),
            "iss": &*self.client_id,
            "sub": &*self.client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": iat,
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME.as_secs(),
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let hash = digest::digest(&digest::SHA256, input.as_bytes());
        let url = self.url(&format!("keys/{}/{}/sign", self.name, certificate.version))?;
        let body = json!({"alg": "PS256", "value": URL_SAFE_NO_PAD.encode(hash.as_ref())});
        let answer = self
            .call(
                self.http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body.to_string()),
            )
            .await?;
        let signature = answer
            .get("value")
            .and_then(Value::as_str)
            .filter(|v| URL_SAFE_NO_PAD.decode(v).is_ok_and(|s| !s.is_empty()))
            .ok_or_else(|| self.error(Some(200), "the sign answer has no signature"))?;
        Ok(format!("{input}.{signature}"))
    }
}

#[async_trait::async_trait]
impl AuthSource for VaultSigner {
    async fn auth(&self, endpoint: &Url, _fresh: bool) -> Result<ClientAuth, Error> {
        let assertion = self.assertion(endpoint).await?;
        Ok(ClientAuth::Assertion(Secret::new(assertion)))
    }
}

#[async_trait::async_trait]
impl TenantCredentialProvider for KeyVaultCertificate {
    fn client_id(&self) -> &str {
        &self.client.client_id
    }

    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        let watch = &self.signer.watch;
        watch.check(self.client.clock.now(), &self.client.client_id);
        let mut result = self.client.request(tenant, scopes, &self.signer).await;
        // Refused for the certificate itself: Key Vault may hold a new version already
        // (the old one was removed from the app registration before this replica looked).
        if matches!(result, Err(Error::InvalidClientAssertion(_))) {
            let used = self.signer.forget_certificate();
            if let Ok(now) = self.signer.certificate().await
                && used.is_some_and(|u| u != now.version)
            {
                watch.saw(&result);
                result = self.client.request(tenant, scopes, &self.signer).await;
            }
        }
        watch.saw(&result);
        result
    }

    fn authority_host(&self) -> &Url {
        self.client.cloud.authority_host()
    }

    async fn resolve_tenant(&self, tenant: &TenantId) -> Result<Option<TenantId>, Error> {
        self.client.resolve_tenant(tenant).await
    }

    fn credential_stats(&self) -> Option<CredentialStats> {
        Some(self.signer.watch.stats(self.client.clock.now()))
    }
}

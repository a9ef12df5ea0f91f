//! [`CredentialBuilder`]: the one builder of every credential. The settings all
//! credentials share (cloud, authority host, HTTP client, timeout, retries, injected time)
//! are written and documented once here; each credential adds its own setters in an
//! `impl CredentialBuilder<ItsType>` block next to it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::authority::{RetryPolicy, TokenClient};
use crate::clock::{Clock, SharedClock, SharedSleeper, Sleeper, SystemClock, TokioSleeper};
use crate::cloud::{Cloud, checked_authority};
use crate::error::Error;
use crate::http::HttpClient;

use super::status::DEFAULT_EXPIRY_WARNING;

/// Default timeout of one attempt: Entra answers in well under a second; a stuck
/// connection or assertion source must not hold a caller for minutes.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

mod sealed {
    /// A credential a [`CredentialBuilder`](super::CredentialBuilder) can build, and the
    /// settings only it has. Implemented by this crate's credentials only.
    pub trait Kind {
        /// What the builder holds for this kind of credential alone.
        type Parts: std::fmt::Debug + Send + Sync;
    }
}
pub(crate) use sealed::Kind;

/// Builds a credential: [`ClientSecret`](crate::ClientSecret),
/// [`ClientCertificate`](crate::ClientCertificate) or
/// [`FederatedAssertion`](crate::FederatedAssertion), each started by its own constructor.
///
/// The setters here are common to all; each credential's page lists its own. Nothing is
/// checked or sent until `build()`, which reports the first mistake (a client id that is
/// not a GUID, a plain-http authority that is not loopback, a zero timeout...).
///
/// ```
/// use std::time::Duration;
/// use azure_cross_tenant::{ClientSecret, Cloud, RetryPolicy};
///
/// let credential = ClientSecret::new("11111111-2222-3333-4444-555555555555", "app-secret-value")
///     .cloud(Cloud::UsGovernment)
///     .timeout(Duration::from_secs(5))
///     .retry(RetryPolicy::default().max_retries(2))
///     .build()?;
/// # Ok::<(), azure_cross_tenant::Error>(())
/// ```
#[must_use = "a builder does nothing until `build()`"]
pub struct CredentialBuilder<C: Kind> {
    client_id: String,
    options: CommonOptions,
    pub(super) parts: C::Parts,
}

impl<C: Kind> fmt::Debug for CredentialBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialBuilder")
            .field("client_id", &self.client_id)
            .field("options", &self.options)
            .field("parts", &self.parts)
            .finish()
    }
}

impl<C: Kind> CredentialBuilder<C> {
    pub(super) fn new(client_id: impl Into<String>, parts: C::Parts) -> Self {
        Self {
            client_id: client_id.into(),
            options: CommonOptions::default(),
            parts,
        }
    }

    /// The cloud to ask for tokens: its authority host and its token-exchange audience.
    /// Defaults to [`Cloud::Public`].
    pub fn cloud(mut self, cloud: Cloud) -> Self {
        self.options.cloud = cloud;
        self
    }

    /// An authority host overriding the cloud's (a private endpoint, or a mock on
    /// loopback); the cloud still gives the token-exchange audience. Must be `https`, or
    /// `http` on loopback; checked by `build`. Defaults to the cloud's host.
    pub fn authority_host(mut self, host: Url) -> Self {
        self.options.authority_host = Some(host);
        self
    }

    /// The HTTP client token requests are sent with (share one across credentials to
    /// share connections, proxy and TLS settings). Built by this crate with redirects
    /// off, so a request goes only to the token endpoint; a redirect answer is refused as
    /// [`Error::Redirected`], and the form is sent as a body that cannot be replayed.
    /// Defaults to a client built for this credential, with a 5 s connect timeout and,
    /// for a plain-http (loopback) authority, no proxy.
    pub fn http_client(mut self, client: HttpClient) -> Self {
        self.options.http = Some(client);
        self
    }

    /// How long one attempt may take, from getting the app's credential (a federated
    /// assertion may have to be fetched) to the last byte of Entra's answer. Counted on
    /// tokio's timer, not the injected [`clock`](Self::clock). Defaults to 10 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// How retryable failures are retried. Defaults to [`RetryPolicy::default()`]: once,
    /// after 1 s, within 30 s.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.options.retry = retry;
        self
    }

    /// The clock that stamps token lifetimes and decides assertion reuse and throttle
    /// gates. Defaults to [`SystemClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.options.clock = clock;
        self
    }

    /// What retry delays wait on. Defaults to [`TokioSleeper`].
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.options.sleeper = sleeper;
        self
    }

    /// The credential's name in logs and [`CredentialStats`](crate::CredentialStats)
    /// (`"2026 certificate"`, `"managed identity"`): never its value. In a
    /// [`CredentialSet`](crate::CredentialSet) each label must differ. Defaults to the
    /// kind, and for a certificate the start of its SHA-256 thumbprint.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.options.label = Some(label.into());
        self
    }

    /// How long before the credential expires a warning is logged (at most once a day,
    /// at `warn`; at `error` once it has expired), for a credential whose expiry is known:
    /// a certificate's `notAfter`, a secret's expiry given to `expires_on`. The
    /// expiry and days left are in [`CredentialStats`](crate::CredentialStats) too.
    /// Defaults to 30 days.
    pub fn expiry_warning(mut self, before: Duration) -> Self {
        self.options.expiry_warning = before;
        self
    }

    /// Checks the common settings and builds the token client; the kind's parts are
    /// handed back for the kind's own `build`, with the settings of its [`Watch`].
    pub(super) fn into_client(self) -> Result<(TokenClient, C::Parts, WatchOptions), Error> {
        let watch = WatchOptions {
            label: self.options.label.clone(),
            warn_before: self.options.expiry_warning,
        };
        if watch.label.as_deref().is_some_and(|l| l.trim().is_empty()) {
            return Err(Error::InvalidConfiguration(
                "the credential's label is empty; name it (e.g. \"2026 certificate\") or leave the default".into(),
            ));
        }
        let client = self.options.build(&self.client_id)?;
        Ok((client, self.parts, watch))
    }
}

/// The settings of a credential's [`Watch`](super::status::Watch): its label and the
/// expiry warning's lead time.
#[derive(Debug)]
pub(super) struct WatchOptions {
    pub(super) label: Option<String>,
    pub(super) warn_before: Duration,
}

impl WatchOptions {
    pub(super) fn watch(
        self,
        kind: &'static str,
        default_label: impl FnOnce() -> String,
        expires_on: Option<std::time::SystemTime>,
    ) -> super::status::Watch {
        super::status::Watch::new(
            kind,
            self.label,
            default_label,
            expires_on,
            self.warn_before,
        )
    }
}

/// Settings every credential shares.
struct CommonOptions {
    cloud: Cloud,
    authority_host: Option<Url>,
    http: Option<HttpClient>,
    timeout: Duration,
    retry: RetryPolicy,
    clock: SharedClock,
    sleeper: SharedSleeper,
    label: Option<String>,
    expiry_warning: Duration,
}

impl fmt::Debug for CommonOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A URL's Debug shows its password; `build` refuses one, but Debug comes first.
        let host = self.authority_host.as_ref().map(|u| {
            let mut shown = u.clone();
            let _ = shown.set_username("");
            let _ = shown.set_password(None);
            shown.to_string()
        });
        f.debug_struct("CommonOptions")
            .field("cloud", &self.cloud)
            .field("authority_host", &host)
            .field("http", &self.http.as_ref().map(|_| "caller's client"))
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("label", &self.label)
            .field("expiry_warning", &self.expiry_warning)
            .finish_non_exhaustive()
    }
}

impl Default for CommonOptions {
    fn default() -> Self {
        Self {
            cloud: Cloud::Public,
            authority_host: None,
            http: None,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(TokioSleeper),
            label: None,
            expiry_warning: DEFAULT_EXPIRY_WARNING,
        }
    }
}

impl CommonOptions {
    /// Checks everything and builds the token client.
    fn build(self, client_id: &str) -> Result<TokenClient, Error> {
        let client_id = checked_client_id(client_id)?;
        let cloud = match self.authority_host {
            Some(host) => Cloud::Custom {
                authority_host: checked_authority(host.as_str())?,
                token_exchange_audience: self.cloud.token_exchange_audience().to_owned(),
            },
            None => match self.cloud {
                Cloud::Custom {
                    authority_host,
                    token_exchange_audience,
                } => Cloud::Custom {
                    authority_host: checked_authority(authority_host.as_str())?,
                    token_exchange_audience,
                },
                known => known,
            },
        };
        if self.timeout.is_zero() {
            return Err(Error::InvalidConfiguration(
                "the request timeout is zero; use at least a few seconds".into(),
            ));
        }
        let http = match self.http {
            Some(c) => c.reqwest().clone(),
            None => crate::http::default_client(cloud.authority_host())?,
        };
        Ok(TokenClient::new(
            client_id,
            cloud,
            http,
            self.timeout,
            self.retry,
            self.clock,
            self.sleeper,
        ))
    }
}

/// An Entra client id is a GUID; anything else is a configuration mistake caught before
/// any request (the usual one: the app's *name* or *object id* in its place).
fn checked_client_id(client_id: &str) -> Result<Arc<str>, Error> {
    if crate::tenant::is_guid(client_id) {
        Ok(Arc::from(client_id.to_ascii_lowercase()))
    } else {
        Err(Error::InvalidConfiguration(format!(
            "client id {:?} is not a GUID; use the app registration's Application (client) ID",
            crate::error::echo(client_id)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_must_be_a_guid() {
        assert!(checked_client_id("my-app").is_err());
        assert_eq!(
            &*checked_client_id("AAAAAAAA-0000-0000-0000-000000000001").unwrap(),
            "aaaaaaaa-0000-0000-0000-000000000001"
        );
    }

    #[test]
    fn plain_http_authority_is_refused_unless_loopback() {
        let client_id = "aaaaaaaa-0000-0000-0000-000000000001";
        let o = CommonOptions {
            authority_host: Some(Url::parse("http://login.example.com/").unwrap()),
            ..CommonOptions::default()
        };
        assert!(o.build(client_id).is_err());
        let o = CommonOptions {
            authority_host: Some(Url::parse("http://127.0.0.1:9/").unwrap()),
            ..CommonOptions::default()
        };
        assert!(o.build(client_id).is_ok());
    }

    #[test]
    fn a_zero_timeout_is_refused() {
        let o = CommonOptions {
            timeout: Duration::ZERO,
            ..CommonOptions::default()
        };
        let err = o.build("aaaaaaaa-0000-0000-0000-000000000001").unwrap_err();
        assert!(err.to_string().contains("timeout"), "{err}");
    }
}

//! The ways the app proves who it is, one file each. Each is a
//! [`TenantCredentialProvider`](crate::TenantCredentialProvider) that makes one token
//! request per call; wrap it in [`Cached`](crate::Cached) to reuse tokens.
//!
//! This file holds what their builders share: cloud, HTTP client, timeout, retry policy
//! and injected time.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::authority::{RetryPolicy, TokenClient};
use crate::clock::{Clock, SharedClock, SharedSleeper, Sleeper, SystemClock, TokioSleeper};
use crate::cloud::{Cloud, checked_authority};
use crate::error::Error;

pub mod certificate;
pub mod federated;
pub mod secret;
pub mod sources;

/// Default per-request timeout: Entra answers in well under a second; a stuck connection
/// must not hold a caller for minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings every credential builder shares.
#[derive(Debug)]
pub(crate) struct CommonOptions {
    cloud: Cloud,
    authority_host: Option<Url>,
    http: Option<reqwest::Client>,
    timeout: Duration,
    retry: RetryPolicy,
    clock: SharedClock,
    sleeper: SharedSleeper,
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
        }
    }
}

impl CommonOptions {
    pub(crate) fn cloud(&mut self, cloud: Cloud) {
        self.cloud = cloud;
    }
    pub(crate) fn authority_host(&mut self, host: Url) {
        self.authority_host = Some(host);
    }
    pub(crate) fn http_client(&mut self, client: reqwest::Client) {
        self.http = Some(client);
    }
    pub(crate) fn timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }
    pub(crate) fn retry(&mut self, retry: RetryPolicy) {
        self.retry = retry;
    }
    pub(crate) fn clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }
    pub(crate) fn sleeper(&mut self, sleeper: Arc<dyn Sleeper>) {
        self.sleeper = sleeper;
    }

    /// Checks everything and builds the token client.
    pub(crate) fn build(self, client_id: &str) -> Result<TokenClient, Error> {
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
            Some(c) => c,
            None => crate::http::default_client()?,
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

/// The builder setters every credential shares, written once.
macro_rules! common_builder_methods {
    () => {
        /// The cloud to ask (default [`Cloud::Public`](crate::Cloud::Public)).
        pub fn cloud(mut self, cloud: $crate::Cloud) -> Self {
            self.common.cloud(cloud);
            self
        }

        /// An authority host overriding the cloud's (a private endpoint, or a mock on
        /// loopback). Must be `https`, or `http` on loopback; checked by `build`.
        pub fn authority_host(mut self, host: url::Url) -> Self {
            self.common.authority_host(host);
            self
        }

        /// The HTTP client to send requests with (share one across credentials to share
        /// connections). By default a client without redirects is built.
        pub fn http_client(mut self, client: reqwest::Client) -> Self {
            self.common.http_client(client);
            self
        }

        /// Timeout of each attempt (default 10 s).
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.common.timeout(timeout);
            self
        }

        /// How retryable failures are retried (default: once, after 1 s).
        pub fn retry(mut self, retry: $crate::RetryPolicy) -> Self {
            self.common.retry(retry);
            self
        }

        /// The clock stamping token lifetimes (default the system clock).
        pub fn clock(mut self, clock: std::sync::Arc<dyn $crate::Clock>) -> Self {
            self.common.clock(clock);
            self
        }

        /// What retry delays wait on (default the tokio timer).
        pub fn sleeper(mut self, sleeper: std::sync::Arc<dyn $crate::Sleeper>) -> Self {
            self.common.sleeper(sleeper);
            self
        }
    };
}
pub(crate) use common_builder_methods;

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
        let mut o = CommonOptions::default();
        o.authority_host(Url::parse("http://login.example.com/").unwrap());
        assert!(o.build("aaaaaaaa-0000-0000-0000-000000000001").is_err());
        let mut o = CommonOptions::default();
        o.authority_host(Url::parse("http://127.0.0.1:9/").unwrap());
        assert!(o.build("aaaaaaaa-0000-0000-0000-000000000001").is_ok());
    }
}

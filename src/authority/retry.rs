//! [`RetryPolicy`], and the per-(tenant, scope) gates that a long `Retry-After` closes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::error::{EntraError, Error};
use crate::scope::Scopes;
use crate::tenant::TenantId;

/// How retryable failures of a token request are retried: how often, how long to wait
/// first, and how long all attempts together may take.
///
/// Retryable are 5xx answers, Entra's transient codes, timeouts and connection failures,
/// a `Retry-After` of up to 5 s (waited out), and one assertion Entra found expired (retried
/// at once with a fresh one). Never 400 or 401.
///
/// ```
/// use std::time::Duration;
/// use azure_cross_tenant::RetryPolicy;
///
/// let patient = RetryPolicy::default()
///     .max_retries(3)
///     .initial_delay(Duration::from_millis(500))
///     .max_total(Duration::from_secs(20));
/// assert_ne!(patient, RetryPolicy::none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    max_retries: u32,
    initial_delay: Duration,
    max_total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 1,
            initial_delay: Duration::from_secs(1),
            max_total: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        Self::default().max_retries(0)
    }

    /// Retries after the first attempt. Defaults to 1, as MSAL does for 5xx.
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The wait before the first retry, doubled for each further one (a `Retry-After`
    /// overrides it). Defaults to 1 s.
    #[must_use]
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// How long the attempts and waits of one call may run before retrying stops: no retry
    /// is made whose wait would end past it. It does not cut an attempt short: the last
    /// attempt may still take up to the credential's `timeout`, so a call lasts at most
    /// `max_total + timeout`. Defaults to 30 s.
    #[must_use]
    pub fn max_total(mut self, total: Duration) -> Self {
        self.max_total = total;
        self
    }

    /// The wait before retry number `retry` (1-based) after `elapsed`, or `None` when the
    /// policy allows no more. `asked` is the wait the answer asked for, if it did.
    pub(super) fn wait_before(
        &self,
        retry: u32,
        asked: Option<Duration>,
        elapsed: Duration,
    ) -> Option<Duration> {
        let doubled = self
            .initial_delay
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)));
        let wait = asked.unwrap_or(doubled);
        (retry <= self.max_retries && elapsed.saturating_add(wait) <= self.max_total)
            .then_some(wait)
    }
}

/// (tenant, scope) pairs Entra throttled for longer than a call waits: requests for them
/// fail fast until the gate opens, while every other pair goes on.
#[derive(Debug, Default)]
pub(super) struct Throttles {
    /// A std lock: never held across an await.
    until: Mutex<HashMap<(TenantId, Scopes), SystemTime>>,
}

impl Throttles {
    /// `Err(Throttled)` while the pair's gate is closed at `now`.
    pub(super) fn check(
        &self,
        tenant: &TenantId,
        scopes: &Scopes,
        now: SystemTime,
        client_id: &str,
    ) -> Result<(), Error> {
        let mut gate = self.until.lock().unwrap_or_else(|p| p.into_inner());
        let key = (tenant.clone(), scopes.clone());
        match gate.get(&key) {
            Some(until) if *until > now => Err(Error::Throttled {
                retry_after: until.duration_since(now).ok(),
                entra: Box::new(EntraError::bare(tenant.clone(), client_id, 429)),
            }),
            Some(_) => {
                gate.remove(&key);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Closes the pair's gate for `retry_after` from `now`.
    pub(super) fn close(
        &self,
        tenant: &TenantId,
        scopes: &Scopes,
        now: SystemTime,
        retry_after: Duration,
    ) {
        if let Some(until) = now.checked_add(retry_after) {
            let mut gate = self.until.lock().unwrap_or_else(|p| p.into_inner());
            // Forget gates that have passed so the map stays bounded by live throttles.
            gate.retain(|_, t| *t > now);
            gate.insert((tenant.clone(), scopes.clone()), until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_and_stop_at_the_retry_count_or_the_total() {
        let p = RetryPolicy::default()
            .max_retries(3)
            .initial_delay(Duration::from_millis(500))
            .max_total(Duration::from_secs(3));
        let s = Duration::from_secs;
        assert_eq!(
            p.wait_before(1, None, s(0)),
            Some(Duration::from_millis(500))
        );
        assert_eq!(p.wait_before(2, None, s(0)), Some(s(1)));
        assert_eq!(p.wait_before(3, None, s(0)), Some(s(2)));
        assert_eq!(p.wait_before(4, None, s(0)), None, "retry count");
        assert_eq!(p.wait_before(3, None, s(2)), None, "total");
        assert_eq!(p.wait_before(1, Some(s(2)), s(0)), Some(s(2)), "asked wait");
        assert_eq!(RetryPolicy::none().wait_before(1, None, s(0)), None);
        // Huge settings saturate instead of overflowing.
        let huge = RetryPolicy::default()
            .max_retries(u32::MAX)
            .initial_delay(Duration::MAX)
            .max_total(Duration::MAX);
        assert_eq!(huge.wait_before(u32::MAX, None, s(1)), Some(Duration::MAX));
    }
}

//! [`Refusal`]: a tenant's permanent "no" (not consented, not found, app disabled, the
//! resource not there), remembered per (tenant, scope) for a bounded window so that
//! calls for it do not each ask Entra again. Transport errors, 5xx and throttling are
//! never remembered: they have their own rules (retries, `Retry-After` gates).
//!
//! Without a shared cache the refusal is kept in memory; with one it is kept in L2 too,
//! and read from there while L2 answers, so an invalidation on any replica (a tenant that
//! just finished onboarding) reaches every replica at once.

use std::time::{Duration, SystemTime};

use super::expiry::KeptFor;
use super::options::CacheOptions;
use crate::error::Error;

/// A refusal, as Entra gave it, and its window.
pub(super) struct Refusal {
    /// The error as Entra gave it (not marked as remembered).
    pub(super) error: Error,
    pub(super) learned: SystemTime,
    /// Served until then; asked again after.
    pub(super) until: SystemTime,
    /// How long the store keeps it, measured at insertion.
    ttl: Duration,
}

impl Refusal {
    /// `error` learned at `learned`, if it is a tenant's permanent refusal and remembering
    /// is on: its window is `negative_ttl` shortened by up to a fifth (`spread`, per key),
    /// so the refusals of many tenants do not all end in the same second.
    pub(super) fn learned(
        error: &Error,
        learned: SystemTime,
        options: &CacheOptions,
        spread: f64,
    ) -> Option<Self> {
        let window = options.negative_ttl;
        if window.is_zero() || !error.is_tenant_refusal() {
            return None;
        }
        let window = window - (window / 5).mul_f64(spread.clamp(0.0, 1.0));
        Some(Self::until(
            error.clone(),
            learned,
            learned + window,
            learned,
        ))
    }

    /// A refusal with a known window (read from the shared cache), kept from `now`.
    pub(super) fn until(
        error: Error,
        learned: SystemTime,
        until: SystemTime,
        now: SystemTime,
    ) -> Self {
        Self {
            error,
            learned,
            until,
            ttl: until.duration_since(now).unwrap_or_default(),
        }
    }

    /// Whether it still holds at `now`.
    pub(super) fn holds(&self, now: SystemTime) -> bool {
        now < self.until
    }

    /// The error a caller gets: Entra's, marked as remembered from when it was learned.
    pub(super) fn served(&self) -> Error {
        self.error.clone().remembered(self.learned)
    }
}

impl KeptFor for Refusal {
    fn kept_for(&self) -> Duration {
        self.ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EntraError;

    fn entra(code: u32, status: u16) -> Box<EntraError> {
        let mut e = EntraError::bare("contoso.example".parse().unwrap(), "client", status);
        e.codes = vec![code];
        Box::new(e)
    }

    #[test]
    fn only_a_tenants_permanent_answers_are_remembered_within_a_jittered_window() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let options = CacheOptions::default();
        let not_found = Error::TenantNotFound(entra(90002, 400));
        for spread in [0.0, 0.5, 0.999] {
            let r = Refusal::learned(&not_found, now, &options, spread).unwrap();
            let window = r.until.duration_since(now).unwrap();
            assert!(window <= Duration::from_secs(60) && window > Duration::from_secs(48));
            assert!(r.holds(now + window - Duration::from_millis(1)));
            assert!(!r.holds(now + window));
            assert_eq!(r.served().remembered_at(), Some(now));
            assert_eq!(r.error.remembered_at(), None);
        }
        for passing in [
            Error::Throttled {
                retry_after: None,
                entra: entra(90055, 429),
            },
            Error::Authority(entra(50033, 400)),
            Error::Authority(entra(0, 503)),
            Error::InvalidClientSecret(entra(7000215, 401)),
            Error::FederationPending(entra(70021, 400)),
        ] {
            assert!(
                Refusal::learned(&passing, now, &options, 0.5).is_none(),
                "{passing:?}"
            );
        }
        let off = CacheOptions::default().negative_ttl(Duration::ZERO);
        assert!(Refusal::learned(&not_found, now, &off, 0.5).is_none());
    }
}

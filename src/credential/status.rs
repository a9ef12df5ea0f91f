//! [`CredentialStats`]: what a credential knows about itself (its label, when it expires,
//! how often Entra refused it, reloads), and the watch behind it that warns before it
//! expires.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::clock::unix_secs;

/// Default lead time of the expiry warning: a month to upload a successor and deploy it.
pub(crate) const DEFAULT_EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);

const DAY: u64 = 86_400;

/// What a credential reports about itself: one entry per credential (several for a
/// [`CredentialSet`](crate::CredentialSet)), and how often a set switched between them.
///
/// Read it from any provider with
/// [`credential_stats`](crate::TenantCredentialProvider::credential_stats) (a
/// [`Cached`](crate::Cached) provider passes the question on to its credential), and alert
/// on [`soonest_expiry`](Self::soonest_expiry):
///
/// ```
/// use azure_cross_tenant::{ClientSecret, TenantCredentialProvider};
/// use std::time::{Duration, SystemTime};
///
/// let secret = ClientSecret::new("11111111-2222-3333-4444-555555555555", "app-secret-value")
///     .expires_on(SystemTime::now() + Duration::from_secs(10 * 86_400))
///     .label("secret of March")
///     .build()?;
/// let stats = secret.credential_stats().expect("this crate's credentials report");
/// let soonest = stats.soonest_expiry().expect("an expiry was given");
/// assert_eq!(soonest.label, "secret of March");
/// assert!(soonest.days_left.is_some_and(|d| d <= 10));
/// # Ok::<(), azure_cross_tenant::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CredentialStats {
    /// Each credential in the order configured: one for a single credential, one per
    /// member of a [`CredentialSet`](crate::CredentialSet).
    pub credentials: Vec<CredentialStatus>,
    /// Times a [`CredentialSet`](crate::CredentialSet) switched to another of its
    /// credentials (always 0 for a single credential).
    pub switches: u64,
}

impl CredentialStats {
    /// The credential requests are made with now.
    pub fn in_use(&self) -> Option<&CredentialStatus> {
        self.credentials.iter().find(|c| c.in_use)
    }

    /// The credential that expires first, among those whose expiry is known: the one to
    /// alert on.
    pub fn soonest_expiry(&self) -> Option<&CredentialStatus> {
        self.credentials
            .iter()
            .filter(|c| c.expires_on.is_some())
            .min_by_key(|c| c.expires_on)
    }
}

/// One credential's state, as [`CredentialStats`] reports it. Never holds the credential
/// itself: a secret or key does not appear here, only its label.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CredentialStatus {
    /// Its label: set with [`CredentialBuilder::label`](crate::CredentialBuilder::label),
    /// else the kind and, for a certificate, the start of its SHA-256 thumbprint.
    pub label: String,
    /// What kind of credential: `"client secret"`, `"certificate"`, `"federated
    /// assertion"`, `"key vault certificate"`, or `"custom"` (a provider from outside
    /// this crate in a set).
    pub kind: &'static str,
    /// Whether requests are made with it now (in a set, the preferred one).
    pub in_use: bool,
    /// When it expires: a certificate's `notAfter` (of the certificate loaded now), a
    /// secret's expiry when it was given to the builder; `None` when unknown.
    pub expires_on: Option<SystemTime>,
    /// Whole days until [`expires_on`](Self::expires_on), negative once it has passed.
    pub days_left: Option<i64>,
    /// Times Entra refused it for the credential itself (wrong or expired secret, unknown
    /// certificate, federation mismatch...) or it could not be produced (the identity
    /// endpoint, the assertion source or Key Vault unavailable). See [`Error::is_credential_error`](crate::Error::is_credential_error).
    pub rejections: u64,
    /// Times a new certificate was loaded (from its files, or a new version from Key Vault).
    pub reloads: u64,
    /// Times a changed certificate could not be used (it did not parse, the key did not
    /// match, it was not valid yet or any more): the old one was kept.
    pub reload_failures: u64,
}

/// A credential's label, expiry and counters, and the once-a-day expiry warning.
#[derive(Debug)]
pub(crate) struct Watch {
    label: Mutex<Arc<str>>,
    /// Whether the label was given by the caller (a reloaded certificate keeps it).
    label_given: bool,
    kind: &'static str,
    /// Unix seconds + 1 of the expiry; 0 when unknown.
    expires: AtomicU64,
    warn_before: Duration,
    /// Day number + 1 of the last warning; 0 before any.
    warned_day: AtomicU64,
    rejections: AtomicU64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
}

impl Watch {
    pub(crate) fn new(
        kind: &'static str,
        label: Option<String>,
        default_label: impl FnOnce() -> String,
        expires_on: Option<SystemTime>,
        warn_before: Duration,
    ) -> Self {
        let label_given = label.is_some();
        let label = label.unwrap_or_else(default_label);
        Self {
            label: Mutex::new(Arc::from(label)),
            label_given,
            kind,
            expires: AtomicU64::new(expires_on.map_or(0, |t| unix_secs(t) + 1)),
            warn_before,
            warned_day: AtomicU64::new(0),
            rejections: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
        }
    }

    pub(crate) fn label(&self) -> Arc<str> {
        self.label.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn expires_on(&self) -> Option<SystemTime> {
        match self.expires.load(Ordering::Relaxed) {
            0 => None,
            s => SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s - 1)),
        }
    }

    /// A new certificate was loaded: its expiry (and, unless the caller named the
    /// credential, its default label) replace the old; the next check warns afresh.
    /// The expiry of a credential learned after it was built (a certificate read from Key
    /// Vault at the first call); not a reload.
    #[cfg(feature = "azure-core")]
    pub(crate) fn loaded(&self, expires_on: SystemTime) {
        self.expires
            .store(unix_secs(expires_on) + 1, Ordering::Relaxed);
    }

    pub(crate) fn reloaded(&self, expires_on: SystemTime, default_label: String) {
        self.expires
            .store(unix_secs(expires_on) + 1, Ordering::Relaxed);
        if !self.label_given {
            *self.label.lock().unwrap_or_else(|p| p.into_inner()) = Arc::from(default_label);
        }
        self.warned_day.store(0, Ordering::Relaxed);
        self.reloads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reload_failed(&self) {
        self.reload_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `result`'s error if it is about the credential itself.
    pub(crate) fn saw<T>(&self, result: &Result<T, crate::Error>) {
        if result
            .as_ref()
            .is_err_and(crate::Error::is_credential_error)
        {
            self.rejections.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Warns, at most once a (UTC) day, when the credential expires within the warning
    /// lead time or has expired. Cheap when there is nothing to say: two atomic loads.
    pub(crate) fn check(&self, now: SystemTime, client_id: &str) {
        let Some(expires_on) = self.expires_on() else {
            return;
        };
        if expires_on > now + self.warn_before {
            return;
        }
        let day = unix_secs(now) / DAY + 1;
        let last = self.warned_day.load(Ordering::Relaxed);
        if last == day
            || self
                .warned_day
                .compare_exchange(last, day, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let label = self.label();
        let days_left = days_left(expires_on, now);
        let expires_at = httpdate::fmt_http_date(expires_on);
        if expires_on <= now {
            tracing::error!(
                client_id,
                credential = %label,
                kind = self.kind,
                expires_on = %expires_at,
                days_left,
                "the app's credential has expired: Entra refuses it; deploy its successor (and register it on the app)"
            );
        } else {
            tracing::warn!(
                client_id,
                credential = %label,
                kind = self.kind,
                expires_on = %expires_at,
                days_left,
                "the app's credential expires soon: register its successor on the app and deploy it before then"
            );
        }
    }

    pub(crate) fn status(&self, now: SystemTime, in_use: bool) -> CredentialStatus {
        let expires_on = self.expires_on();
        CredentialStatus {
            label: self.label().to_string(),
            kind: self.kind,
            in_use,
            expires_on,
            days_left: expires_on.map(|e| days_left(e, now)),
            rejections: self.rejections.load(Ordering::Relaxed),
            reloads: self.reloads.load(Ordering::Relaxed),
            reload_failures: self.reload_failures.load(Ordering::Relaxed),
        }
    }

    /// This credential alone, as [`CredentialStats`].
    pub(crate) fn stats(&self, now: SystemTime) -> CredentialStats {
        CredentialStats {
            credentials: vec![self.status(now, true)],
            switches: 0,
        }
    }
}

/// Whole days from `now` to `expires_on`, rounded toward negative infinity (an expiry
/// in 12 hours is 0 days left, one 12 hours ago is -1).
fn days_left(expires_on: SystemTime, now: SystemTime) -> i64 {
    let secs = match expires_on.duration_since(now) {
        Ok(ahead) => i64::try_from(ahead.as_secs()).unwrap_or(i64::MAX),
        Err(past) => -i64::try_from(past.duration().as_secs()).unwrap_or(i64::MAX),
    };
    secs.div_euclid(DAY as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn days_left_rounds_down_and_goes_negative() {
        let now = at(100 * DAY);
        assert_eq!(days_left(at(100 * DAY + DAY / 2), now), 0);
        assert_eq!(days_left(at(110 * DAY), now), 10);
        assert_eq!(days_left(at(100 * DAY - 1), now), -1);
        assert_eq!(days_left(at(90 * DAY), now), -10);
    }

    #[test]
    fn expiry_is_reported_and_warned_once_a_day() {
        let watch = Watch::new(
            "client secret",
            None,
            || "client secret".into(),
            Some(at(120 * DAY)),
            DEFAULT_EXPIRY_WARNING,
        );
        let now = at(100 * DAY + 5);
        watch.check(now, "app");
        let first = watch.warned_day.load(Ordering::Relaxed);
        assert_eq!(first, 101, "warned on day 100");
        watch.check(now + Duration::from_secs(3600), "app");
        assert_eq!(watch.warned_day.load(Ordering::Relaxed), first);
        watch.check(now + Duration::from_secs(DAY), "app");
        assert_eq!(watch.warned_day.load(Ordering::Relaxed), first + 1);
        let status = watch.status(now, true);
        assert_eq!(status.days_left, Some(19));
        assert_eq!(status.expires_on, Some(at(120 * DAY)));
    }

    #[test]
    fn nothing_is_warned_before_the_lead_time() {
        let watch = Watch::new(
            "certificate",
            Some("mine".into()),
            String::new,
            Some(at(200 * DAY)),
            DEFAULT_EXPIRY_WARNING,
        );
        watch.check(at(100 * DAY), "app");
        assert_eq!(watch.warned_day.load(Ordering::Relaxed), 0);
        watch.reloaded(at(300 * DAY), "other".into());
        assert_eq!(watch.label().as_ref(), "mine", "a given label stays");
        assert_eq!(watch.status(at(100 * DAY), true).reloads, 1);
    }
}

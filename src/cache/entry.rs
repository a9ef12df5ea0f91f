//! [`Entry`]: a cached token and when to refresh it and stop serving it; [`Slot`]: what
//! the read index holds for it, so a hit reads one place.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::expiry::KeptFor;
use super::options::CacheOptions;
use crate::token::AccessToken;

/// Tokens living longer than this are refreshed at half-life (managed identity and
/// workload identity tokens can live about 24 h).
const HALF_LIFE_THRESHOLD: Duration = Duration::from_secs(2 * 3600);
/// Longest wait between refresh attempts after failures.
pub(super) const MAX_REFRESH_BACKOFF: Duration = Duration::from_secs(5 * 60);

/// A cached token and when to refresh and stop serving it.
pub(super) struct Entry {
    pub(super) token: AccessToken,
    /// Served until then (expiry minus skew).
    pub(super) usable_until: SystemTime,
    /// A background refresh starts from then on.
    pub(super) refresh_at: SystemTime,
    /// How long moka keeps the entry, measured at insertion.
    ttl: Duration,
    pub(super) refreshing: AtomicBool,
    /// After a failed refresh: the next attempt and the failure count.
    pub(super) retry: Mutex<(SystemTime, u32)>,
}

/// What the read index holds for an entry: the token and until when a hit may serve it
/// without looking further, beside the entry itself. A hit before `fresh_until` reads
/// only this (in the index's own node), never the entry: one cache line fewer per hit.
pub(super) struct Slot {
    /// The earlier of when the token stops being served and when its refresh is due
    /// (when refreshing is on). From then on a hit looks at the entry.
    pub(super) fresh_until: SystemTime,
    pub(super) token: AccessToken,
    pub(super) entry: Arc<Entry>,
}

impl Slot {
    pub(super) fn new(entry: &Arc<Entry>, refresh: bool) -> Self {
        let fresh_until = if refresh {
            entry.refresh_at.min(entry.usable_until)
        } else {
            entry.usable_until
        };
        Self {
            fresh_until,
            token: entry.token.clone(),
            entry: entry.clone(),
        }
    }

    /// Whether the slot holds `entry` (not a newer one).
    pub(super) fn holds(&self, entry: &Arc<Entry>) -> bool {
        Arc::ptr_eq(&self.entry, entry)
    }
}

impl Entry {
    pub(super) fn new(
        token: AccessToken,
        now: SystemTime,
        options: &CacheOptions,
        spread: f64,
    ) -> Self {
        // The margin and the half-life come from the token's whole lifetime, not from
        // what is left of it now: a token inserted again later (from a shared cache, or
        // from a provider with its own cache) must stop being served at the same time as
        // the first time, not at three quarters of whatever remains.
        let expires = token.expires_on();
        let issued = token.issued_on().unwrap_or(now).min(expires);
        let lifetime = expires.duration_since(issued).unwrap_or_default();
        let skew = options.expiry_skew.min(lifetime / 4);
        let usable_until = expires - skew;
        let due = match token.refresh_on() {
            Some(at) if at < usable_until => at,
            _ if lifetime > HALF_LIFE_THRESHOLD => issued + lifetime / 2,
            _ => usable_until,
        };
        let window = due.duration_since(now).unwrap_or_default();
        let jitter = options.jitter.min(window / 10).mul_f64(spread);
        Self {
            token,
            usable_until,
            refresh_at: due - jitter,
            ttl: usable_until.duration_since(now).unwrap_or_default(),
            refreshing: AtomicBool::new(false),
            retry: Mutex::new((SystemTime::UNIX_EPOCH, 0)),
        }
    }

    pub(super) fn usable(&self, now: SystemTime) -> bool {
        now < self.usable_until
    }

    /// Claims the right to refresh now, if it is due and nobody else is refreshing.
    pub(super) fn try_begin_refresh(&self, now: SystemTime) -> bool {
        // Every hit past `refresh_at` asks; while a refresh runs, answer without the lock.
        if now < self.refresh_at || self.refreshing.load(Ordering::Acquire) {
            return false;
        }
        let retry = self.retry.lock().unwrap_or_else(|p| p.into_inner());
        if now < retry.0 {
            return false;
        }
        self.refreshing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    pub(super) fn refresh_failed(&self, now: SystemTime, first_wait: Duration) {
        let mut retry = self.retry.lock().unwrap_or_else(|p| p.into_inner());
        let wait = first_wait
            .saturating_mul(1 << retry.1.min(16))
            .min(MAX_REFRESH_BACKOFF);
        *retry = (now + wait, retry.1.saturating_add(1));
        self.refreshing.store(false, Ordering::Release);
    }
}

impl KeptFor for Entry {
    fn kept_for(&self) -> Duration {
        self.ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::Scopes;

    fn token(now: SystemTime, life: u64, refresh_in: Option<u64>) -> AccessToken {
        let t = AccessToken::new(
            "t",
            now + Duration::from_secs(life),
            "contoso.com".parse().unwrap(),
            Scopes::parse(&["https://vault.azure.net/.default"]).unwrap(),
        );
        match refresh_in {
            Some(r) => t.with_refresh_on(now + Duration::from_secs(r)),
            None => t,
        }
    }

    #[test]
    fn refresh_follows_the_hint_then_half_life_then_skew() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let o = CacheOptions::default().jitter(Duration::ZERO);
        let s = |secs| now + Duration::from_secs(secs);

        let e = Entry::new(token(now, 3600, Some(1800)), now, &o, 0.5);
        assert_eq!((e.refresh_at, e.usable_until), (s(1800), s(3300)));

        let e = Entry::new(token(now, 86_400, None), now, &o, 0.5);
        assert_eq!((e.refresh_at, e.usable_until), (s(43_200), s(86_100)));

        let e = Entry::new(token(now, 3600, None), now, &o, 0.5);
        assert_eq!((e.refresh_at, e.usable_until), (s(3300), s(3300)));

        // A 4 s token keeps 3 s of use: the skew is capped at a quarter of the lifetime.
        let e = Entry::new(token(now, 4, None), now, &o, 0.5);
        assert_eq!(e.usable_until, s(3));
    }

    #[test]
    fn the_margin_comes_from_the_whole_lifetime_however_late_the_token_is_inserted() {
        let issued = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let o = CacheOptions::default().jitter(Duration::ZERO);
        let s = |secs| issued + Duration::from_secs(secs);
        let hour = token(issued, 3600, None).with_issued_on(issued);
        let four = token(issued, 4, None).with_issued_on(issued);
        let day = token(issued, 86_400, None).with_issued_on(issued);
        for later in [0, 2, 3] {
            let now = s(later);
            assert_eq!(Entry::new(hour.clone(), now, &o, 0.5).usable_until, s(3300));
            assert_eq!(Entry::new(four.clone(), now, &o, 0.5).usable_until, s(3));
            assert_eq!(Entry::new(day.clone(), now, &o, 0.5).refresh_at, s(43_200));
        }
        // Inserted with less than the margin left: not usable at all.
        let late = Entry::new(four, s(3), &o, 0.5);
        assert!(!late.usable(s(3)));
    }

    #[test]
    fn jitter_only_moves_refresh_earlier_and_stays_within_a_tenth_of_the_window() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let o = CacheOptions::default();
        for spread in [0.0, 0.3, 0.999] {
            let e = Entry::new(token(now, 3600, Some(1800)), now, &o, spread);
            let early = (now + Duration::from_secs(1800))
                .duration_since(e.refresh_at)
                .unwrap();
            assert!(early <= Duration::from_secs(180), "{early:?}");
        }
    }

    #[test]
    fn failed_refreshes_back_off_exponentially_up_to_five_minutes() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let e = Entry::new(
            token(now, 3600, Some(0)),
            now,
            &CacheOptions::default(),
            0.0,
        );
        assert!(e.try_begin_refresh(now));
        assert!(!e.try_begin_refresh(now), "one refresh at a time");
        e.refresh_failed(now, Duration::from_secs(30));
        assert!(!e.try_begin_refresh(now + Duration::from_secs(29)));
        assert!(e.try_begin_refresh(now + Duration::from_secs(30)));
        for _ in 0..10 {
            e.refresh_failed(now, Duration::from_secs(30));
            e.refreshing.store(true, Ordering::Release);
        }
        e.refresh_failed(now, Duration::from_secs(30));
        assert!(e.try_begin_refresh(now + MAX_REFRESH_BACKOFF));
    }
}

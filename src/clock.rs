//! Time as a dependency: [`Clock`] reads it, [`Sleeper`] waits for it.
//!
//! Every expiry, refresh and retry decision in this crate asks an injected clock, so
//! tests move time with [`ManualClock`] (feature `test-util`) instead of sleeping.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A source of the current time.
pub trait Clock: Debug + Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// A future returned by [`Sleeper::sleep`].
pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Something that can wait: the retry delays of the token client go through it.
pub trait Sleeper: Debug + Send + Sync {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> SleepFuture;
}

/// The system's wall clock. The default everywhere.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one OK usage: the wall clock is read here only
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Sleeps on the tokio timer. The default everywhere.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    #[allow(clippy::disallowed_methods)] // the one place the tokio timer is slept on
    fn sleep(&self, duration: Duration) -> SleepFuture {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A point on tokio's monotonic timer that bounds a whole wait (an attempt, an assertion
/// fetch). Deadlines are not read from the injected [`Clock`]: a stopped test clock must
/// not stop them, and tokio's paused time moves them in tests without waiting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(tokio::time::Instant);

impl Deadline {
    /// `within` from now; a duration too long for the timer means "practically never".
    #[allow(clippy::disallowed_methods)] // the one OK usage: deadlines are set here only
    pub(crate) fn after(within: Duration) -> Self {
        let now = tokio::time::Instant::now();
        let far = Duration::from_secs(30 * 365 * 86_400);
        Self(now.checked_add(within.min(far)).unwrap_or(now))
    }

    /// What is left until the deadline (zero once it has passed).
    #[allow(clippy::disallowed_methods)] // the one OK usage: deadlines are read here only
    pub(crate) fn remaining(&self) -> Duration {
        self.0
            .saturating_duration_since(tokio::time::Instant::now())
    }

    /// `future`'s output if it completes before the deadline, else `None` (and `future`
    /// is dropped).
    pub(crate) async fn run<F: Future>(&self, future: F) -> Option<F::Output> {
        tokio::time::timeout_at(self.0, future).await.ok()
    }
}

pub(crate) type SharedClock = Arc<dyn Clock>;
pub(crate) type SharedSleeper = Arc<dyn Sleeper>;

#[cfg(feature = "test-util")]
pub use manual::ManualClock;

#[cfg(feature = "test-util")]
mod manual {
    use super::*;
    use std::sync::Mutex;

    /// A clock that moves only when told to, and a sleeper that returns at once after
    /// moving it by the duration asked for (recording each one).
    ///
    /// Clones share the same time. Feature `test-util`.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use azure_cross_tenant::{Clock, ManualClock, Sleeper};
    ///
    /// # tokio_test_block_on(async {
    /// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    /// let t0 = clock.now();
    /// clock.advance(Duration::from_secs(60));
    /// clock.sleep(Duration::from_secs(1)).await;
    /// assert_eq!(clock.now(), t0 + Duration::from_secs(61));
    /// assert_eq!(clock.sleeps(), vec![Duration::from_secs(1)]);
    /// # });
    /// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    /// # }
    /// ```
    #[derive(Debug, Clone)]
    pub struct ManualClock {
        inner: Arc<Mutex<Inner>>,
    }

    #[derive(Debug)]
    struct Inner {
        now: SystemTime,
        sleeps: Vec<Duration>,
    }

    impl ManualClock {
        /// A clock stopped at `start`.
        pub fn new(start: SystemTime) -> Self {
            Self {
                inner: Arc::new(Mutex::new(Inner {
                    now: start,
                    sleeps: Vec::new(),
                })),
            }
        }

        /// A clock stopped at the current wall-clock time (so tokens it stamps look real).
        pub fn starting_now() -> Self {
            Self::new(SystemClock.now())
        }

        /// Moves the clock forward by `by`.
        pub fn advance(&self, by: Duration) {
            let mut inner = self.lock();
            inner.now += by;
        }

        /// Sets the clock to `to`.
        ///
        /// # Panics
        /// If `to` is earlier than the clock's current time: time never runs backwards.
        pub fn set(&self, to: SystemTime) {
            let mut inner = self.lock();
            assert!(to >= inner.now, "ManualClock cannot move backwards");
            inner.now = to;
        }

        /// Every duration slept through this clock so far, in order.
        pub fn sleeps(&self) -> Vec<Duration> {
            self.lock().sleeps.clone()
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
            self.inner.lock().unwrap_or_else(|p| p.into_inner())
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> SystemTime {
            self.lock().now
        }
    }

    impl Sleeper for ManualClock {
        fn sleep(&self, duration: Duration) -> SleepFuture {
            let mut inner = self.lock();
            inner.now += duration;
            inner.sleeps.push(duration);
            Box::pin(std::future::ready(()))
        }
    }
}

/// Whole seconds since the Unix epoch (0 before it): the unit of JWT and Entra times.
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

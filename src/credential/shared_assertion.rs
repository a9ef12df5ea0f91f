//! [`SharedAssertion`]: one assertion for every tenant, fetched once at a time, each fetch
//! bounded by its own timeout.
//!
//! A fetch runs as its own task and publishes its result on a watch channel; callers wait
//! on the channel, each bounded by its own attempt's timeout. No lock is held across an
//! await: the state's lock only guards who starts a fetch and where its result is kept.
//! A caller that gives up drops its receiver and nothing else: the fetch goes on for the
//! others (and for the next caller, who finds the assertion kept). A fetch that fails or
//! panics clears itself, so the next caller starts a new one.

use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;
use url::Url;

use super::assertion::{Assertion, AssertionSource};
use crate::authority::{AuthSource, ClientAuth};
use crate::clock::SharedClock;
use crate::error::Error;

/// An assertion is not reused within this margin of its expiry: Entra must still find it
/// valid when the request arrives (AADSTS700024 otherwise).
const REUSE_MARGIN: Duration = Duration::from_secs(5 * 60);

/// What a fetch publishes: nothing yet, then its result.
type Outcome = Option<Result<Assertion, Error>>;

/// Reuses one assertion across tenants, fetching a new one when it nears expiry or Entra
/// said it expired.
pub(super) struct SharedAssertion {
    source: Arc<dyn AssertionSource>,
    state: Arc<Mutex<State>>,
    clock: SharedClock,
    fetch_timeout: Duration,
}

#[derive(Default)]
struct State {
    current: Option<Assertion>,
    /// The fetch in progress, if any: its number, its outcome, and whether it asked the
    /// source for a fresh assertion.
    flight: Option<Flight>,
    fetches: u64,
}

struct Flight {
    number: u64,
    outcome: watch::Receiver<Outcome>,
    fresh: bool,
}

impl fmt::Debug for SharedAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedAssertion")
            .field("source", &self.source)
            .field("fetch_timeout", &self.fetch_timeout)
            .finish_non_exhaustive()
    }
}

impl SharedAssertion {
    pub(super) fn new(
        source: Arc<dyn AssertionSource>,
        clock: SharedClock,
        fetch_timeout: Duration,
    ) -> Self {
        Self {
            source,
            state: Arc::default(),
            clock,
            fetch_timeout,
        }
    }

    pub(super) fn source(&self) -> &dyn AssertionSource {
        &*self.source
    }

    /// A usable assertion: the kept one, or the result of the fetch in progress (started
    /// now if there is none). `fresh`: Entra refused the last one as expired, so neither
    /// it nor a fetch that did not ask the source for a fresh one will do.
    async fn get(&self, fresh: bool) -> Result<Assertion, Error> {
        if !self.source.reusable() {
            return fetch_bounded(&*self.source, self.fetch_timeout, fresh).await;
        }
        let mut flight = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let now = self.clock.now();
            let usable = |a: &Assertion| a.expires_on().is_none_or(|exp| now + REUSE_MARGIN < exp);
            match (&state.current, &state.flight) {
                (Some(a), _) if !fresh && usable(a) => return Ok(a.clone()),
                (_, Some(flight)) if flight.fresh || !fresh => flight.outcome.clone(),
                _ => self.start_fetch(&mut state, fresh),
            }
        };
        match flight.wait_for(Option::is_some).await {
            Ok(outcome) => outcome
                .clone()
                .unwrap_or(Err(Error::Internal("an assertion fetch published nothing"))),
            Err(_) => Err(Error::AssertionUnavailable {
                reason: "the assertion source failed without an answer (it panicked)".into(),
                source: None,
            }),
        }
    }

    /// Starts a fetch as its own task; called with the state locked. It replaces the
    /// flight in progress, if any, as the one whose result is kept.
    fn start_fetch(&self, state: &mut State, fresh: bool) -> watch::Receiver<Outcome> {
        state.fetches += 1;
        let number = state.fetches;
        let (publish, outcome) = watch::channel(None);
        state.flight = Some(Flight {
            number,
            outcome: outcome.clone(),
            fresh,
        });
        tracing::debug!(source = ?self.source, number, fresh, "fetching a federated assertion");
        let (source, timeout) = (self.source.clone(), self.fetch_timeout);
        let landing = Landing {
            state: Arc::downgrade(&self.state),
            number,
        };
        tokio::spawn(async move {
            let result = fetch_bounded(&*source, timeout, fresh).await;
            landing.keep(&result);
            drop(landing);
            // No one may be waiting any more; a good result is kept all the same.
            let _ = publish.send(Some(result));
        });
        outcome
    }
}

/// Where a fetch leaves its result; on drop (a panic included) it clears its flight, so a
/// failed fetch never blocks the next.
struct Landing {
    state: Weak<Mutex<State>>,
    number: u64,
}

impl Landing {
    fn keep(&self, result: &Result<Assertion, Error>) {
        if let (Ok(assertion), Some(state)) = (result, self.state.upgrade()) {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            if state
                .flight
                .as_ref()
                .is_some_and(|f| f.number == self.number)
            {
                state.current = Some(assertion.clone());
            }
        }
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        if let Some(state) = self.state.upgrade() {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            if state
                .flight
                .as_ref()
                .is_some_and(|f| f.number == self.number)
            {
                state.flight = None;
            }
        }
    }
}

/// One fetch from `source` (a fresh assertion when `fresh`), given up after `timeout`.
async fn fetch_bounded(
    source: &dyn AssertionSource,
    timeout: Duration,
    fresh: bool,
) -> Result<Assertion, Error> {
    let fetch = if fresh {
        source.fresh_assertion()
    } else {
        source.assertion()
    };
    crate::clock::Deadline::after(timeout)
        .run(fetch)
        .await
        .unwrap_or(Err(Error::AssertionTimedOut { after: timeout }))
}

#[async_trait::async_trait]
impl AuthSource for SharedAssertion {
    async fn auth(&self, _endpoint: &Url, fresh: bool) -> Result<ClientAuth, Error> {
        let assertion = self.get(fresh).await?;
        Ok(ClientAuth::Assertion(assertion.shared_secret().clone()))
    }
}

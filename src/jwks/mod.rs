//! Signing keys: OpenID metadata (issuer, `jwks_uri`) and the JWKS it points to, cached
//! per (tenant or shared document, token version).
//!
//! Fetch discipline, because anyone can make a validator fetch by sending an unsigned
//! token that names an onboarded tenant:
//! - one fetch in flight per slot, run as a task of its own; every caller that needs it
//!   waits for that one and shares its result, success or failure, and no waiter waits
//!   longer than one fetch's timeout. A caller that gives up (a client that disconnects,
//!   a request timeout in the service) leaves the fetch running: were it run by the
//!   caller, cancelling callers one after another would start a new request each time,
//!   past the refetch interval and the back-off;
//! - a failed fetch is remembered for a back-off (10 s by default, on the injected
//!   clock): callers in that window get the failure without a request;
//! - with keys cached, an unknown `kid` refetches at most once per refetch interval
//!   (5 min by default) after the last successful fetch;
//! - keys older than the maximum age (12 h by default) are fetched again in the
//!   background by the next validation that uses them, which still gets the old ones:
//!   Entra withdraws a compromised key at once and says so only by no longer publishing
//!   it, and no token with a new `kid` need ever come by to trigger a refetch;
//! - a failed fetch keeps the old keys.

mod fetch;
#[cfg(fuzzing)]
pub(crate) use fetch::fuzz_documents;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use url::Url;

use crate::clock::{SharedClock, unix_secs};
use crate::error::ValidationError;

pub(crate) use fetch::{Key, KeySet};

/// Where the keys of a token come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source<'a> {
    /// The tenant's own metadata (`/{tid}/...`).
    Tenant(&'a str),
    /// A multi-tenant document (`/organizations/...` or `/common/...`), whose issuer is a
    /// `{tenantid}` template.
    Shared(&'static str),
}

impl Source<'_> {
    fn segment(&self) -> &str {
        match self {
            Self::Tenant(t) => t,
            Self::Shared(s) => s,
        }
    }
}

/// Timing of fetches; see the module docs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetchPolicy {
    pub(crate) refetch_interval: Duration,
    pub(crate) failure_backoff: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_age: Duration,
}

/// A key found for a token, its set, and the generation of the set (which changes each
/// time the slot's keys are fetched again).
pub(crate) struct Found {
    pub(crate) key: Arc<Key>,
    pub(crate) set: Arc<KeySet>,
    pub(crate) generation: Generation,
}

/// Which fetch of a slot's keys a validation relied on.
#[derive(Clone)]
pub(crate) struct Generation {
    slot: Arc<Slot>,
    at: u64,
}

impl Generation {
    /// Whether the slot still holds the keys of that fetch (no refetch since).
    pub(crate) fn is_current(&self) -> bool {
        self.slot.generation.load(Ordering::Acquire) == self.at
    }

    /// A generation of a slot of its own, and a way to move that slot to its next fetch.
    #[cfg(test)]
    pub(crate) fn for_test() -> (Self, impl Fn()) {
        let slot = Arc::new(Slot {
            segment: "test".into(),
            shared: false,
            v2: false,
            keys: RwLock::new(None),
            generation: AtomicU64::new(1),
            stale_at: AtomicU64::new(0),
            state: Mutex::default(),
        });
        let refetch = {
            let slot = slot.clone();
            move || {
                slot.generation.fetch_add(1, Ordering::AcqRel);
            }
        };
        (Self { slot, at: 1 }, refetch)
    }
}

/// The keys of one (source, version) and the state of fetching them.
struct Slot {
    /// The tenant, or `organizations` / `common`.
    segment: String,
    shared: bool,
    v2: bool,
    keys: RwLock<Option<Arc<KeySet>>>,
    generation: AtomicU64,
    /// When the keys held are due to be fetched again (unix seconds; 0 before the first
    /// fetch), read without a lock on every use of the keys.
    stale_at: AtomicU64,
    state: Mutex<FetchState>,
}

#[derive(Default)]
struct FetchState {
    last_success: Option<SystemTime>,
    failure: Option<(SystemTime, String)>,
    flight: Option<Flight>,
}

/// One fetch, shared by everyone who waits for it: it runs as its own task and publishes
/// its outcome here. A closed channel without an outcome is a fetch that died (a panic,
/// or its runtime shut down): the next caller starts another.
type Flight = watch::Receiver<Option<Result<(), String>>>;

/// What a caller does once it has looked at the slot's state.
enum Next {
    Wait(Flight),
    Refuse(ValidationError),
}

/// Keys of every tenant (and shared document) validated so far, for one authority.
pub(crate) struct JwksCache {
    fetcher: fetch::Fetcher,
    clock: SharedClock,
    policy: FetchPolicy,
    slots: RwLock<HashMap<(String, bool), Arc<Slot>>>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("authority", &self.fetcher.authority.as_str())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    pub(crate) fn new(
        http: reqwest::Client,
        authority: Url,
        clock: SharedClock,
        policy: FetchPolicy,
    ) -> Self {
        Self {
            fetcher: fetch::Fetcher { http, authority },
            clock,
            policy,
            slots: RwLock::new(HashMap::new()),
        }
    }

    /// The key `kid` of `source` for v1 or v2 tokens, fetching metadata and keys when
    /// the source is new or the `kid` unknown (within the limits of the module docs).
    pub(crate) async fn key(
        &self,
        source: Source<'_>,
        v2: bool,
        kid: &str,
    ) -> Result<Found, ValidationError> {
        let slot = self.slot(source, v2);
        if let Some(found) = lookup(&slot, kid) {
            self.refresh_if_stale(&slot);
            return Ok(found);
        }
        let flight = match self.next_step(&slot, source, kid) {
            Next::Wait(flight) => flight,
            Next::Refuse(err) => return Err(err),
        };
        let outcome = self.wait_for(flight).await;
        if let Some(found) = lookup(&slot, kid) {
            return Ok(found);
        }
        Err(match outcome {
            Ok(()) => unknown_key(kid),
            Err(reason) => unavailable(source, reason),
        })
    }

    /// A validation answered from keys of `generation` (the validated-token cache): if
    /// they are due to be fetched again, a background fetch starts.
    pub(crate) fn used(&self, generation: &Generation) {
        self.refresh_if_stale(&generation.slot);
    }

    /// Starts a background fetch of `slot`'s keys if they are older than the maximum
    /// age, none is running and no failure is within its back-off. Never waits.
    fn refresh_if_stale(&self, slot: &Arc<Slot>) {
        let now = self.clock.now();
        if unix_secs(now) < slot.stale_at.load(Ordering::Relaxed) {
            return;
        }
        let mut state = slot.state.lock().unwrap_or_else(|p| p.into_inner());
        if state
            .flight
            .as_ref()
            .is_some_and(|f| f.has_changed().is_ok())
            || state
                .last_success
                .is_none_or(|at| within(now, at, self.policy.max_age))
            || state
                .failure
                .as_ref()
                .is_some_and(|(at, _)| within(now, *at, self.policy.failure_backoff))
        {
            return;
        }
        tracing::debug!(
            source = slot.segment,
            v2 = slot.v2,
            "signing keys past their maximum age; fetching them again"
        );
        let _ = self.start(&mut state, slot);
    }

    fn slot(&self, source: Source<'_>, v2: bool) -> Arc<Slot> {
        let segment = source.segment();
        let key = (segment.to_owned(), v2);
        if let Some(slot) = self
            .slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return slot.clone();
        }
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Slot {
                    segment: segment.to_owned(),
                    shared: matches!(source, Source::Shared(_)),
                    v2,
                    keys: RwLock::default(),
                    generation: AtomicU64::new(0),
                    stale_at: AtomicU64::new(0),
                    state: Mutex::default(),
                })
            })
            .clone()
    }

    /// Joins the fetch in flight, starts one, or refuses without a request (keys fetched
    /// recently, or a failure within the back-off).
    fn next_step(&self, slot: &Arc<Slot>, source: Source<'_>, kid: &str) -> Next {
        let mut state = slot.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(flight) = state.flight.as_ref().filter(|f| f.has_changed().is_ok()) {
            return Next::Wait(flight.clone());
        }
        let now = self.clock.now();
        let within = |at: SystemTime, window: Duration| within(now, at, window);
        let have_keys = slot
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if have_keys
            && state
                .last_success
                .is_some_and(|at| within(at, self.policy.refetch_interval))
        {
            return Next::Refuse(unknown_key(kid));
        }
        if let Some((at, reason)) = &state.failure
            && within(*at, self.policy.failure_backoff)
        {
            return Next::Refuse(unavailable(
                source,
                format!(
                    "{reason} (not retried within {:?} of a failure)",
                    self.policy.failure_backoff
                ),
            ));
        }
        match self.start(&mut state, slot) {
            Some(flight) => Next::Wait(flight),
            None => Next::Refuse(unavailable(
                source,
                "no tokio runtime to fetch keys on".into(),
            )),
        }
    }

    /// Starts a fetch of `slot`'s keys as a task of its own (called with its state
    /// locked); `None` without a tokio runtime to run it on.
    fn start(&self, state: &mut FetchState, slot: &Arc<Slot>) -> Option<Flight> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (publish, flight) = watch::channel(None);
        state.flight = Some(flight.clone());
        let run = Run {
            fetcher: self.fetcher.clone(),
            clock: self.clock.clone(),
            policy: self.policy,
            slot: slot.clone(),
            flight: flight.clone(),
        };
        runtime.spawn(async move {
            let outcome = run.fetch_and_record().await;
            // Nobody may be waiting any more; the keys are kept all the same.
            let _ = publish.send(Some(outcome));
        });
        Some(flight)
    }

    /// Waits for `flight`, at most a little over one fetch's timeout: the fetch records
    /// its failure (and its back-off) before a waiter gives up on it.
    async fn wait_for(&self, mut flight: Flight) -> Result<(), String> {
        let budget = self.policy.timeout + Duration::from_millis(500);
        match tokio::time::timeout(budget, flight.wait_for(Option::is_some)).await {
            Ok(Ok(outcome)) => (*outcome)
                .clone()
                .unwrap_or_else(|| Err("the key fetch published nothing".into())),
            Ok(Err(_)) => Err("the key fetch ended without a result".into()),
            Err(_) => Err(format!(
                "no answer within {} ms",
                self.policy.timeout.as_millis()
            )),
        }
    }
}

/// One fetch of a slot's keys, owned by the task that runs it.
struct Run {
    fetcher: fetch::Fetcher,
    clock: SharedClock,
    policy: FetchPolicy,
    slot: Arc<Slot>,
    /// This fetch's channel, to clear it from the slot (and only it) when done.
    flight: Flight,
}

impl Run {
    /// The fetch itself, then its outcome recorded in the slot for everyone.
    async fn fetch_and_record(self) -> Result<(), String> {
        let slot = &self.slot;
        let (segment, v2, timeout) = (slot.segment.as_str(), slot.v2, self.policy.timeout);
        let fetch = self.fetcher.fetch(segment, v2, slot.shared);
        let result = match tokio::time::timeout(timeout, fetch).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        };
        let now = self.clock.now();
        let mut state = slot.state.lock().unwrap_or_else(|p| p.into_inner());
        if state
            .flight
            .as_ref()
            .is_some_and(|f| f.same_channel(&self.flight))
        {
            state.flight = None;
        }
        match result {
            Ok(set) => {
                tracing::debug!(
                    source = segment,
                    v2,
                    keys = set.keys.len(),
                    "fetched signing keys"
                );
                // The generation moves under the same lock as the keys, so a reader never
                // pairs new keys with the old generation's number.
                let mut keys = slot.keys.write().unwrap_or_else(|p| p.into_inner());
                *keys = Some(Arc::new(set));
                slot.generation.fetch_add(1, Ordering::AcqRel);
                drop(keys);
                let stale_at = unix_secs(now).saturating_add(self.policy.max_age.as_secs());
                slot.stale_at.store(stale_at, Ordering::Relaxed);
                state.last_success = Some(now);
                state.failure = None;
                Ok(())
            }
            Err(reason) => {
                tracing::warn!(source = segment, v2, reason = %reason, "could not fetch signing keys; keeping the old ones");
                state.failure = Some((now, reason.clone()));
                Err(reason)
            }
        }
    }
}

/// Whether `at` is less than `window` before `now` (a clock that went back counts as
/// within).
fn within(now: SystemTime, at: SystemTime, window: Duration) -> bool {
    now.duration_since(at).unwrap_or_default() < window
}

fn lookup(slot: &Arc<Slot>, kid: &str) -> Option<Found> {
    let keys = slot.keys.read().unwrap_or_else(|p| p.into_inner());
    let set = keys.as_ref()?;
    let key = set.keys.get(kid)?.clone();
    Some(Found {
        key,
        set: set.clone(),
        generation: Generation {
            slot: slot.clone(),
            at: slot.generation.load(Ordering::Acquire),
        },
    })
}

fn unknown_key(kid: &str) -> ValidationError {
    ValidationError::UnknownKey {
        kid: crate::error::echo(kid),
    }
}

fn unavailable(source: Source<'_>, reason: String) -> ValidationError {
    ValidationError::KeysUnavailable {
        tenant: source.segment().to_owned(),
        reason,
    }
}

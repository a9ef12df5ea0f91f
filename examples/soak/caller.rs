//! The callers: each picks a replica and a (tenant, scope), times `get_token`, and checks
//! the token it got; and the credential that counts what the replicas ask Entra.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use azure_cross_tenant::{
    AccessToken, Cached, ClientSecret, Clock, Error, Expectations, SystemClock,
    TenantCredentialProvider, TenantId, TokenValidator, ValidationError,
};

use crate::tally::{Kind, Tally};

/// The resources callers ask for, by scope index.
pub const RESOURCES: [&str; 3] = [
    "https://vault.azure.net",
    "https://storage.azure.com",
    "https://management.azure.com",
];

/// A credential that counts what it asks Entra, per tenant and phase.
pub struct Counting {
    pub inner: ClientSecret,
    pub index: Arc<HashMap<TenantId, usize>>,
    pub tally: Arc<Tally>,
}

impl std::fmt::Debug for Counting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counting")
            .field("inner", &self.inner)
            .finish()
    }
}

#[async_trait::async_trait]
impl TenantCredentialProvider for Counting {
    fn client_id(&self) -> &str {
        self.inner.client_id()
    }

    fn authority_host(&self) -> &url::Url {
        self.inner.authority_host()
    }

    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        if let Some(&i) = self.index.get(tenant) {
            self.tally.note_request(i);
        }
        self.inner.get_token(tenant, scopes).await
    }
}

pub type Replica = Cached<Counting>;

pub fn now() -> SystemTime {
    SystemClock::default().now()
}

/// xorshift64*: callers need cheap, independent, reproducible choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Log-uniform in `0..n`: a few tenants are busy, most are quiet, all are asked.
    fn skewed(&mut self, n: usize) -> usize {
        (((n as f64).ln() * self.unit()).exp() as usize)
            .saturating_sub(1)
            .min(n - 1)
    }
}

/// Whether `error` for tenant `i` is one the schedule causes.
fn scheduled(error: &Error, i: usize) -> bool {
    match (Kind::of(i), error) {
        (Kind::Throttled, Error::Throttled { .. }) => true,
        (Kind::Revoked, Error::NotConsented { .. }) => true,
        (Kind::ServerErrors, e) => e.is_retryable() || matches!(e, Error::Authority(_)),
        _ => false,
    }
}

/// What the cache promises about a token it hands out at `asked` (the time before the
/// call): at least the expiry margin of its whole lifetime left. A token from `Cached`
/// always knows when it was issued; one that does not counts as a violation too.
fn inside_margin(token: &AccessToken, asked: SystemTime) -> bool {
    let Some(issued) = token.issued_on() else {
        return true;
    };
    let lifetime = token
        .expires_on()
        .duration_since(issued)
        .unwrap_or_default();
    let margin = Duration::from_secs(5 * 60).min(lifetime / 4);
    token.expires_on().duration_since(asked).unwrap_or_default() <= margin
}

/// Calls `get_token`, timing it, and telling a hit (ready at the first poll: no I/O)
/// from a miss.
async fn timed_get(
    replica: &Replica,
    tenant: &TenantId,
    scope: &str,
    tally: &Tally,
) -> Result<AccessToken, Error> {
    let scopes = [scope];
    let start = now();
    let mut call = std::pin::pin!(replica.get_token(tenant, &scopes));
    let first = call.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    let (result, hit) = match first {
        Poll::Ready(r) => (r, true),
        Poll::Pending => (call.await, false),
    };
    let took = now().duration_since(start).unwrap_or_default();
    if hit { &tally.hits } else { &tally.misses }.record(took);
    result
}

pub struct Caller {
    pub replicas: Arc<Vec<Replica>>,
    pub tenants: Arc<Vec<TenantId>>,
    pub scopes: Vec<String>,
    pub validator: Arc<TokenValidator>,
    pub client_id: String,
    pub tally: Arc<Tally>,
    pub stop: Arc<AtomicBool>,
}

impl Caller {
    pub async fn run(self, seed: u64) {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        while !self.stop.load(Ordering::Relaxed) {
            let r = &self.replicas[rng.next() as usize % self.replicas.len()];
            let (i, s) = (
                rng.skewed(self.tenants.len()),
                rng.next() as usize % self.scopes.len(),
            );
            self.tally.note_touched(i, s);
            self.one(r, i, s).await;
            // Hits complete without suspending: let the mock and Redis run.
            tokio::task::yield_now().await;
        }
    }

    async fn one(&self, replica: &Replica, i: usize, s: usize) {
        let tally = &self.tally;
        let tenant = &self.tenants[i];
        tally.calls.fetch_add(1, Ordering::Relaxed);
        let asked = now();
        let token = match timed_get(replica, tenant, &self.scopes[s], tally).await {
            Ok(t) => t,
            Err(e) if scheduled(&e, i) => {
                tally.scheduled_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => return tally.unexpected(format!("tenant #{i} ({:?}): {e}", Kind::of(i))),
        };
        let expect = Expectations::new(tenant.clone())
            .audience(RESOURCES[s])
            .app_id(self.client_id.clone());
        match self.validator.validate(token.secret(), &expect).await {
            Ok(claims) => {
                let now_s = now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                if claims.exp.is_none_or(|exp| exp <= now_s) || token.is_expired_at(now()) {
                    tally.expired.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(ValidationError::WrongTenant { .. } | ValidationError::WrongAudience { .. }) => {
                tally
                    .wrong_tenant_or_audience
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(ValidationError::Expired { .. }) => {
                tally.expired.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tally.invalid.fetch_add(1, Ordering::Relaxed);
                tally.unexpected(format!("tenant #{i}: token did not validate: {e}"));
            }
        }
        if inside_margin(&token, asked) {
            tally.inside_margin.fetch_add(1, Ordering::Relaxed);
        }
        tally.checked.fetch_add(1, Ordering::Relaxed);
    }
}

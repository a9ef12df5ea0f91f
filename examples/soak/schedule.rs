//! The fault schedule: each phase starts at a fraction of the run.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use azure_cross_tenant::{Sleeper, TenantId, TokioSleeper};
use mock_entra::{MockApp, MockEntra, MockFault};

use crate::redis::Redis;
use crate::tally::{Kind, Tally};

/// (starts at this fraction of the run, name).
pub const PHASES: [(f64, &str); 10] = [
    (0.00, "warm-up and steady state"),
    (0.10, "429 bursts"),
    (0.20, "5xx bursts"),
    (0.30, "latency spike (1.5 s per request)"),
    (0.35, "signing key rotated"),
    (0.45, "consent revoked (and tenants invalidated)"),
    (0.60, "consent re-granted"),
    (0.70, "Redis restart (3 s down)"),
    (0.80, "429 bursts again"),
    (0.90, "steady state"),
];

pub struct World<'a> {
    pub entra: &'a MockEntra,
    pub app: &'a MockApp,
    pub tenants: &'a [TenantId],
    pub redis: &'a mut Redis,
    pub tally: &'a Arc<Tally>,
    /// Called with every revoked tenant (a SaaS invalidates a tenant it hears was
    /// offboarded).
    pub on_revoke: &'a (dyn Fn(TenantId) -> tokio::task::JoinHandle<()> + Sync),
}

fn of_kind(tenants: &[TenantId], kind: Kind) -> impl Iterator<Item = &TenantId> {
    tenants
        .iter()
        .enumerate()
        .filter(move |(i, _)| Kind::of(*i) == kind)
        .map(|(_, t)| t)
}

/// Runs the schedule over `total`, then returns.
pub async fn run(w: World<'_>, total: Duration) {
    let mut elapsed = Duration::ZERO;
    for (i, (at, _)) in PHASES.iter().enumerate() {
        let start = total.mul_f64(*at);
        TokioSleeper::default()
            .sleep(start.saturating_sub(elapsed))
            .await;
        elapsed = elapsed.max(start);
        w.tally.phase.store(i, Ordering::Relaxed);
        match i {
            1 | 8 => {
                for t in of_kind(w.tenants, Kind::Throttled) {
                    let retry_after = Some(Duration::from_secs(10));
                    w.entra
                        .inject_fault(t, MockFault::Throttle { retry_after }, 3);
                }
            }
            2 => {
                for t in of_kind(w.tenants, Kind::ServerErrors) {
                    w.entra
                        .inject_fault(t, MockFault::ServerError { status: 503 }, 2);
                }
            }
            3 => w.entra.set_latency(Duration::from_millis(1500)),
            4 => {
                w.entra.set_latency(Duration::ZERO);
                w.entra.rotate_keys();
            }
            5 => {
                let mut done = Vec::new();
                for t in of_kind(w.tenants, Kind::Revoked) {
                    w.entra.revoke_consent(t, w.app);
                    done.push((w.on_revoke)(t.clone()));
                }
                for d in done {
                    let _ = d.await;
                }
            }
            6 => {
                for t in of_kind(w.tenants, Kind::Revoked) {
                    w.entra.consent(t, w.app);
                }
            }
            7 => {
                let down = Duration::from_secs(3);
                w.redis.restart_one(down).await;
                elapsed += down;
            }
            _ => {}
        }
    }
    TokioSleeper::default()
        .sleep(total.saturating_sub(elapsed))
        .await;
}

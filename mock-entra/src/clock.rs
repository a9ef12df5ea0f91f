//! The mock's own clock (real time plus an offset that only moves forward, so other
//! languages can test expiry without sleeping) and Entra's date formats.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use azure_cross_tenant::Clock;

/// The clock a mock stamps tokens with: the system's, its own offset clock, or a test's
/// (for example the library's `ManualClock`, shared with the code under test).
pub(crate) type SharedClock = Arc<dyn Clock>;

/// The wall clock: certificate validity and the offset clock's base. The one OK usage of
/// real time in the mock besides real latency (server.rs).
#[allow(clippy::disallowed_methods)]
pub(crate) fn wall_clock() -> SystemTime {
    SystemTime::now()
}

/// Whole seconds since the Unix epoch (0 before it), the unit of JWT and Entra times.
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Real time plus an offset that `advance` moves forward.
#[derive(Debug, Default)]
pub(crate) struct OffsetClock {
    offset: Mutex<Duration>,
}

impl OffsetClock {
    pub(crate) fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(|p| p.into_inner());
        *offset = offset.saturating_add(by);
    }

    pub(crate) fn reset(&self) {
        *self.offset.lock().unwrap_or_else(|p| p.into_inner()) = Duration::ZERO;
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> SystemTime {
        wall_clock() + *self.offset.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The civil date (year, month, day) of `t` in UTC (Howard Hinnant's algorithm).
pub(crate) fn civil_date(t: SystemTime) -> (i32, u8, u8) {
    let days = (unix_secs(t) / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        i32::try_from(y).unwrap_or(9999),
        u8::try_from(m).unwrap_or(1),
        u8::try_from(d).unwrap_or(1),
    )
}

/// Entra's timestamp format: `2021-05-16 05:21:44Z`.
pub(crate) fn entra_timestamp(t: SystemTime) -> String {
    let (y, m, d) = civil_date(t);
    let rem = unix_secs(t) % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_look_like_entras() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_621_142_504);
        assert_eq!(entra_timestamp(t), "2021-05-16 05:21:44Z");
    }

    #[test]
    fn the_offset_clock_only_moves_forward_by_what_it_is_told() {
        let clock = OffsetClock::default();
        let before = clock.now();
        clock.advance(Duration::from_secs(3600));
        let after = clock.now();
        assert!(after.duration_since(before).unwrap() >= Duration::from_secs(3600));
        clock.reset();
        assert!(clock.now() < after);
    }
}

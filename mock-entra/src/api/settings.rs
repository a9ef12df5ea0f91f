//! Token lifetimes, answer shapes, latency, scripted faults, the clock, and reset.

use std::time::Duration;

use crate::error::or_panic;
use crate::{MockEntra, MockFault};
use azure_cross_tenant::TenantId;

impl MockEntra {
    /// Lifetime of issued tokens (default 3599 s).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.lock().settings.token_lifetime = lifetime;
    }

    /// Adds `refresh_in` to token answers (default: absent).
    pub fn set_refresh_in(&self, refresh_in: Option<Duration>) {
        self.lock().settings.refresh_in = refresh_in;
    }

    /// Sends `expires_in` as a numeric string, as some Entra endpoints do.
    pub fn set_expires_in_as_string(&self, as_string: bool) {
        self.lock().settings.expires_in_as_string = as_string;
    }

    /// Delays every token answer by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().settings.latency = latency;
    }

    /// Serves `fault` to the next `times` token requests for `tenant`.
    ///
    /// # Panics
    /// If the tenant is unknown.
    pub fn inject_fault(&self, tenant: &TenantId, fault: MockFault, times: u32) {
        let mut dir = self.lock();
        let tid = or_panic(dir.tenant(tenant.as_str()).map(|t| t.id.clone()));
        dir.faults.push(Some(tid), fault, times);
    }

    /// Serves `fault` to the next `times` token requests, whatever the tenant.
    pub fn inject_fault_everywhere(&self, fault: MockFault, times: u32) {
        self.lock().faults.push(None, fault, times);
    }

    /// Drops every fault still waiting to be served.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Moves the mock's own clock forward (tokens, secret expiry, key rollover).
    ///
    /// # Panics
    /// If the mock runs on a clock given to [`builder().clock(..)`](crate::MockEntraBuilder::clock):
    /// move that clock instead.
    pub fn advance_clock(&self, by: Duration) {
        match &self.shared.own_clock {
            Some(clock) => clock.advance(by),
            None => panic!(
                "MockEntra: this mock runs on the clock given to builder().clock(..); advance that clock"
            ),
        }
    }

    /// Back to the state right after start: the directory empties (the startup scenario,
    /// if any, is applied again with the same ids and secrets), faults, settings, the
    /// request log and the clock's offset are cleared, and the initial keys sign again.
    pub fn reset(&self) {
        or_panic(self.reset_to_startup());
    }
}

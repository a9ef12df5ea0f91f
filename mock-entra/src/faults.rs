//! Scripted misbehaviour of the token endpoints: [`MockFault`], its JSON form for the
//! scenario file and control API, and the queues that serve each fault N times.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A scripted misbehaviour of the token endpoint, served instead of (or around) the normal answer.
///
/// ```
/// use std::time::Duration;
/// use mock_entra::{MockEntra, MockFault};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let entra = MockEntra::start().await;
/// let customer = entra.add_tenant("customer.example");
/// // The next two token requests for this customer get 429 with `Retry-After: 5`.
/// entra.inject_fault(&customer, MockFault::Throttle { retry_after: Some(Duration::from_secs(5)) }, 2);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MockFault {
    /// HTTP 429 with AADSTS90055 and, if given, `Retry-After` in seconds.
    Throttle {
        /// The `Retry-After` header.
        retry_after: Option<Duration>,
    },
    /// A 5xx with Entra's `temporarily_unavailable` JSON (AADSTS50033).
    ServerError {
        /// The status, e.g. 500 or 503.
        status: u16,
    },
    /// Any Entra error answer (for codes the mock does not model by itself).
    Error {
        /// HTTP status.
        status: u16,
        /// OAuth `error`.
        error: String,
        /// The AADSTS code.
        code: u32,
        /// The message after `AADSTS{code}: `.
        message: String,
    },
    /// The normal answer, after this delay.
    Latency(Duration),
    /// A raw body with this status.
    Body {
        /// HTTP status.
        status: u16,
        /// The body.
        body: Vec<u8>,
    },
    /// A redirect (e.g. 307 or 302) to `location`: a credential must never follow it
    /// with its secret or assertion.
    Redirect {
        /// HTTP status, 3xx.
        status: u16,
        /// The `Location` header.
        location: String,
    },
    /// 200 with an empty body.
    Empty,
    /// 200 with an HTML page (a proxy's error page).
    NotJson,
    /// 200 with JSON cut off in the middle.
    Truncated,
    /// 200 with fields of the wrong JSON types.
    WrongTypes,
    /// 200 with a body over 2 MiB.
    Oversized,
}

impl MockFault {
    /// An Entra error answer with `code`.
    pub fn entra_error(status: u16, error: &str, code: u32, message: &str) -> Self {
        Self::Error {
            status,
            error: error.to_owned(),
            code,
            message: message.to_owned(),
        }
    }
}

/// A fault as JSON: `{"kind": "throttle", "retry_after_secs": 5}` and so on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum FaultSpec {
    Throttle {
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    ServerError {
        #[serde(default = "default_5xx")]
        status: u16,
    },
    Error {
        status: u16,
        error: String,
        code: u32,
        message: String,
    },
    Latency {
        millis: u64,
    },
    Body {
        status: u16,
        body: String,
    },
    Redirect {
        status: u16,
        location: String,
    },
    Empty,
    NotJson,
    Truncated,
    WrongTypes,
    Oversized,
}

fn default_5xx() -> u16 {
    503
}

impl FaultSpec {
    pub(crate) fn into_fault(self) -> Result<MockFault, String> {
        let status_ok = |s: u16| {
            (100..=599)
                .contains(&s)
                .then_some(s)
                .ok_or_else(|| format!("status {s} is not an HTTP status"))
        };
        Ok(match self {
            Self::Throttle { retry_after_secs } => MockFault::Throttle {
                retry_after: retry_after_secs.map(Duration::from_secs),
            },
            Self::ServerError { status } if (500..=599).contains(&status) => {
                MockFault::ServerError { status }
            }
            Self::ServerError { status } => {
                return Err(format!("server_error needs a 5xx status, not {status}"));
            }
            Self::Error {
                status,
                error,
                code,
                message,
            } => MockFault::Error {
                status: status_ok(status)?,
                error,
                code,
                message,
            },
            Self::Latency { millis } if millis <= 600_000 => {
                MockFault::Latency(Duration::from_millis(millis))
            }
            Self::Latency { .. } => return Err("latency is capped at 600000 ms".into()),
            Self::Body { status, body } => MockFault::Body {
                status: status_ok(status)?,
                body: body.into_bytes(),
            },
            Self::Redirect { status, location } if (300..=399).contains(&status) => {
                MockFault::Redirect { status, location }
            }
            Self::Redirect { status, .. } => {
                return Err(format!("redirect needs a 3xx status, not {status}"));
            }
            Self::Empty => MockFault::Empty,
            Self::NotJson => MockFault::NotJson,
            Self::Truncated => MockFault::Truncated,
            Self::WrongTypes => MockFault::WrongTypes,
            Self::Oversized => MockFault::Oversized,
        })
    }
}

/// Faults waiting to be served, per tenant and for every tenant, in the order they were
/// added. Taking one is O(1) however many tenants have faults.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    per_tenant: HashMap<String, VecDeque<Scheduled>>,
    everywhere: VecDeque<Scheduled>,
    next_seq: u64,
}

#[derive(Debug)]
struct Scheduled {
    seq: u64,
    fault: MockFault,
    remaining: u32,
}

impl FaultQueue {
    /// Serves `fault` to the next `times` token requests for `tenant` (a GUID), or for
    /// every tenant when `None`.
    pub(crate) fn push(&mut self, tenant: Option<String>, fault: MockFault, times: u32) {
        if times == 0 {
            return;
        }
        let entry = Scheduled {
            seq: self.next_seq,
            fault,
            remaining: times,
        };
        self.next_seq += 1;
        match tenant {
            Some(t) => self.per_tenant.entry(t).or_default().push_back(entry),
            None => self.everywhere.push_back(entry),
        }
    }

    /// The next fault for `tenant`, used up by one.
    pub(crate) fn take(&mut self, tenant: &str) -> Option<MockFault> {
        let own = self
            .per_tenant
            .get(tenant)
            .and_then(|q| q.front())
            .map(|s| s.seq);
        let global = self.everywhere.front().map(|s| s.seq);
        let from_own = match (own, global) {
            (Some(o), Some(g)) => o < g,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let queue = if from_own {
            self.per_tenant.get_mut(tenant)?
        } else {
            &mut self.everywhere
        };
        let front = queue.front_mut()?;
        front.remaining -= 1;
        let fault = front.fault.clone();
        if front.remaining == 0 {
            queue.pop_front();
            if from_own && queue.is_empty() {
                self.per_tenant.remove(tenant);
            }
        }
        Some(fault)
    }

    pub(crate) fn clear(&mut self) {
        self.per_tenant.clear();
        self.everywhere.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_served_in_the_order_they_were_added_and_used_up() {
        let mut q = FaultQueue::default();
        q.push(None, MockFault::Empty, 1);
        q.push(Some("a".into()), MockFault::NotJson, 2);
        assert_eq!(q.take("a"), Some(MockFault::Empty));
        assert_eq!(q.take("b"), None);
        assert_eq!(q.take("a"), Some(MockFault::NotJson));
        assert_eq!(q.take("a"), Some(MockFault::NotJson));
        assert_eq!(q.take("a"), None);
    }

    #[test]
    fn fault_json_is_checked() {
        let spec: FaultSpec =
            serde_json::from_str(r#"{"kind":"server_error","status":404}"#).unwrap();
        assert!(spec.into_fault().unwrap_err().contains("5xx"));
        let bad = serde_json::from_str::<FaultSpec>(r#"{"kind":"throttle","retry":1}"#);
        assert!(bad.unwrap_err().to_string().contains("retry"));
    }
}

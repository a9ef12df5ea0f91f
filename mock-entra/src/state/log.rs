//! The request log: the last N requests (form fields and query without secrets) and
//! counters per tenant and per endpoint. Memory stays bounded however many requests come.

use std::collections::{HashMap, VecDeque};

use crate::{MockEndpoint, RecordedRequest};

/// How many requests the log keeps by default; counters count all of them.
pub(crate) const DEFAULT_LIMIT: usize = 10_000;

/// Form fields and query parameters whose values never enter the log.
pub(crate) const SECRET_FIELDS: &[&str] = &[
    "client_secret",
    "client_assertion",
    "assertion",
    "code",
    "code_verifier",
    "refresh_token",
    "password",
    "device_code",
    "id_token_hint",
];

/// What the log shows instead of a secret.
pub(crate) const REDACTED: &str = "<redacted>";

/// Copies of `pairs` with secret values replaced.
pub(crate) fn redact(pairs: &[(String, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| {
            let secret = SECRET_FIELDS.iter().any(|s| s.eq_ignore_ascii_case(k));
            (k.clone(), if secret { REDACTED.into() } else { v.clone() })
        })
        .collect()
}

#[derive(Debug)]
pub(crate) struct RequestLog {
    entries: VecDeque<RecordedRequest>,
    limit: usize,
    /// Token requests per tenant GUID (or the lower-cased path segment of unknown tenants).
    token_requests: HashMap<String, usize>,
    per_endpoint: HashMap<MockEndpoint, usize>,
}

impl RequestLog {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            limit,
            token_requests: HashMap::new(),
            per_endpoint: HashMap::new(),
        }
    }

    pub(crate) fn push(&mut self, entry: RecordedRequest) {
        *self.per_endpoint.entry(entry.endpoint).or_default() += 1;
        if entry.endpoint.is_token() {
            let key = entry
                .tenant_id
                .clone()
                .unwrap_or_else(|| entry.tenant.to_ascii_lowercase());
            *self.token_requests.entry(key).or_default() += 1;
        }
        if self.limit == 0 {
            return;
        }
        if self.entries.len() == self.limit {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = &RecordedRequest> {
        self.entries.iter()
    }

    /// Token requests for a tenant GUID or unknown segment (lower case).
    pub(crate) fn token_requests_for(&self, key: &str) -> usize {
        self.token_requests.get(key).copied().unwrap_or(0)
    }

    pub(crate) fn count(&self, endpoint: MockEndpoint) -> usize {
        self.per_endpoint.get(&endpoint).copied().unwrap_or(0)
    }

    pub(crate) fn token_requests(&self) -> usize {
        self.count(MockEndpoint::Token) + self.count(MockEndpoint::TokenV1)
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.token_requests.clear();
        self.per_endpoint.clear();
    }
}

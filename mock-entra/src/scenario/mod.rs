//! Scenarios: a JSON document that sets the mock up (tenants, apps, credentials, consents,
//! users, managed identities, faults, settings), applied at start, by `POST /_mock/scenario`
//! or [`MockEntra::apply_scenario`]. Applying one returns the *setup*: every id and secret
//! it created, by the names the document gave them. The ready line of `mock-entra` prints it.

pub(crate) mod apply;
pub(crate) mod spec;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

pub(crate) use apply::apply;
use spec::Scenario;

use crate::{MockEntra, MockError};

/// Names a scenario gave, for later documents and control calls to refer to.
#[derive(Debug, Default)]
pub(crate) struct Names {
    pub(crate) tenants: BTreeMap<String, String>,
    pub(crate) apps: BTreeMap<String, String>,
    pub(crate) identities: BTreeMap<String, String>,
    pub(crate) users: BTreeMap<String, String>,
    /// The setup of every document applied so far, merged.
    pub(crate) setup: Map<String, Value>,
}

impl Names {
    pub(crate) fn tenant<'a>(&'a self, r: &'a str) -> &'a str {
        self.tenants.get(r).map(String::as_str).unwrap_or(r)
    }
    pub(crate) fn app<'a>(&'a self, r: &'a str) -> &'a str {
        self.apps.get(r).map(String::as_str).unwrap_or(r)
    }
    pub(crate) fn identity<'a>(&'a self, r: &'a str) -> &'a str {
        self.identities.get(r).map(String::as_str).unwrap_or(r)
    }
    pub(crate) fn user<'a>(&'a self, r: &'a str) -> &'a str {
        self.users.get(r).map(String::as_str).unwrap_or(r)
    }

    /// Merges one document's setup into the running one.
    pub(crate) fn merge(&mut self, setup: &Value) {
        let Some(setup) = setup.as_object() else {
            return;
        };
        for (section, value) in setup {
            match (self.setup.get_mut(section), value) {
                (Some(Value::Object(have)), Value::Object(new)) => {
                    have.extend(new.iter().map(|(k, v)| (k.clone(), v.clone())))
                }
                (Some(Value::Array(have)), Value::Array(new)) => have.extend(new.iter().cloned()),
                _ => {
                    self.setup.insert(section.clone(), value.clone());
                }
            }
        }
    }
}

/// Parses a scenario document, naming the first unknown or mistyped field.
pub(crate) fn parse(document: &Value) -> Result<Scenario, MockError> {
    serde_json::from_value(document.clone())
        .map_err(|e| MockError::invalid(format!("scenario: {e}")))
}

impl MockEntra {
    /// Applies a scenario document (the format of `mock-entra --config`, described in
    /// `mock-entra/README.md`) and returns its setup: the ids, secrets and certificates it
    /// created, by name. Steps before a failing one stay applied.
    ///
    /// ```
    /// use mock_entra::MockEntra;
    /// use serde_json::json;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let entra = MockEntra::start().await;
    /// let setup = entra.apply_scenario(&json!({
    ///     "tenants": {"home": {"domains": ["provider.example"]}, "customer": {"domains": ["customer.example"]}},
    ///     "apps": {"saas": {"home": "home", "secrets": {"main": {}}}},
    ///     "consents": [{"tenant": "customer", "app": "saas"}],
    /// }))?;
    /// let secret = setup["apps"]["saas"]["secrets"]["main"].as_str().unwrap();
    /// assert!(secret.starts_with("mock~"));
    /// # Ok(()) }
    /// ```
    pub fn apply_scenario(&self, document: &Value) -> Result<Value, MockError> {
        let applied = apply(&self.shared, parse(document)?)?;
        Ok(applied.setup)
    }

    /// Everything the scenarios applied so far set up, by name (the ready line's content).
    pub fn setup(&self) -> Value {
        Value::Object(self.shared.names().setup.clone())
    }

    /// What `mock-entra` prints once listening: authority host, control URL, TLS, and the setup.
    pub fn ready_info(&self) -> Value {
        let mut info = json!({
            "ready": true,
            "authority_host": self.uri().as_str(),
            "listening_on": self.address().to_string(),
            "control": self.control_url().as_str(),
            "tls": self.ca_pem().is_some(),
            "strict": self.shared.strict,
        });
        if let (Some(info), Value::Object(setup)) = (info.as_object_mut(), self.setup()) {
            info.extend(setup);
        }
        info
    }

    pub(crate) fn apply_startup_scenario(&self, document: &Value) -> Result<(), MockError> {
        let applied = apply(&self.shared, parse(document)?)?;
        let resolved = serde_json::to_value(&applied.resolved)
            .map_err(|e| MockError::invalid(e.to_string()))?;
        *self
            .shared
            .startup
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(resolved);
        Ok(())
    }

    /// Clears everything and applies the startup scenario again.
    pub(crate) fn reset_to_startup(&self) -> Result<(), MockError> {
        reset(&self.shared)
    }
}

/// Clears the directory, log, names and clock offset; replays the startup scenario.
pub(crate) fn reset(shared: &crate::server::Shared) -> Result<(), MockError> {
    shared.dir().clear();
    shared.log().clear();
    *shared.names() = Names::default();
    if let Some(clock) = &shared.own_clock {
        clock.reset();
    }
    let startup = shared
        .startup
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if let Some(document) = startup {
        apply(shared, parse(&document)?)?;
    }
    Ok(())
}

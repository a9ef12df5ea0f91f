//! Secrets never print: no client secret, private key, assertion, access or id token,
//! sealing key, PKCE verifier or Redis password appears in any `Debug` or `Display` a
//! user can reach (credentials and their builders, tokens, every error on the way, the
//! validator, the shared cache, the onboarding's pending state, the mock) or in any
//! `tracing` event, at TRACE.

use std::fmt::{Debug, Display};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::certificate::make_cert;
use crate::common::{VAULT, World, child_part, run_child};
use crate::logs::Logs;
use azure_cross_tenant::{
    Assertion, CacheOptions, Cached, ClientCertificate, ClientSecret, CredentialSet, Expectations,
    FederatedAssertion, L2Store, Onboarding, SealingKeys, SharedCache, SignInTenant,
    TenantCredentialProvider, TokenValidator, assertion_fn,
};
use mock_entra::MockFault;

/// What must never be printed, and everything that was.
#[derive(Default)]
struct Leaks {
    secrets: Vec<(&'static str, String)>,
    seen: Vec<(String, String)>,
}

impl Leaks {
    fn secret(&mut self, what: &'static str, value: impl Into<String>) {
        let value = value.into();
        assert!(value.len() >= 8, "{what}: too short to look for");
        self.secrets.push((what, value));
    }

    /// A key's bytes in the forms a careless `Debug` would print them.
    fn key_bytes(&mut self, what: &'static str, bytes: &[u8]) {
        self.secret(what, STANDARD.encode(bytes));
        self.secret(what, URL_SAFE_NO_PAD.encode(bytes));
        self.secret(
            what,
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        );
        self.secret(
            what,
            format!("{:?}", &bytes[..8])
                .trim_end_matches(']')
                .to_owned(),
        );
    }

    fn debug(&mut self, place: &str, value: &impl Debug) {
        self.seen
            .push((format!("{place} (Debug)"), format!("{value:?}")));
    }

    fn error(&mut self, place: &str, error: &(impl Display + Debug)) {
        self.seen
            .push((format!("{place} (Display)"), error.to_string()));
        self.debug(place, error);
    }

    fn check(self) {
        assert!(self.seen.len() > 20, "the check saw what it should");
        for (place, text) in &self.seen {
            for (what, secret) in &self.secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{what} leaked in {place}: {text}"
                );
            }
            assert!(
                !text.contains("eyJ"),
                "something JWT-like in {place}: {text}"
            );
        }
    }
}

#[tokio::test]
async fn no_secret_appears_in_any_debug_display_error_or_trace() {
    // tracing caches per-callsite interest process-wide: with other tests logging on other
    // threads, a thread-local subscriber misses events. A child process runs this alone.
    if child_part().is_some() {
        return child_redaction_check().await;
    }
    run_child(
        module_path!(),
        "no_secret_appears_in_any_debug_display_error_or_trace",
        "redaction check",
        &[],
    )
    .await;
}

/// The child process's part: it installs the global subscriber.
async fn child_redaction_check() {
    // Every thread's events (the global subscriber writes to this one buffer), not only
    // this thread's as `Logs::capture` gives.
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let w = World::new().await;
    let mut leaks = Leaks::default();
    client_secret(&w, &mut leaks).await;
    client_certificate(&w, &mut leaks).await;
    credential_set(&w, &mut leaks).await;
    federated(&w, &mut leaks).await;
    validator(&w, &mut leaks).await;
    shared_cache(&w, &mut leaks).await;
    onboarding(&w, &mut leaks);
    leaks.debug("MockEntra", &w.entra);

    let traces = logs.text();
    for event in [
        "token request refused",
        "fetched signing keys",
        "shared token cache",
    ] {
        assert!(
            traces.contains(event),
            "tracing captured {event:?}: {traces}"
        );
    }
    leaks.seen.push(("tracing at TRACE".into(), traces));
    leaks.check();
}

async fn client_secret(w: &World, leaks: &mut Leaks) {
    leaks.secret("client secret", &w.secret);
    let builder = ClientSecret::new(w.app.client_id(), &w.secret).authority_host(w.entra.uri());
    leaks.debug("ClientSecret builder", &builder);
    let credential = builder.build().unwrap();
    leaks.debug("ClientSecret", &credential);
    let token = credential.get_token(&w.customer, &[VAULT]).await.unwrap();
    leaks.secret("access token", token.secret());
    leaks.debug("AccessToken", &token);

    let wrong = w.credential_with(&format!("{}x", w.secret));
    let err = wrong.get_token(&w.customer, &[VAULT]).await.unwrap_err();
    leaks.error("wrong secret", &err);
    let err = credential
        .get_token(&w.stranger, &[VAULT])
        .await
        .unwrap_err();
    leaks.error("not consented", &err);
    for fault in [MockFault::Truncated, MockFault::Oversized] {
        w.entra.inject_fault(&w.customer, fault, 1);
        let err = credential
            .get_token(&w.customer, &[VAULT])
            .await
            .unwrap_err();
        leaks.error("a broken answer", &err);
    }
}

async fn client_certificate(w: &World, leaks: &mut Leaks) {
    let cert = make_cert(None);
    // Any line of the key's PEM body would give it away.
    for line in cert.key_pem.lines().filter(|l| !l.starts_with("-----")) {
        leaks.secret("private key (PEM line)", line);
    }
    let credential = |registered: bool| {
        if registered {
            w.entra.add_certificate(&w.app, cert.cert_pem.as_bytes());
        }
        ClientCertificate::from_pem(w.app.client_id(), &cert.cert_pem, &cert.key_pem)
            .authority_host(w.entra.uri())
    };
    let unregistered = credential(false);
    leaks.debug("ClientCertificate builder", &unregistered);
    let unregistered = unregistered.build().unwrap();
    let err = unregistered
        .get_token(&w.customer, &[VAULT])
        .await
        .unwrap_err();
    leaks.error("certificate not registered", &err);
    let registered = credential(true).build().unwrap();
    leaks.debug("ClientCertificate", &registered);
    let token = registered.get_token(&w.customer, &[VAULT]).await.unwrap();
    leaks.secret("access token (certificate)", token.secret());
    let err = ClientCertificate::from_pem(w.app.client_id(), &cert.cert_pem, "not a key")
        .build()
        .unwrap_err();
    leaks.error("a bad key", &err);
}

async fn credential_set(w: &World, leaks: &mut Leaks) {
    let old = format!("{}-retired", w.secret);
    leaks.secret("a retired client secret", &old);
    let member = |secret: &str, label: &str| {
        ClientSecret::new(w.app.client_id(), secret)
            .authority_host(w.entra.uri())
            .label(label)
            .build()
            .unwrap()
    };
    // The retired secret first: the call switches (a warning naming both labels).
    let set = CredentialSet::builder()
        .credential(member(&old, "retired"))
        .credential(member(&w.secret, "current"))
        .build()
        .unwrap();
    leaks.debug("CredentialSet", &set);
    let token = set.get_token(&w.customer, &[VAULT]).await.unwrap();
    leaks.secret("access token (credential set)", token.secret());
    leaks.debug("CredentialStats", &set.credential_stats());
    let refused = CredentialSet::builder()
        .credential(member(&old, "retired"))
        .build()
        .unwrap();
    let err = refused.get_token(&w.customer, &[VAULT]).await.unwrap_err();
    leaks.error("every credential of a set refused", &err);
}

async fn federated(w: &World, leaks: &mut Leaks) {
    let identity = w.entra.add_managed_identity(&w.home, "redaction");
    let assertion = w
        .entra
        .managed_identity_token(&identity, "api://AzureADTokenExchange");
    leaks.secret("federated assertion", &assertion);
    let source_assertion = assertion.clone();
    let credential = FederatedAssertion::new(
        w.app.client_id(),
        assertion_fn(move || {
            let a = source_assertion.clone();
            async move { Ok(Assertion::from_jwt(a)) }
        }),
    )
    .authority_host(w.entra.uri())
    .build()
    .unwrap();
    leaks.debug("FederatedAssertion", &credential);
    leaks.debug("Assertion", &Assertion::from_jwt(assertion.clone()));
    // Not trusted yet: Entra names the mismatch, never the assertion.
    let err = credential
        .get_token(&w.customer, &[VAULT])
        .await
        .unwrap_err();
    leaks.error("no federated credential", &err);
    w.entra.trust_managed_identity(&w.app, &identity);
    let token = credential.get_token(&w.customer, &[VAULT]).await.unwrap();
    leaks.secret("access token (federated)", token.secret());
}

async fn validator(w: &World, leaks: &mut Leaks) {
    let validator = TokenValidator::builder(w.entra.cloud())
        .clock(Arc::new(w.clock.clone()))
        .build()
        .unwrap();
    leaks.debug("TokenValidator", &validator);
    let token = w.token(&w.customer).await;
    leaks.secret("access token (validated)", token.secret());
    let expect = Expectations::new(w.customer.clone()).audience("https://vault.azure.net");
    leaks.debug("Expectations", &expect);
    let claims = validator.validate(token.secret(), &expect).await.unwrap();
    leaks.debug("Claims", &claims);
    let wrong = Expectations::new(w.customer.clone()).audience("api://another");
    let err = validator
        .validate(token.secret(), &wrong)
        .await
        .unwrap_err();
    leaks.error("wrong audience", &err);
    let (head, _) = token.secret().rsplit_once('.').unwrap();
    let forged = format!("{head}.AAAA");
    let err = validator.validate(&forged, &expect).await.unwrap_err();
    leaks.error("bad signature", &err);
    let bearer = err
        .bearer_error()
        .expect("a bad signature is a bearer error a service sends back");
    leaks
        .seen
        .push(("WWW-Authenticate".into(), bearer.to_string()));
}

async fn shared_cache(w: &World, leaks: &mut Leaks) {
    let key = [0x5a; 32];
    leaks.key_bytes("sealing key", &key);
    let keys = SealingKeys::new("2026-11", key).unwrap();
    leaks.debug("SealingKeys", &keys);
    let shared =
        SharedCache::new(store_that_is_down(leaks), keys).timeout(Duration::from_millis(50));
    leaks.debug("SharedCache", &shared);
    let cached = Cached::with_options(
        w.credential(),
        CacheOptions::default()
            .clock(Arc::new(w.clock.clone()))
            .shared(shared),
    )
    .unwrap();
    let token = cached.get_token(&w.customer, &[VAULT]).await.unwrap();
    leaks.secret("access token (cached)", token.secret());
    leaks.debug("Cached", &cached);
    leaks.debug("CacheStats", &cached.stats());
}

/// A shared store every call to which fails, so its errors reach the logs too: a
/// `RedisStore` with a password where nothing listens (feature `redis`), else a store
/// that is always down.
#[cfg(feature = "redis")]
fn store_that_is_down(leaks: &mut Leaks) -> Arc<dyn L2Store> {
    leaks.secret("Redis password", "hunter2-redis-password");
    let store = azure_cross_tenant::RedisStore::new("redis://:hunter2-redis-password@127.0.0.1:9/")
        .unwrap();
    leaks.debug("RedisStore", &store);
    Arc::new(store)
}

#[cfg(not(feature = "redis"))]
fn store_that_is_down(_: &mut Leaks) -> Arc<dyn L2Store> {
    use azure_cross_tenant::L2Error;

    #[derive(Debug)]
    struct Down;

    #[async_trait::async_trait]
    impl L2Store for Down {
        async fn get_many(&self, _: &[&str]) -> Result<Vec<Option<Vec<u8>>>, L2Error> {
            Err(L2Error::new("the store is down"))
        }
        async fn put(&self, _: &str, _: &[u8], _: Duration) -> Result<(), L2Error> {
            Err(L2Error::new("the store is down"))
        }
        async fn delete(&self, _: &str) -> Result<(), L2Error> {
            Err(L2Error::new("the store is down"))
        }
        async fn delete_if(&self, _: &str, _: &[u8]) -> Result<bool, L2Error> {
            Err(L2Error::new("the store is down"))
        }
    }
    Arc::new(Down)
}

fn onboarding(w: &World, leaks: &mut Leaks) {
    let redirect = "https://saas.example/onboarding/signed-in";
    w.entra.add_redirect_uri(&w.app, redirect);
    let onboarding = Onboarding::builder(Cached::new(w.credential()), VAULT, redirect)
        .build()
        .unwrap();
    leaks.debug("Onboarding", &onboarding);
    let (_, pending) = onboarding.sign_in(SignInTenant::Organizations).unwrap();
    // The verifier and nonce are the pending sign-in's secrets (the session store keeps
    // them; the browser sees only the challenge).
    let stored = serde_json::to_value(&pending).unwrap();
    for field in ["code_verifier", "nonce"] {
        let value = stored[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} stored"));
        leaks.secret("PKCE verifier or nonce", value);
    }
    leaks.debug("PendingSignIn", &pending);
}

//! Secrets never print: not in `Debug`, not in errors, not in logs.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::common::{VAULT, World, run_child};
use azure_cross_tenant::testing::MockFault;
use azure_cross_tenant::{ClientSecret, TenantCredentialProvider};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_or_token_appears_in_debug_errors_or_traces() {
    // tracing caches per-callsite interest process-wide: with other tests logging on other
    // threads, a thread-local subscriber misses events. A child process runs this alone.
    run_child(module_path!(), "child_redaction_check", &[]).await;
}

#[tokio::test]
#[ignore = "run by no_secret_or_token_appears_in_debug_errors_or_traces in a child process"]
async fn child_redaction_check() {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let w = World::new().await;
    let builder = ClientSecret::new(w.app.client_id(), &w.secret).authority_host(w.entra.uri());
    let builder_debug = format!("{builder:?}");
    let cred = builder.build().unwrap();
    let token = cred.get_token(&w.customer, &[VAULT]).await.unwrap();

    let mut outputs = vec![builder_debug, format!("{cred:?}"), format!("{token:?}")];
    // Errors of every kind this credential can produce.
    let wrong = ClientSecret::new(w.app.client_id(), format!("{}x", w.secret))
        .authority_host(w.entra.uri())
        .build()
        .unwrap();
    let err = wrong.get_token(&w.customer, &[VAULT]).await.unwrap_err();
    outputs.push(format!("{err} {err:?}"));
    let err = cred.get_token(&w.stranger, &[VAULT]).await.unwrap_err();
    outputs.push(format!("{err} {err:?}"));
    w.entra.inject_fault(&w.customer, MockFault::Truncated, 1);
    let err = cred.get_token(&w.customer, &[VAULT]).await.unwrap_err();
    outputs.push(format!("{err} {err:?}"));

    outputs.push(String::from_utf8(logs.0.lock().unwrap().clone()).unwrap());
    assert!(
        outputs.last().unwrap().contains("token request"),
        "tracing captured events"
    );
    for out in &outputs {
        assert!(!out.contains(&w.secret), "secret leaked: {out}");
        assert!(!out.contains(token.secret()), "token leaked: {out}");
        assert!(!out.contains("eyJ"), "something JWT-like leaked: {out}");
    }
    assert!(outputs[1].contains("<redacted>"));
    assert!(outputs[2].contains("<redacted>"));
}

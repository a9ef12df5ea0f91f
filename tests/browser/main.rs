//! The provider's onboarding in a real browser: headless Chromium, driven over WebDriver
//! (chromedriver) with fantoccini, through the `saas_provider` example's app and the mock
//! Entra's sign-in and consent pages, as a customer's admin clicks through it.
//!
//! The app is the example's own (`examples/saas_provider/app.rs`, included below), built
//! and served in this process on a free loopback port, one per test, with its embedded
//! mock Entra: no example binary needs building first, and a test reads the app's registry
//! as well as its pages. Each test opens its own Chromium with a fresh profile; a failed
//! test leaves a screenshot and the page source under `target/browser-failures/<test>/`
//! and says so in its message.
//!
//! Its own harness (libtest-mimic). These tests need Chromium and chromedriver, so, like
//! every test that needs a server (see `tests/api/main.rs`), they are reported as ignored,
//! with the reason, unless `--include-ignored` (or `--ignored`) asks for them; then a
//! missing Chromium or chromedriver fails them, naming what to install. `.ci/run` asks
//! (its test run is `cargo test --workspace --all-features -- --include-ignored`); alone:
//!
//! ```text
//! cargo test --features sqlite,axum --test browser -- --include-ignored
//! ```

#![allow(missing_docs)]

// The example's app, compiled into this test. `dead_code`: the test does not use every
// item (the real-Azure vault, for one).
#[allow(dead_code)]
#[path = "../../examples/saas_provider/app.rs"]
mod app;
mod driver;
mod onboarding;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use azure_cross_tenant::TenantRegistry;
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use url::Url;

use crate::app::MockWorld;
use crate::driver::{Browser, NEEDS};

/// A whole test may take this long (a hung browser fails it, with what it showed).
const TEST_DEADLINE: Duration = Duration::from_secs(120);
/// How long a failed test waits for the browser to show what it saw, or to close.
const BROWSER_ANSWER: Duration = Duration::from_secs(30);

/// What a test drives: the browser, the provider's app and its mock world.
pub(crate) struct Ctx {
    pub(crate) browser: Browser,
    /// The app's page, `http://127.0.0.1:PORT/`.
    pub(crate) app: Url,
    pub(crate) world: MockWorld,
    pub(crate) registry: Arc<dyn TenantRegistry>,
}

type TestFn = fn(Arc<Ctx>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// The app on a free loopback port, served until the runtime stops.
async fn start_app() -> (Url, MockWorld, Arc<dyn TenantRegistry>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", listener.local_addr().unwrap());
    let world = MockWorld::start(&public).await.unwrap();
    let app = app::build(world.backend(), &public).await.unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app.router).await;
    });
    (format!("{public}/").parse().unwrap(), world, app.registry)
}

/// Runs `test` in a fresh browser against a fresh app; on failure (a panic, or the
/// deadline) saves what the browser showed and says where.
async fn run(name: String, test: TestFn) -> Result<(), Failed> {
    let driver = driver::driver();
    let (app, world, registry) = start_app().await;
    let ctx = Arc::new(Ctx {
        browser: Browser::open(driver).await,
        app,
        world,
        registry,
    });
    // On a task of its own, so that a panic comes back here as a value and the browser
    // can still be asked what it shows, then closed.
    let mut task = tokio::spawn(test(ctx.clone()));
    let failure = match tokio::time::timeout(TEST_DEADLINE, &mut task).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) if e.is_panic() => Some(panic_message(e.into_panic())),
        Ok(Err(e)) => Some(format!("the test's task ended: {e}")),
        Err(_) => {
            task.abort();
            let _ = task.await;
            Some(format!("the test took longer than {TEST_DEADLINE:?}"))
        }
    };
    let saved = match &failure {
        Some(_) => tokio::time::timeout(BROWSER_ANSWER, ctx.browser.save_failure(&name))
            .await
            .unwrap_or_else(|_| "the browser did not answer: nothing saved".into()),
        None => String::new(),
    };
    // The task has ended (or was aborted), so this is the last reference.
    if let Ok(ctx) = Arc::try_unwrap(ctx) {
        let _ = tokio::time::timeout(BROWSER_ANSWER, ctx.browser.close()).await;
    }
    match failure {
        None => Ok(()),
        Some(message) => Err(format!("{message}\n{saved}").into()),
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "a panic without a message".to_owned(),
        },
    }
}

/// The trial `name`; ignored (with the reason) unless `args` ask for ignored tests.
fn trial(args: &Arguments, name: &str, test: TestFn) -> Trial {
    let asked = args.ignored || args.include_ignored;
    if !asked {
        // Ignored at run time rather than by the flag: only then does the summary line
        // say why.
        return Trial::ignorable_test(name, || Ok(Completion::ignored_with(NEEDS)));
    }
    let owned = name.to_owned();
    Trial::test(name, move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(owned, test))
    })
    // Flagged when asked for, so that `--ignored` selects them too.
    .with_ignored_flag(asked)
}

macro_rules! suite {
    ($args:expr; $($module:ident::$test:ident;)+) => {
        vec![$(
            trial(
                $args,
                concat!(stringify!($module), "::", stringify!($test)),
                |ctx| Box::pin($module::$test(ctx)),
            ),
        )+]
    };
}

fn main() {
    let args = Arguments::from_args();
    let tests = suite![&args;
        onboarding::an_admin_connects_their_tenant_and_reads_its_secret;
        onboarding::a_user_who_is_not_an_admin_is_told_why;
        onboarding::cancel_on_the_consent_page_connects_nothing;
    ];
    libtest_mimic::run(&args, tests).exit();
}

//! The SQL registry, the shared onboarding store and the onboarding routes, each test
//! run against every backend it applies to: `InMemoryRegistry` (registry tests),
//! SQLite (a temporary file) and a real PostgreSQL (started once per process, see
//! `servers.rs`). One suite, several backends: a test is an `async fn(Backend)`.
//!
//! Its own harness (libtest-mimic). The PostgreSQL rows need a PostgreSQL server, so, like
//! every test that needs a server (see `tests/api/main.rs`), they are reported as ignored,
//! with the reason, unless `--include-ignored` (or `--ignored`) asks for them; then a
//! missing PostgreSQL fails them. `.ci/run` always asks.

#![allow(
    unreachable_pub,
    missing_docs,
    clippy::exhaustive_enums,
    clippy::exhaustive_structs
)]

mod browser;
mod registry;
mod replay;
mod routes;
mod servers;
mod world;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use azure_cross_tenant::{InMemoryRegistry, SqlRegistry, TenantRegistry};
use libtest_mimic::{Arguments, Completion, Trial};

/// Where a test's registry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// A URL of a fresh, empty database of this backend (not for `Memory`).
    pub async fn fresh_url(self) -> String {
        match self {
            Self::Memory => unreachable!("the in-memory registry has no URL"),
            Self::Sqlite => {
                let dir = sqlite_root().join(uuid::Uuid::new_v4().to_string());
                std::fs::create_dir_all(&dir).unwrap();
                format!("sqlite://{}", dir.join("registry.db").display())
            }
            Self::Postgres => servers::postgres().database().await,
        }
    }

    /// A fresh registry of this backend.
    pub async fn registry(self) -> Arc<dyn TenantRegistry> {
        match self {
            Self::Memory => Arc::new(InMemoryRegistry::new()),
            _ => Arc::new(SqlRegistry::connect(&self.fresh_url().await).await.unwrap()),
        }
    }
}

/// Where this process keeps its SQLite files: one directory, removed when the run ends.
fn sqlite_root() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("act-sqlite-{}", std::process::id()))
}

type TestFn = fn(Backend) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Why a PostgreSQL row is ignored unless asked for.
const NEEDS_POSTGRES: &str = "needs PostgreSQL: apt-get install postgresql, then --include-ignored";

/// `name` for each of `backends`; the PostgreSQL row is ignored (with the reason) unless
/// `args` ask for ignored tests.
fn trials(args: &Arguments, name: &str, backends: &[Backend], test: TestFn) -> Vec<Trial> {
    let run_ignored = args.ignored || args.include_ignored;
    backends
        .iter()
        .map(|&backend| {
            let name = format!("{name}::{}", backend.name());
            if backend == Backend::Postgres && !run_ignored {
                // Ignored at run time rather than by the flag: only then does the summary
                // line say why.
                return Trial::ignorable_test(name, || {
                    Ok(Completion::ignored_with(NEEDS_POSTGRES))
                });
            }
            Trial::test(name, move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(test(backend));
                Ok(())
            })
            .with_ignored_flag(backend == Backend::Postgres)
        })
        .collect()
}

macro_rules! suite {
    ($args:expr; $($module:ident::$test:ident [$($backend:ident),+];)+) => {{
        let mut all = Vec::new();
        $(
            all.extend(trials(
                $args,
                concat!(stringify!($module), "::", stringify!($test)),
                &[$(Backend::$backend),+],
                |b| Box::pin($module::$test(b)),
            ));
        )+
        all
    }};
}

fn main() {
    let args = Arguments::from_args();
    let tests = suite![&args;
        registry::every_field_of_a_record_survives_the_store [Memory, Sqlite, Postgres];
        registry::a_tenant_linked_to_one_account_is_refused_to_another [Memory, Sqlite, Postgres];
        registry::fifty_concurrent_links_of_one_tenant_link_it_exactly_once [Memory, Sqlite, Postgres];
        registry::health_is_written_once_per_change_and_cleared_by_a_success [Memory, Sqlite, Postgres];
        registry::a_round_skips_tenants_needing_consent_and_reports_what_changed [Memory, Sqlite, Postgres];
        registry::a_database_that_goes_down_gives_a_retryable_error_and_no_half_record [Postgres];
        replay::a_callback_replayed_to_two_replicas_at_once_is_accepted_once [Sqlite, Postgres];
        replay::expired_entries_are_purged [Sqlite, Postgres];
        routes::an_admin_connects_their_tenant_through_the_routes [Sqlite, Postgres];
        routes::a_user_who_is_not_an_admin_is_refused [Sqlite, Postgres];
        routes::a_sign_in_answer_replayed_to_another_replica_is_refused [Sqlite, Postgres];
        routes::a_tenant_linked_to_another_account_is_refused [Sqlite, Postgres];
        routes::a_declined_consent_links_nothing [Sqlite, Postgres];
        routes::an_edited_consent_answer_naming_another_tenant_is_refused [Sqlite, Postgres];
    ];
    let conclusion = libtest_mimic::run(&args, tests);
    // Only this process writes here; a run that found no SQLite row never created it.
    let _ = std::fs::remove_dir_all(sqlite_root());
    conclusion.exit();
}

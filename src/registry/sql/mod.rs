//! [`SqlRegistry`]: the tenant registry (and the onboarding store) on SQLite or
//! PostgreSQL, through sqlx. Every statement is a constant with bound parameters.

mod error;
mod migrations;
mod row;
mod store;

use std::fmt;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock as _, SystemClock, unix_secs};
use crate::error::Error;
use crate::onboarding::OnboardingStore;
use crate::tenant::TenantId;

use super::{LinkError, OnboardingState, Relink, TenantHealth, TenantRecord, TenantRegistry};
use error::database;
use row::{Columns, record_from};
pub(crate) use store::SqlOnboardingStore;

/// How long a call waits for a connection from the pool.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one statement may run on PostgreSQL (and a SQLite writer waits for the lock).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts of a `link` whose first insert met another link's insert of the same tenant.
const LINK_ATTEMPTS: u32 = 3;
/// The PostgreSQL schema holding the tables (and sqlx's record of applied migrations).
#[cfg(feature = "postgres")]
const PG_SCHEMA: &str = "azure_cross_tenant";

/// The columns of a record, in the order every statement below uses.
#[cfg(test)]
const COLUMNS: &str = "tenant, display_name, state, account, service_principal_object_id, linked_by, linked_at, proof, proof_role, allowed_scopes, health_condition, health_since, health_error, health_code, health_trace_id";

macro_rules! select_all {
    () => {
        "SELECT tenant, display_name, state, account, service_principal_object_id, linked_by, linked_at, proof, proof_role, allowed_scopes, health_condition, health_since, health_error, health_code, health_trace_id FROM act_tenants"
    };
}

const LIST: &str = concat!(select_all!(), " ORDER BY tenant");
const GET: &str = concat!(select_all!(), " WHERE tenant = $1");
/// PostgreSQL: the row stays locked until the transaction ends, so a concurrent link of
/// the same tenant waits here and then reads what this one wrote.
#[cfg(feature = "postgres")]
const GET_FOR_UPDATE: &str = concat!(select_all!(), " WHERE tenant = $1 FOR UPDATE");
const INSERT: &str = "INSERT INTO act_tenants (tenant, display_name, state, account, service_principal_object_id, linked_by, linked_at, proof, proof_role, allowed_scopes, health_condition, health_since, health_error, health_code, health_trace_id, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (tenant) DO NOTHING";
const UPSERT: &str = "INSERT INTO act_tenants (tenant, display_name, state, account, service_principal_object_id, linked_by, linked_at, proof, proof_role, allowed_scopes, health_condition, health_since, health_error, health_code, health_trace_id, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
     ON CONFLICT (tenant) DO UPDATE SET display_name = excluded.display_name, state = excluded.state, account = excluded.account, \
     service_principal_object_id = excluded.service_principal_object_id, linked_by = excluded.linked_by, linked_at = excluded.linked_at, \
     proof = excluded.proof, proof_role = excluded.proof_role, allowed_scopes = excluded.allowed_scopes, \
     health_condition = excluded.health_condition, health_since = excluded.health_since, health_error = excluded.health_error, \
     health_code = excluded.health_code, health_trace_id = excluded.health_trace_id, updated_at = excluded.updated_at";
const UPDATE: &str = "UPDATE act_tenants SET display_name = $2, state = $3, account = $4, service_principal_object_id = $5, linked_by = $6, linked_at = $7, \
     proof = $8, proof_role = $9, allowed_scopes = $10, health_condition = $11, health_since = $12, health_error = $13, health_code = $14, \
     health_trace_id = $15, updated_at = $16 WHERE tenant = $1";
const SET_STATE: &str = "UPDATE act_tenants SET state = $2, updated_at = $3 WHERE tenant = $1";
const SET_HEALTH: &str = "UPDATE act_tenants SET health_condition = $2, health_since = $3, health_error = $4, health_code = $5, health_trace_id = $6, updated_at = $7 WHERE tenant = $1";

/// The pool of whichever database the URL named.
#[derive(Clone)]
pub(crate) enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool: the statements are the same
/// text on both databases (`$n` parameters work on SQLite too).
macro_rules! on_pool {
    ($pool_enum:expr, $pool:ident => $body:expr) => {
        match $pool_enum {
            #[cfg(feature = "sqlite")]
            $crate::registry::sql::Pool::Sqlite($pool) => $body,
            #[cfg(feature = "postgres")]
            $crate::registry::sql::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Binds a record's columns (and `updated_at`) to `$query`, in [`COLUMNS`] order.
macro_rules! bind_record {
    ($query:expr, $c:expr, $now:expr) => {
        $query
            .bind($c.tenant)
            .bind($c.display_name)
            .bind($c.state)
            .bind($c.account)
            .bind($c.service_principal_object_id)
            .bind($c.linked_by)
            .bind($c.linked_at)
            .bind($c.proof)
            .bind($c.proof_role)
            .bind($c.allowed_scopes)
            .bind($c.health_condition)
            .bind($c.health_since)
            .bind($c.health_error)
            .bind($c.health_code)
            .bind($c.health_trace_id)
            .bind($now)
    };
}

/// The tenant registry on a SQL database: SQLite (feature `sqlite`; embedded, a file or
/// `sqlite::memory:`) or PostgreSQL (feature `postgres`; for fleets). It also holds the
/// onboarding's pending flows and spent states ([`onboarding_store`](Self::onboarding_store)),
/// so every replica on the same database shares them.
///
/// - **Schema.** The migrations are embedded in the binary (`migrations/`) and run by
///   [`connect`](Self::connect); [`connect_without_migrations`](Self::connect_without_migrations)
///   and [`migrate`](Self::migrate) split the two for deployments that migrate in a
///   separate step. Running them again is a no-op, and replicas starting together take
///   turns (sqlx locks the migrations). On PostgreSQL the tables and sqlx's
///   `_sqlx_migrations` live in their own schema, `azure_cross_tenant` (created on
///   first migration: the role needs `CREATE` on the database, or create the schema
///   beforehand), so they never meet your own migrations. On SQLite (no schemas) the
///   tables are `act_tenants` and `act_onboarding`; give the registry its own file, or
///   tell your own migrator to ignore versions it does not know.
/// - **Linking.** [`link`](TenantRegistry::link) applies [`decide_link`](crate::decide_link)
///   inside one transaction that no other link of the same tenant can interleave with:
///   on PostgreSQL a row lock (`SELECT ... FOR UPDATE`; when the tenant is new, a second
///   concurrent insert finds the first one's row and the link is decided again, at most
///   three times, under the lock); on SQLite `BEGIN IMMEDIATE`, which takes the
///   database's write lock before reading. Of any number of onboardings racing for one
///   tenant, exactly one links it.
/// - **Failures.** Every call waits at most 5 s for a connection, and a statement at most
///   10 s. A database that is down or busy gives [`Error::Database`] with
///   [`is_retryable`](Error::is_retryable) true; each write is one transaction, so a
///   failure leaves no half-written record.
/// - **Columns.** Every field of [`TenantRecord`] has its own column; lists are JSON
///   text and times Unix seconds. Statements are constants with bound parameters.
///
/// ```no_run
/// use std::sync::Arc;
/// use azure_cross_tenant::{SqlRegistry, TenantRegistry};
///
/// # async fn run() -> Result<(), azure_cross_tenant::Error> {
/// // SQLite next to the app (the file is created if missing); or "postgres://..." for a fleet.
/// let registry = Arc::new(SqlRegistry::connect("sqlite://tenants.db").await?);
/// for record in registry.list().await? {
///     println!("{} {:?} {:?}", record.tenant, record.state, record.condition());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqlRegistry {
    pool: Pool,
}

impl fmt::Debug for SqlRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the URL: it may carry a password.
        f.debug_struct("SqlRegistry")
            .field("database", &self.database())
            .finish()
    }
}

impl SqlRegistry {
    /// Connects to `url` and brings its schema up to date. `url` is `sqlite://path`
    /// (created if missing), `sqlite::memory:` (a private database that lives as long as
    /// this registry: tests), or `postgres://user:password@host/database` (TLS as the
    /// URL's `sslmode` says).
    ///
    /// # Errors
    /// [`Error::InvalidConfiguration`] for a URL of a database whose feature is not
    /// enabled, or a malformed one (the URL is not repeated: it may hold a password);
    /// [`Error::Database`] when the database cannot be reached or migrated.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let registry = Self::connect_without_migrations(url).await?;
        registry.migrate().await?;
        Ok(registry)
    }

    /// Connects to `url` without touching its schema: run [`migrate`](Self::migrate) (or
    /// let another process do it) before use.
    pub async fn connect_without_migrations(url: &str) -> Result<Self, Error> {
        let scheme = url.split(':').next().unwrap_or_default();
        let pool = match scheme {
            "sqlite" => sqlite_pool(url).await?,
            "postgres" | "postgresql" => postgres_pool(url).await?,
            _ => {
                return Err(Error::InvalidConfiguration(
                    "the registry's database URL must start with sqlite: or postgres:".into(),
                ));
            }
        };
        Ok(Self { pool })
    }

    /// Applies the embedded migrations this database lacks (a no-op when it has them all).
    pub async fn migrate(&self) -> Result<(), Error> {
        let failed = |e: sqlx::migrate::MigrateError| Error::Database {
            operation: "apply the tenant registry's migrations",
            retryable: matches!(&e, sqlx::migrate::MigrateError::Execute(e) if matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut)),
            source: Arc::new(e),
        };
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => migrations::sqlite().run(pool).await.map_err(failed),
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => {
                // Our schema first: sqlx records what it applied in the search path's
                // first schema, which every connection of this pool sets to ours.
                sqlx::query("CREATE SCHEMA IF NOT EXISTS azure_cross_tenant")
                    .execute(pool)
                    .await
                    .map_err(|e| database("create its schema in the tenant registry", e))?;
                migrations::postgres().run(pool).await.map_err(failed)
            }
        }
    }

    /// The onboarding store on this database (pending flows, spent states), sharing the
    /// registry's connections. Give it to [`OnboardingBuilder::store`](crate::OnboardingBuilder::store);
    /// the onboarding routes use it by themselves when given this registry.
    pub fn onboarding_store(&self) -> Arc<dyn OnboardingStore> {
        Arc::new(SqlOnboardingStore {
            pool: self.pool.clone(),
        })
    }

    /// Which database: `sqlite` or `postgres`.
    pub fn database(&self) -> &'static str {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection; calls after this fail (not retryable).
    pub async fn close(&self) {
        on_pool!(&self.pool, pool => pool.close().await)
    }
}

fn bad_url(database: &str, e: &sqlx::Error) -> Error {
    // sqlx's message names the part that is wrong; the URL itself is not repeated.
    Error::InvalidConfiguration(format!(
        "the {database} URL of the registry is invalid: {e}"
    ))
}

#[cfg(feature = "sqlite")]
async fn sqlite_pool(url: &str) -> Result<Pool, Error> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| bad_url("sqlite", &e))?
        .create_if_missing(true)
        .busy_timeout(STATEMENT_TIMEOUT)
        .foreign_keys(true);
    let (options, pool) = if in_memory {
        // Each connection to `:memory:` is a database of its own: one connection, kept
        // for the registry's life.
        (
            options,
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None),
        )
    } else {
        (
            // WAL: readers never wait for the writer.
            options.journal_mode(SqliteJournalMode::Wal),
            SqlitePoolOptions::new().max_connections(8),
        )
    };
    let pool = pool
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| database("connect in the tenant registry", e))?;
    Ok(Pool::Sqlite(pool))
}

#[cfg(not(feature = "sqlite"))]
async fn sqlite_pool(_url: &str) -> Result<Pool, Error> {
    Err(Error::InvalidConfiguration(
        "a sqlite: registry URL needs the crate's `sqlite` feature".into(),
    ))
}

#[cfg(feature = "postgres")]
async fn postgres_pool(url: &str) -> Result<Pool, Error> {
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| bad_url("postgres", &e))?
        .options([
            ("search_path", PG_SCHEMA.to_owned()),
            (
                "statement_timeout",
                STATEMENT_TIMEOUT.as_millis().to_string(),
            ),
        ])
        .application_name("azure-cross-tenant");
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| database("connect in the tenant registry", e))?;
    Ok(Pool::Postgres(pool))
}

#[cfg(not(feature = "postgres"))]
async fn postgres_pool(_url: &str) -> Result<Pool, Error> {
    Err(Error::InvalidConfiguration(
        "a postgres: registry URL needs the crate's `postgres` feature".into(),
    ))
}

fn now() -> i64 {
    i64::try_from(unix_secs(SystemClock.now())).unwrap_or(i64::MAX)
}

#[async_trait::async_trait]
impl TenantRegistry for SqlRegistry {
    async fn list(&self) -> Result<Vec<TenantRecord>, Error> {
        let rows = on_pool!(&self.pool, pool => {
            let rows = sqlx::query(LIST)
                .fetch_all(pool)
                .await
                .map_err(|e| database("list tenants in the tenant registry", e))?;
            rows.iter().map(|r| record_from(r as &dyn row::Get)).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    async fn get(&self, tenant: &TenantId) -> Result<Option<TenantRecord>, Error> {
        on_pool!(&self.pool, pool => {
            let row = sqlx::query(GET)
                .bind(tenant.as_str())
                .fetch_optional(pool)
                .await
                .map_err(|e| database("read a tenant in the tenant registry", e))?;
            row.as_ref().map(|r| record_from(r as &dyn row::Get)).transpose()
        })
    }

    async fn upsert(&self, record: TenantRecord) -> Result<(), Error> {
        let columns = Columns::of(&record)?;
        on_pool!(&self.pool, pool => {
            bind_record!(sqlx::query(UPSERT), columns, now())
                .execute(pool)
                .await
                .map_err(|e| database("store a tenant in the tenant registry", e))?;
        });
        Ok(())
    }

    async fn link(
        &self,
        account: &str,
        record: TenantRecord,
        relink: Relink,
    ) -> Result<TenantRecord, LinkError> {
        let fail = |e| LinkError::Registry(database("link a tenant in the tenant registry", e));
        for _ in 0..LINK_ATTEMPTS {
            let decided = on_pool!(&self.pool, pool => {
                #[allow(unused_mut)]
                let mut tx = match &self.pool {
                    #[cfg(feature = "sqlite")]
                    Pool::Sqlite(_) => pool.begin_with("BEGIN IMMEDIATE").await.map_err(fail)?,
                    #[cfg(feature = "postgres")]
                    Pool::Postgres(_) => pool.begin().await.map_err(fail)?,
                };
                let select = match &self.pool {
                    #[cfg(feature = "sqlite")]
                    Pool::Sqlite(_) => GET,
                    #[cfg(feature = "postgres")]
                    Pool::Postgres(_) => GET_FOR_UPDATE,
                };
                let existing = sqlx::query(select)
                    .bind(record.tenant.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(fail)?;
                let existing = existing
                    .as_ref()
                    .map(|r| record_from(r as &dyn row::Get))
                    .transpose()?;
                // A refusal drops the transaction: rolled back, nothing written.
                let decided = super::decide_link(account, existing.as_ref(), record.clone(), relink)?;
                let columns = Columns::of(&decided)?;
                let statement = if existing.is_some() { UPDATE } else { INSERT };
                let written = bind_record!(sqlx::query(statement), columns, now())
                    .execute(&mut *tx)
                    .await
                    .map_err(fail)?;
                if written.rows_affected() == 1 {
                    tx.commit().await.map_err(fail)?;
                    Some(decided)
                } else {
                    // Another link inserted the tenant since our read: decide again,
                    // this time under its row's lock.
                    None
                }
            });
            if let Some(decided) = decided {
                return Ok(decided);
            }
        }
        Err(LinkError::Registry(Error::Database {
            operation: "link a tenant in the tenant registry",
            retryable: true,
            source: Arc::new(LinkContention),
        }))
    }

    async fn set_state(&self, tenant: &TenantId, state: OnboardingState) -> Result<bool, Error> {
        on_pool!(&self.pool, pool => {
            let done = sqlx::query(SET_STATE)
                .bind(tenant.as_str())
                .bind(state.as_str())
                .bind(now())
                .execute(pool)
                .await
                .map_err(|e| database("set a tenant's state in the tenant registry", e))?;
            Ok(done.rows_affected() > 0)
        })
    }

    async fn set_health(
        &self,
        tenant: &TenantId,
        health: Option<TenantHealth>,
    ) -> Result<bool, Error> {
        let h = row::HealthColumns::of(health.as_ref());
        on_pool!(&self.pool, pool => {
            let done = sqlx::query(SET_HEALTH)
                .bind(tenant.as_str())
                .bind(h.condition)
                .bind(h.since)
                .bind(h.error)
                .bind(h.code)
                .bind(h.trace_id)
                .bind(now())
                .execute(pool)
                .await
                .map_err(|e| database("record a tenant's health in the tenant registry", e))?;
            Ok(done.rows_affected() > 0)
        })
    }

    fn onboarding_store(&self) -> Option<Arc<dyn OnboardingStore>> {
        Some(SqlRegistry::onboarding_store(self))
    }
}

/// Every attempt of a link met another link's insert: should not happen (the second
/// attempt reads under the row lock); retry.
#[derive(Debug, thiserror::Error)]
#[error("concurrent links of the tenant kept conflicting")]
struct LinkContention;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_names_the_columns_in_one_order() {
        assert!(LIST.contains(COLUMNS) && GET.contains(COLUMNS));
        assert!(INSERT.contains(COLUMNS) && UPSERT.contains(COLUMNS));
    }
}

//! The onboarding store in the registry's database: table `act_onboarding`, one row per
//! key, each operation one statement (atomic on both databases).

use std::fmt;

use super::error::database;
use super::{Pool, on_pool};
use crate::error::Error;
use crate::onboarding::OnboardingStore;

const PUT: &str = "INSERT INTO act_onboarding (entry_key, value, expires_at) VALUES ($1, $2, $3) \
     ON CONFLICT (entry_key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at";
const GET: &str = "SELECT value FROM act_onboarding WHERE entry_key = $1 AND expires_at >= $2";
/// One statement: of concurrent takes, only one deletes the row and gets its value.
const TAKE: &str = "DELETE FROM act_onboarding WHERE entry_key = $1 RETURNING value, expires_at";
/// Inserts, or replaces an *expired* row; an unexpired row stays and nothing is written.
/// On PostgreSQL a concurrent insert of the same key waits for the first and then sees
/// its row (unexpired: no update); SQLite runs one writer at a time.
const INSERT_NEW: &str = "INSERT INTO act_onboarding (entry_key, value, expires_at) VALUES ($1, $2, $3) \
     ON CONFLICT (entry_key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at \
     WHERE act_onboarding.expires_at < $4";
const DELETE: &str = "DELETE FROM act_onboarding WHERE entry_key = $1";
const PURGE: &str = "DELETE FROM act_onboarding WHERE expires_at < $1";

/// [`OnboardingStore`] on a [`SqlRegistry`](crate::SqlRegistry)'s connections.
pub(crate) struct SqlOnboardingStore {
    pub(super) pool: Pool,
}

impl fmt::Debug for SqlOnboardingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let database = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => "postgres",
        };
        f.debug_struct("SqlOnboardingStore")
            .field("database", &database)
            .finish()
    }
}

fn int(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

#[async_trait::async_trait]
impl OnboardingStore for SqlOnboardingStore {
    async fn put(&self, key: &str, value: &[u8], expires_at: u64) -> Result<(), Error> {
        on_pool!(&self.pool, pool => {
            sqlx::query(PUT)
                .bind(key)
                .bind(value)
                .bind(int(expires_at))
                .execute(pool)
                .await
                .map_err(|e| database("store a pending onboarding in the onboarding store", e))?;
        });
        Ok(())
    }

    async fn get(&self, key: &str, now: u64) -> Result<Option<Vec<u8>>, Error> {
        on_pool!(&self.pool, pool => {
            let value: Option<Vec<u8>> = sqlx::query_scalar(GET)
                .bind(key)
                .bind(int(now))
                .fetch_optional(pool)
                .await
                .map_err(|e| database("read a pending onboarding in the onboarding store", e))?;
            Ok(value)
        })
    }

    async fn take(&self, key: &str, now: u64) -> Result<Option<Vec<u8>>, Error> {
        on_pool!(&self.pool, pool => {
            let row: Option<(Vec<u8>, i64)> = sqlx::query_as(TAKE)
                .bind(key)
                .fetch_optional(pool)
                .await
                .map_err(|e| database("take a pending onboarding in the onboarding store", e))?;
            Ok(row.filter(|(_, expires)| *expires >= int(now)).map(|(v, _)| v))
        })
    }

    async fn insert_new(
        &self,
        key: &str,
        value: &[u8],
        expires_at: u64,
        now: u64,
    ) -> Result<bool, Error> {
        on_pool!(&self.pool, pool => {
            let done = sqlx::query(INSERT_NEW)
                .bind(key)
                .bind(value)
                .bind(int(expires_at))
                .bind(int(now))
                .execute(pool)
                .await
                .map_err(|e| database("record a spent state in the onboarding store", e))?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        on_pool!(&self.pool, pool => {
            sqlx::query(DELETE)
                .bind(key)
                .execute(pool)
                .await
                .map_err(|e| database("remove a pending onboarding in the onboarding store", e))?;
        });
        Ok(())
    }

    async fn purge_expired(&self, now: u64) -> Result<u64, Error> {
        on_pool!(&self.pool, pool => {
            let done = sqlx::query(PURGE)
                .bind(int(now))
                .execute(pool)
                .await
                .map_err(|e| database("purge expired onboarding entries in the onboarding store", e))?;
            Ok(done.rows_affected())
        })
    }
}

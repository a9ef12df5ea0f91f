//! sqlx errors as [`Error::Database`]: which failures are passing (worth a retry) and
//! which need a person.

use std::sync::Arc;

use crate::error::Error;

/// `e`, met while doing `operation` in `store`, as the crate's typed error.
pub(super) fn database(operation: &'static str, e: sqlx::Error) -> Error {
    let retryable = is_passing(&e);
    tracing::warn!(operation, retryable, error = %e, "database call failed");
    Error::Database {
        operation,
        retryable,
        source: Arc::new(e),
    }
}

/// A value read back that this version cannot understand (a row written by hand, or by
/// a newer version): not retryable.
pub(super) fn unreadable(what: String) -> Error {
    Error::Database {
        operation: "read a stored value",
        retryable: false,
        source: Arc::new(Unreadable(what)),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Unreadable(String);

/// Connection trouble, timeouts, lock and serialization conflicts, a server shutting
/// down: the same call may succeed shortly.
fn is_passing(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| passing_code(&code)),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs (always five characters) and SQLite result codes (decimal, at
/// most four digits) of passing failures.
fn passing_code(code: &str) -> bool {
    if code.len() == 5 {
        // PostgreSQL: 08xxx connection exceptions, 40001 serialization failure, 40P01
        // deadlock, 53xxx insufficient resources, 55P03 lock not available, 57014
        // statement timeout, 57P01-57P03 shutting down or starting up.
        code.starts_with("08")
            || code.starts_with("53")
            || matches!(
                code,
                "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03"
            )
    } else {
        // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
        code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passing_failures_are_told_from_the_rest() {
        for passing in [
            "08006", "08001", "40001", "40P01", "57P01", "55P03", "5", "517", "6",
        ] {
            assert!(passing_code(passing), "{passing}");
        }
        for lasting in ["23505", "42P01", "42501", "28P01", "1", "19", "2067"] {
            assert!(!passing_code(lasting), "{lasting}");
        }
        assert!(is_passing(&sqlx::Error::PoolTimedOut));
        assert!(!is_passing(&sqlx::Error::PoolClosed));
        assert!(!is_passing(&sqlx::Error::RowNotFound));
    }
}

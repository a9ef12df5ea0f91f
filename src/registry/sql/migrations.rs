//! The registry's schema migrations, embedded in the binary.
//!
//! Built here rather than by `sqlx::migrate!`: that macro is behind sqlx's `macros`
//! feature, which compiles a second copy of sqlx, its database drivers, tokio and rustls
//! for the compiler to run, in every build that enables `sqlite` or `postgres`. What it
//! would generate is what [`Migration::new`] makes from the same file: the version and
//! description from the file name, the SQL as written, its SHA-384 checksum. A database
//! migrated by either has the same record, so nothing is applied twice.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

/// One migration file: its version, its description (the file name after the version,
/// `_` as spaces) and its SQL.
type Source = (i64, &'static str, &'static str);

#[cfg(feature = "sqlite")]
const SQLITE: &[Source] = &[(
    20260601000001,
    "registry",
    include_str!("../../../migrations/sqlite/20260601000001_registry.sql"),
)];

#[cfg(feature = "postgres")]
const POSTGRES: &[Source] = &[(
    20260601000001,
    "registry",
    include_str!("../../../migrations/postgres/20260601000001_registry.sql"),
)];

/// The SQLite migrations. Missing versions are ignored: an app's own migrations may share
/// the database file's `_sqlx_migrations` (SQLite has no schemas to keep them apart).
#[cfg(feature = "sqlite")]
pub(super) fn sqlite() -> Migrator {
    let mut migrator = migrator(SQLITE);
    migrator.set_ignore_missing(true);
    migrator
}

/// The PostgreSQL migrations, applied in the registry's own schema.
#[cfg(feature = "postgres")]
pub(super) fn postgres() -> Migrator {
    migrator(POSTGRES)
}

fn migrator(sources: &'static [Source]) -> Migrator {
    let migrations = sources
        .iter()
        .map(|&(version, description, sql)| {
            // Like sqlx's own reader: a file that starts so runs outside a transaction.
            let no_tx = sql.starts_with("-- no-transaction");
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                no_tx,
            )
        })
        .collect();
    // `Migrator`'s fields are public (and hidden) for `sqlx::migrate!`; there is no
    // constructor from migrations in memory. sqlx is pinned to 0.8 in Cargo.toml.
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list above must name every file of migrations/, in order, so that a new file
    /// cannot be forgotten (sqlx::migrate! read the directory by itself).
    fn files_match(dir: &str, sources: &[Source]) {
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        let listed: Vec<String> = sources
            .iter()
            .map(|(version, description, _)| {
                format!("{version}_{}.sql", description.replace(' ', "_"))
            })
            .collect();
        assert_eq!(files, listed, "{dir} and the list in migrations.rs differ");
        for ((_, _, sql), file) in sources.iter().zip(&files) {
            let on_disk = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
            assert_eq!(*sql, on_disk, "{file}");
        }
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn the_sqlite_list_names_every_file_of_its_directory() {
        files_match(
            concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"),
            SQLITE,
        );
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn the_postgres_list_names_every_file_of_its_directory() {
        files_match(
            concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"),
            POSTGRES,
        );
    }

    /// A migration a database has applied is never edited: sqlx refuses a database whose
    /// recorded checksum differs (the ones below are what `sqlx::migrate!` recorded for the
    /// first release). A schema change is a new file.
    fn first_is_unchanged(migrator: Migrator, checksum: &str) {
        let first = migrator.iter().next().unwrap();
        assert_eq!(first.version, 20260601000001);
        assert_eq!(first.description, "registry");
        assert!(!first.no_tx);
        assert_eq!(first.migration_type, MigrationType::Simple);
        assert_eq!(
            hex(&first.checksum),
            checksum,
            "an applied migration was edited"
        );
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn the_first_sqlite_migration_is_the_one_databases_applied() {
        first_is_unchanged(
            sqlite(),
            "9af85484691b863f4847ad581e5a947dfb7d58b99652c4c89bf60066926a1855f79bf3d43ce0ca111488155547e1abe3",
        );
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn the_first_postgres_migration_is_the_one_databases_applied() {
        first_is_unchanged(
            postgres(),
            "547af34dc431acc1641419a15b9c57b6a902b6b77397c4a6d52cbfd185bc555510886dbdaadf1b3d6b62be00cdc9f133",
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

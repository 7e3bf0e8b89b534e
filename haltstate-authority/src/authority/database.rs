//! The database under the authority: whether it answers, its schema, copying it to PostgreSQL, and what the
//! writer has committed.
//!
//! - [`ready`](Authority::ready): a trivial read (`/readyz`).
//! - [`migrate`](Authority::migrate): create or migrate the schema as a deployment step.
//! - [`copy_database`](Authority::copy_database): a SQLite authority into an empty PostgreSQL database.
//! - [`writer_stats`](Authority::writer_stats): transactions and operations committed (group commit at work).

#[cfg(feature = "postgres")]
use std::path::Path;

use super::Authority;
use crate::database::Database;
#[cfg(feature = "postgres")]
use crate::error::AuthorityError;
use crate::error::Result;
use crate::store::job::WriterStats;
use crate::store::sqlite;

impl Authority {
    /// Answers `Ok` when the database answers a trivial read: whether this authority can serve (`/readyz`).
    pub fn ready(&self) -> Result<()> {
        self.inner.reads.ping()
    }

    /// Creates or migrates the schema of `database` to this build's version and answers that version; refuses
    /// ([`AuthorityError::SchemaTooNew`](crate::AuthorityError::SchemaTooNew)) a newer one. Opening an authority
    /// does the same; this is for running migrations as a deployment step.
    pub fn migrate(database: &Database) -> Result<i64> {
        match database {
            Database::Sqlite(path) => sqlite::migrate_file(path),
            #[cfg(feature = "postgres")]
            Database::Postgres(url) => crate::store::postgres::migrate(url),
            #[cfg(not(feature = "postgres"))]
            Database::Postgres(_) => Err(super::builder::no_postgres()),
        }
    }

    /// Copies the SQLite authority at `from` into the empty PostgreSQL database `to` (schema created), every
    /// chain and row, in one transaction, and verifies the copy. Refuses a source whose ledger does not verify
    /// and a target that holds HaltState data.
    #[cfg(feature = "postgres")]
    pub fn copy_database(from: &Path, to: &Database) -> Result<crate::CopyReport> {
        match to {
            Database::Postgres(url) => crate::store::postgres::copy(from, url),
            Database::Sqlite(path) => Err(AuthorityError::invalid(format!(
                "copy goes into a PostgreSQL database, not the file {}",
                path.display()
            ))),
        }
    }

    /// Backs up the SQLite authority at `from` (it may be serving: the copy is the database as of one commit)
    /// into the new file `to`, readable by its owner only, and verifies the copy (SQLite's integrity check, every
    /// chain). Restore by stopping the server and putting the copy in the database's place.
    ///
    /// ```
    /// use haltstate_authority::Authority;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let (db, copy) = (dir.path().join("hs.db"), dir.path().join("backup.db"));
    /// let authority = Authority::builder(&db).open()?;
    /// authority.create_key("acme", "bot", haltstate_authority::Role::Agent).wait()?;
    /// let report = Authority::backup_sqlite(&db, &copy)?;
    /// assert!(report.pages > 0);
    /// assert!(Authority::backup_sqlite(&db, &copy).is_err(), "never overwrites");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn backup_sqlite(
        from: &std::path::Path,
        to: &std::path::Path,
    ) -> Result<crate::BackupReport> {
        crate::store::sqlite::backup(from, to)
    }

    /// How many transactions and operations the writer has committed (group commit at work).
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.counters.snapshot()
    }
}

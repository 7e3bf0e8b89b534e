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

    /// How many transactions and operations the writer has committed (group commit at work).
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.counters.snapshot()
    }
}

//! Opening the database a command names: never a new empty one by mistake.

use haltstate_authority::{Authority, AuthorityError, Database};

/// Opens an existing authority: a missing SQLite file is an error here, not a new empty database.
pub(crate) fn open(db: &Database) -> Result<Authority, AuthorityError> {
    existing(db)?;
    Authority::builder(db.clone()).open()
}

/// Opens an existing authority that signs tree heads under the log names `<prefix>/<tenant>`.
pub(crate) fn open_signing(db: &Database, prefix: &str) -> Result<Authority, AuthorityError> {
    existing(db)?;
    Authority::builder(db.clone())
        .log_origin_prefix(prefix)
        .open()
}

/// Opens an existing authority as it is, for commands that only read it: never migrated, so a database of
/// another schema version is refused.
pub(crate) fn open_as_is(db: &Database) -> Result<Authority, AuthorityError> {
    existing(db)?;
    Authority::builder(db.clone()).migrate(false).open()
}

fn existing(db: &Database) -> Result<(), AuthorityError> {
    match db {
        Database::Sqlite(path) if !path.exists() => Err(AuthorityError::invalid(format!(
            "no database at {}",
            path.display()
        ))),
        _ => Ok(()),
    }
}

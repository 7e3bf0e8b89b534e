//! An online backup of a live SQLite authority: SQLite's backup API copies every page in one read transaction, so
//! the copy is the database as of one commit, while the server goes on committing (WAL: readers do not block the
//! writer). The copy is then checked: SQLite's integrity check and the ledger's chains.

use std::path::Path;

use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags};

use super::{BUSY_TIMEOUT, open_existing_read_only, verify};
use crate::error::{AuthorityError, Result};
use haltstate_types::VerifyReport;

/// What a backup copied, and what its copy verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// Database pages copied (2 KiB each; 4 KiB in an older file).
    pub pages: u64,
    /// The copy's ledger, verified.
    pub verified: VerifyReport,
}

/// Copies the authority at `from` (which may be serving) into the new file `to`, readable by its owner only, and
/// verifies the copy. Refuses an existing `to`: a backup never overwrites.
pub(crate) fn backup(from: &Path, to: &Path) -> Result<BackupReport> {
    let source = open_existing_read_only(from)?;
    let io = |what: &str, e: std::io::Error| {
        AuthorityError::invalid(format!("{what} {}: {e}", to.display()))
    };
    // Created here, empty and private, so that the copy is never readable by others, even for a moment.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(to).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => AuthorityError::invalid(format!(
            "{} exists: a backup goes into a new file",
            to.display()
        )),
        _ => io("cannot create", e),
    })?;
    let copied = (|| {
        let mut target = Connection::open(to)?;
        target.busy_timeout(BUSY_TIMEOUT)?;
        let pages = {
            let backup = Backup::new(&source, &mut target)?;
            // Every page in one step: one read transaction on the source, so one consistent snapshot.
            backup.step(-1)?;
            u64::try_from(backup.progress().pagecount).unwrap_or(0)
        };
        // The copy is left a single file (no -wal beside it), as a restore expects.
        target.pragma_update(None, "journal_mode", "DELETE")?;
        let check: String = target.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
        if check != "ok" {
            return Err(AuthorityError::Corrupt(format!(
                "the copy fails SQLite's integrity check: {check}"
            )));
        }
        drop(target);
        let copy = Connection::open_with_flags(to, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let verified = verify::verify(&copy)?;
        Ok(BackupReport { pages, verified })
    })();
    if copied.is_err() {
        // Half a backup is not one.
        let _ = std::fs::remove_file(to);
    }
    copied
}

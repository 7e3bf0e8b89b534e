//! An authority on a fresh SQLite file in a directory that is removed when the test ends.

use haltstate_authority::Authority;
use tempfile::TempDir;

/// Opens an authority on `hs.db` in a new temporary directory with `policies`; keep the directory alive as long
/// as the authority.
pub fn scratch_authority(policies: &str) -> (Authority, TempDir) {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => panic!("cannot make a temporary directory: {error}"),
    };
    match Authority::builder(dir.path().join("hs.db"))
        .policy_source("test.cedar", policies)
        .open()
    {
        Ok(authority) => (authority, dir),
        Err(error) => panic!("cannot open the test authority: {error}"),
    }
}

//! Starting the real `haltstate` binary, shared by the tests that run it as a process.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use haltstate_authority::{Authority, Role};
use haltstate_testkit::ServeProcess;
use tempfile::TempDir;

/// A fresh database in its own directory, a policy file beside it, and an agent key of tenant `acme`.
pub struct Setup {
    pub dir: TempDir,
    pub db: PathBuf,
    pub policy: PathBuf,
    pub key: String,
}

/// Writes `policy_source` and creates the key; the authority used for it is closed before this returns, so the
/// server started next is the file's only writer.
pub fn setup(policy_source: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (db, policy) = (dir.path().join("hs.db"), dir.path().join("p.cedar"));
    std::fs::write(&policy, policy_source).unwrap();
    let key = Authority::builder(&db)
        .open()
        .unwrap()
        .create_key("acme", "load", Role::Agent)
        .wait()
        .unwrap()
        .secret;
    Setup {
        dir,
        db,
        policy,
        key,
    }
}

/// Runs this crate's `haltstate serve` on `db` and `policy` with `extra` arguments, on a free port.
pub fn serve(db: &Path, policy: &Path, extra: &[&str]) -> ServeProcess {
    ServeProcess::start(
        Path::new(env!("CARGO_BIN_EXE_haltstate")),
        db,
        policy,
        extra,
    )
}

/// [`serve`] on `listen` (to come back on the port a killed server used).
pub fn serve_on(db: &Path, policy: &Path, listen: &str) -> ServeProcess {
    ServeProcess::start_on(
        Path::new(env!("CARGO_BIN_EXE_haltstate")),
        db,
        policy,
        listen,
        &[],
    )
}

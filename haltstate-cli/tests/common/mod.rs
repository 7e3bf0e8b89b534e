//! Starting the real `haltstate` binary, shared by the tests that run it as a process.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use haltstate_authority::{Authority, Role};
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

/// Runs `haltstate serve` on `db` and `policy`, listening on `listen` (`127.0.0.1:0` for any port), and answers
/// the process and its base URL once it prints where it listens.
pub fn serve(db: &Path, policy: &Path, listen: &str) -> (Child, String) {
    serve_with(db, policy, listen, &[])
}

/// [`serve`] with more `serve` arguments.
pub fn serve_with(db: &Path, policy: &Path, listen: &str, extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_haltstate"))
        .args([
            "serve",
            "--db",
            db.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
            "--listen",
            listen,
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected: {line:?}"))
        .to_owned();
    (child, base)
}

//! Starting the real `haltstate` binary, shared by the tests that run it as a process.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

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

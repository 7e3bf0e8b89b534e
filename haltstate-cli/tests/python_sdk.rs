//! Conformance: the official HaltState Python SDK 0.7.0, unmodified, against our server.
//!
//! The test makes a venv under `target/` (once; later runs reuse it) and installs the PyPI package
//! `haltstate-sdk==0.7.0`. When that cannot be done the test fails and says why: it never skips.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use haltstate_authority::{Authority, Outcome};
use haltstate_testkit::{outcomes, policies};

const SDK: &str = "haltstate-sdk==0.7.0";

const POLICY: &str = policies::REFUNDS;

/// The venv's python, with the SDK installed (once; later runs reuse it).
fn python_with_sdk() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-haltstate-sdk-0.7.0");
    haltstate_testkit::python::venv_with(&venv, SDK, "haltstate, janus")
}

#[test]
fn official_python_sdk_0_7_0_works_against_our_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hs.db");
    conformance(&dir, db.to_str().unwrap());
}

#[test]
fn official_python_sdk_0_7_0_works_against_our_server_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let url = haltstate_testkit::postgres::test_database();
    conformance(&dir, &url);
}

/// Runs the SDK's conformance script against `haltstate serve --db db_arg` (a file or a PostgreSQL URL).
fn conformance(dir: &tempfile::TempDir, db_arg: &str) {
    let python = python_with_sdk();
    let policy = dir.path().join("p.cedar");
    std::fs::write(&policy, POLICY).unwrap();
    let bin = env!("CARGO_BIN_EXE_haltstate");
    let key = Command::new(bin)
        .args([
            "keys",
            "create",
            "--db",
            db_arg,
            "--tenant",
            "acme",
            "--name",
            "billing-agent",
            "--role",
            "agent",
        ])
        .output()
        .unwrap();
    assert!(key.status.success());
    let key = String::from_utf8(key.stdout).unwrap().trim().to_owned();

    let mut server = common::serve(Path::new(db_arg), &policy, &[]);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/conformance.py");
    let run = Command::new(&python)
        .arg(&script)
        .env("HS_BASE", server.base_url())
        .env("HS_TENANT", "acme")
        .env("HS_AGENT_KEY", &key)
        .env("HS_BIN", bin)
        .env("HS_DB", db_arg)
        .output()
        .unwrap();
    server.kill();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the Python SDK run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.trim_end().ends_with("CONFORMANCE OK 13"), "{stdout}");

    // What the SDK reported after its blocks reached the ledger, and the chain holds.
    let authority = Authority::builder(db_arg).open().unwrap();
    let outcomes = |key: &str| outcomes(&authority, "acme", key);
    assert_eq!(outcomes("py:small"), vec![Outcome::Success]);
    assert_eq!(outcomes("py:big"), vec![Outcome::Success]);
    assert!(outcomes("py:reject").is_empty());
    authority.verify_ledger().unwrap();
}

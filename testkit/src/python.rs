//! A Python venv with one pinned PyPI requirement, for the tests that drive an official Python client: made once
//! under `target/`, reused while it still imports what it should. A machine without python3's venv or pip, or
//! without PyPI, fails the test that asked, loudly.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Two pip installs into one venv at once break each other (seen in CI: pip's own assertion on a `.pyc` the other
/// install removed), so the tests of one process install one at a time.
static INSTALLING: Mutex<()> = Mutex::new(());

/// The python of the venv at `venv`, with `requirement` (`name==version`) installed and `imports` (a Python
/// `import` list, `haltstate, janus`) importable.
///
/// # Panics
/// When the venv cannot be made or the requirement installed.
pub fn venv_with(venv: &Path, requirement: &str, imports: &str) -> PathBuf {
    let _one_at_a_time = INSTALLING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let python = venv.join("bin/python");
    let stamp = venv.join("installed.txt");
    let ready = || {
        std::fs::read_to_string(&stamp).is_ok_and(|found| found == requirement)
            && Command::new(&python)
                .args(["-c", &format!("import {imports}")])
                .status()
                .is_ok_and(|s| s.success())
    };
    if ready() {
        return python;
    }
    let run = |command: &mut Command, what: &str| {
        let out = command.output().unwrap_or_else(|e| {
            panic!("{what}: cannot run: {e} (the test needs python3 with venv and pip; Debian: python3-venv)")
        });
        assert!(
            out.status.success(),
            "{what} failed; the test needs python3 with venv and pip, and PyPI:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(venv),
        "python3 -m venv",
    );
    run(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            requirement,
        ]),
        &format!("pip install {requirement}"),
    );
    std::fs::write(&stamp, requirement).unwrap_or_else(|e| panic!("{}: {e}", stamp.display()));
    assert!(
        ready(),
        "{requirement} installed but `import {imports}` fails"
    );
    python
}

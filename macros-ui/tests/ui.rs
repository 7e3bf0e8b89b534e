//! Compile-time behaviour of the guard macros: the errors users get point at their own code.
//!
//! The compile-fail cases compare rustc's messages with pinned `.stderr` files, and those messages change
//! between compiler releases. They are checked on the toolchain they were pinned on ([`PINNED_RUSTC`]); on any
//! other the pass cases still run and the test says, loudly, that the messages were not compared. After an
//! upgrade: `TRYBUILD=overwrite cargo test -p haltstate-macros-ui`, read the diff, and move the pin.

/// The `rustc` minor release the `.stderr` files were written by.
const PINNED_RUSTC: &str = "rustc 1.95.";

fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default()
}

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    let version = rustc_version();
    if version.starts_with(PINNED_RUSTC) {
        cases.compile_fail("tests/ui/fail/*.rs");
    } else {
        eprintln!(
            "WARNING: the compile-fail messages are pinned on {PINNED_RUSTC}x and this is {version:?}: they were \
             NOT compared. Regenerate them with TRYBUILD=overwrite and move PINNED_RUSTC."
        );
    }
    cases.pass("tests/ui/pass/*.rs");
}

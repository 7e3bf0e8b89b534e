//! Compile-time behaviour of the guard macros: the errors users get point at their own code.
//! The stderr files are pinned for the toolchain in use; regenerate with `TRYBUILD=overwrite` after an upgrade.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}

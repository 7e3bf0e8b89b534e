//! Installing what a test needs from Debian's packages: when it is missing and this process may (root, with
//! apt-get); otherwise an error saying which command would, for the test to fail loudly with.

use std::path::Path;
use std::process::Command;

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Installs `packages` for `why` (a phrase: "the console tests") unless `present()` already holds; `present()`
/// must hold afterwards.
pub fn ensure(why: &str, packages: &[&str], present: impl Fn() -> bool) -> Result<(), String> {
    if present() {
        return Ok(());
    }
    let command = format!(
        "apt-get update && apt-get install -y {}",
        packages.join(" ")
    );
    if !is_root() || !Path::new("/usr/bin/apt-get").exists() {
        return Err(format!(
            "{why} need {}; install with `{command}` (as root)",
            packages.join(" ")
        ));
    }
    eprintln!("installing for {why}: {command}");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {} >/dev/null",
            packages.join(" ")
        ))
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if status.success() && present() {
        Ok(())
    } else {
        Err(format!("`{command}` failed ({status})"))
    }
}

/// Whether `program` runs (`program --version`, or any exit at all).
pub fn runs(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok()
}

//! The real `haltstate` binary, serving: started on a free port, its address read from its first line, its
//! log kept in a file the test can wait on, killed when dropped.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::eventually;

/// A running `haltstate serve`.
#[derive(Debug)]
pub struct ServeProcess {
    child: Child,
    base: String,
    log: PathBuf,
}

impl ServeProcess {
    /// Runs `bin serve --db db --policy policy --listen 127.0.0.1:0 extra..`, logging at `info` to a file beside
    /// the policy. `db` is a file path or a PostgreSQL URL.
    pub fn start(bin: &Path, db: impl AsRef<OsStr>, policy: &Path, extra: &[&str]) -> Self {
        Self::start_on(bin, db, policy, "127.0.0.1:0", extra)
    }

    /// The same on `listen` (to restart on a port a previous process used).
    pub fn start_on(
        bin: &Path,
        db: impl AsRef<OsStr>,
        policy: &Path,
        listen: &str,
        extra: &[&str],
    ) -> Self {
        // One log per process started, even for several on one database in one test.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let log = policy.with_file_name(format!("serve-{}-{n}.log", std::process::id()));
        let log_file = match std::fs::File::create(&log) {
            Ok(file) => file,
            Err(error) => panic!("cannot create {}: {error}", log.display()),
        };
        let spawned = Command::new(bin)
            .arg("serve")
            .arg("--db")
            .arg(db.as_ref())
            .arg("--policy")
            .arg(policy)
            .args(["--listen", listen])
            .args(extra)
            .env("RUST_LOG", "haltstate=info,haltstate_server=info,warn")
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) => panic!("cannot start {}: {error}", bin.display()),
        };
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        let Some(base) = line.trim().strip_prefix("listening on ").map(str::to_owned) else {
            let _ = child.kill();
            let logged = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("the server did not start: {line:?}\n{logged}");
        };
        Self { child, base, log }
    }

    /// `http://127.0.0.1:port`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `127.0.0.1:port`.
    pub fn listen_addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until its log holds `needle` `times` times (the proof that something happened in it).
    pub fn wait_for_log(&self, needle: &str, times: usize, within: Duration) {
        eventually(&format!("{needle:?} logged {times} times"), within, || {
            (self.log().matches(needle).count() >= times).then_some(())
        });
    }

    /// Sends it a signal (`TERM`, `HUP`, `KILL`).
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -{name} failed");
    }

    /// Kills it with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        if let Err(error) = self.child.kill() {
            panic!("cannot kill the server: {error}");
        }
        let _ = self.child.wait();
    }

    /// Waits for it to exit within `within`; `None` when it did not.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

//! A real PostgreSQL server for tests, started from the distribution's own binaries (`initdb`, `pg_ctl`) on a
//! data directory under `target/pg-test/`, on a free loopback port, and stopped when the test process exits.
//!
//! When the server package is missing it is installed (`apt-get install postgresql`) if this process may (root,
//! on Debian); otherwise the test fails saying how to install it. Never a silent skip.
//!
//! Most tests share one server per test process ([`PgServer::shared`]) and get a fresh database each
//! ([`test_database`]); a test that restarts or stops the server starts its own ([`PgServer::start`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// A running PostgreSQL server owned by this test process.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// The account the server runs as: `postgres` when the tests run as root (initdb refuses root).
    run_as: Option<String>,
    /// Server settings beyond the defaults (`-c name=value ...`), e.g. TLS.
    extra_options: String,
}

/// A server that speaks TLS only ([`PgServer::start_tls`]): its certificate and key, the CA its clients'
/// certificates must chain to, and the `pg_hba.conf` it runs with (`hostssl` lines only, for a test of TLS).
#[derive(Debug, Clone)]
pub struct PgTls {
    /// The server's certificate chain, PEM.
    pub cert_pem: String,
    /// The server's private key, PEM.
    pub key_pem: String,
    /// The CA that signs client certificates, PEM.
    pub client_ca_pem: String,
    /// The whole `pg_hba.conf`.
    pub hba: String,
}

/// The newest installed server's binaries (`/usr/lib/postgresql/<version>/bin`).
fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The server's binaries, installed once per test process (two installs at once would fight over dpkg's lock).
fn install() -> Result<PathBuf, String> {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    INSTALLED.get_or_init(install_once).clone()
}

fn install_once() -> Result<PathBuf, String> {
    crate::apt::ensure("the tests on PostgreSQL", &["postgresql"], || {
        find_bin().is_some()
    })?;
    find_bin().ok_or_else(|| "PostgreSQL was installed but no initdb was found".to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Where test servers keep their data: `target/pg-test/<pid>-<n>/`. Servers of finished test processes are
/// stopped and their directories removed (their watchdog normally does it; this catches the ones it missed).
fn base_dir(bin: &Path) -> PathBuf {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pg-test");
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.split('-').next()?.parse::<u32>().ok());
            if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                let stale = PgServer {
                    bin: bin.to_owned(),
                    dir: entry.path(),
                    port: 0,
                    run_as: crate::apt::is_root().then(|| "postgres".to_owned()),
                    extra_options: String::new(),
                };
                // Dropping it stops any server still running there and removes the directory.
                drop(stale);
            }
        }
    }
    base
}

impl PgServer {
    /// Starts a server of this test process's own (stopped when dropped, or when the process exits).
    ///
    /// # Panics
    /// When no server can be installed or started: the test fails loudly, naming the cause.
    pub fn start() -> PgServer {
        match Self::try_start(None) {
            Ok(server) => server,
            Err(why) => panic!("cannot start PostgreSQL for the tests: {why}"),
        }
    }

    /// Starts a server of this test process's own that serves TLS with `tls`'s certificate and accepts
    /// connections only as its `pg_hba.conf` says.
    ///
    /// # Panics
    /// When no server can be installed or started.
    pub fn start_tls(tls: &PgTls) -> PgServer {
        match Self::try_start(Some(tls)) {
            Ok(server) => server,
            Err(why) => panic!("cannot start PostgreSQL with TLS for the tests: {why}"),
        }
    }

    /// The server all tests of this process share.
    pub fn shared() -> &'static PgServer {
        static SHARED: OnceLock<PgServer> = OnceLock::new();
        SHARED.get_or_init(PgServer::start)
    }

    fn try_start(tls: Option<&PgTls>) -> Result<PgServer, String> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let bin = install()?;
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = base_dir(&bin).join(format!("{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run")).map_err(|e| format!("{}: {e}", dir.display()))?;
        let run_as = crate::apt::is_root().then(|| "postgres".to_owned());
        if let Some(user) = &run_as {
            let status = Command::new("chown")
                .args(["-R", &format!("{user}:"), &dir.display().to_string()])
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err(format!("cannot give {} to {user}", dir.display()));
            }
        }
        let extra_options = if tls.is_some() {
            " -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c ssl_ca_file=client-ca.crt"
                .to_owned()
        } else {
            String::new()
        };
        let server = PgServer {
            bin,
            dir,
            port: free_port(),
            run_as,
            extra_options,
        };
        server.run(
            "initdb",
            &[
                "-D",
                &server.data().display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        if let Some(tls) = tls {
            server.write_tls(tls)?;
        }
        server.pg_ctl(&["start"])?;
        server.watch_this_process()?;
        Ok(server)
    }

    /// Puts the certificates and `pg_hba.conf` in the data directory, owned by the server's account (the
    /// server refuses a key others can read).
    fn write_tls(&self, tls: &PgTls) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let data = self.data();
        for (name, contents) in [
            ("server.crt", &tls.cert_pem),
            ("server.key", &tls.key_pem),
            ("client-ca.crt", &tls.client_ca_pem),
            ("pg_hba.conf", &tls.hba),
        ] {
            let path = data.join(name);
            std::fs::write(&path, contents).map_err(|e| format!("{}: {e}", path.display()))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if let Some(user) = &self.run_as {
                let status = Command::new("chown")
                    .args([&format!("{user}:"), &path.display().to_string()])
                    .status()
                    .map_err(|e| format!("chown: {e}"))?;
                if !status.success() {
                    return Err(format!("cannot give {} to {user}", path.display()));
                }
            }
        }
        Ok(())
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs one of the server's programs as the server's account; its output goes to a log beside the data.
    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bin.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("setpriv");
                c.args([
                    &format!("--reuid={user}"),
                    &format!("--regid={user}"),
                    "--init-groups",
                    "--",
                ])
                .arg(&program);
                c
            }
            None => Command::new(&program),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("tools.log"))
            .map_err(|e| e.to_string())?;
        let status = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .status()
            .map_err(|e| format!("{}: {e}", program.display()))?;
        if status.success() {
            Ok(())
        } else {
            let log = std::fs::read_to_string(self.dir.join("tools.log")).unwrap_or_default();
            Err(format!(
                "{} {args:?} failed ({status}):\n{log}",
                program.display()
            ))
        }
    }

    fn pg_ctl(&self, action: &[&str]) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off \
             -c full_page_writes=off -c shared_buffers=64MB{}",
            self.port,
            self.dir.join("run").display(),
            self.extra_options
        );
        let data = self.data().display().to_string();
        let log = self.dir.join("server.log").display().to_string();
        let mut args = vec!["-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options];
        args.extend_from_slice(action);
        self.run("pg_ctl", &args)
    }

    /// Stops the server when this test process exits, however it exits (a panic that aborts, a signal).
    fn watch_this_process(&self) -> Result<(), String> {
        let stop = format!(
            "{} -D {} stop -m immediate",
            self.bin.join("pg_ctl").display(),
            self.data().display()
        );
        let stop = match &self.run_as {
            Some(user) => format!("setpriv --reuid={user} --regid={user} --init-groups -- {stop}"),
            None => stop,
        };
        // Polls the parent once a second; nothing else notices a process that is gone without running its code.
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(drop)
            .map_err(|e| format!("cannot start the server's watchdog: {e}"))
    }

    /// One of the server distribution's programs (`pg_dump`, `pg_restore`, `psql`), matching the server's version.
    pub fn program(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// The directory of its Unix socket (a `host=` for a connection that needs no TCP, e.g. to a TLS-only server).
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for `database` as the superuser `postgres`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database with a fresh name; answers its URL.
    pub fn create_database(&self) -> String {
        let name = format!("t_{}", uuid_like());
        let mut client = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL: {e}"));
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
        self.url(&name)
    }

    /// Stops the server (fast: connections are closed), for tests of a database that goes away.
    pub fn stop(&self) {
        if let Err(why) = self.pg_ctl(&["stop", "-m", "fast"]) {
            panic!("cannot stop the test PostgreSQL: {why}");
        }
    }

    /// Starts it again after [`stop`](Self::stop), on the same port and data.
    pub fn start_again(&self) {
        if let Err(why) = self.pg_ctl(&["start"]) {
            panic!("cannot restart the test PostgreSQL: {why}");
        }
    }

    /// Kills the server's processes without a shutdown (as a crash would), then starts it again.
    pub fn crash_and_restart(&self) {
        let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
        self.start_again();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self.run("pg_ctl", &["-D", &data, "stop", "-m", "immediate"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// A fresh database on the shared server: its URL.
pub fn test_database() -> String {
    PgServer::shared().create_database()
}

/// Which backend the authority tests run on: `HALTSTATE_TEST_BACKEND=postgres` or (default) `sqlite`.
///
/// # Panics
/// On any other value: a typo must not quietly run the SQLite suite twice.
pub fn backend() -> Backend {
    match std::env::var("HALTSTATE_TEST_BACKEND").as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => Backend::Sqlite,
        Ok("postgres") => Backend::Postgres,
        Ok(other) => panic!("HALTSTATE_TEST_BACKEND={other:?}: expected `sqlite` or `postgres`"),
    }
}

/// A storage backend the suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// A database for one test on `backend`: a file in `dir`, or a fresh PostgreSQL database.
pub fn database_for(backend: Backend, dir: &Path) -> haltstate_authority::Database {
    match backend {
        Backend::Sqlite => haltstate_authority::Database::Sqlite(dir.join("haltstate.db")),
        Backend::Postgres => haltstate_authority::Database::parse(&test_database()),
    }
}

//! Configuring and opening an [`Authority`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{Authority, DEFAULT_APPROVAL_TTL, DEFAULT_LEASE, Inner};
use crate::clock::{Clock, SystemClock};
use crate::error::{AuthorityError, Result};
use crate::key_cache::KeyCache;
use crate::policy::PolicyEngine;
use crate::rules::Windows;
use crate::store::Durability;
use crate::store::job::WriterCounters;
use crate::store::sqlite::{self, SqliteReads, SqliteRunner};
use crate::store::writer::Writer;

/// Configures and opens an [`Authority`].
#[derive(Debug)]
pub struct AuthorityBuilder {
    db_path: PathBuf,
    policy_file: Option<PathBuf>,
    policy_source: Option<(String, String)>,
    approval_ttl: Duration,
    lease: Duration,
    clock: Arc<dyn Clock>,
    durability: Durability,
    checkpoint_pages: u32,
}

impl AuthorityBuilder {
    pub(super) fn new(db_path: PathBuf) -> Self {
        Self {
            db_path,
            policy_file: None,
            policy_source: None,
            approval_ttl: DEFAULT_APPROVAL_TTL,
            lease: DEFAULT_LEASE,
            clock: Arc::new(SystemClock),
            durability: Durability::Full,
            checkpoint_pages: sqlite::DEFAULT_CHECKPOINT_PAGES,
        }
    }

    /// Loads policies from this Cedar file (and [`Authority::reload_policies`] re-reads it).
    pub fn policy_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.policy_file = Some(path.into());
        self
    }

    /// Uses these policies; `name` appears in diagnostics.
    pub fn policy_source(mut self, name: impl Into<String>, source: impl Into<String>) -> Self {
        self.policy_source = Some((name.into(), source.into()));
        self
    }

    /// How long an approval stays decidable (default 24 h).
    pub fn approval_ttl(mut self, ttl: Duration) -> Self {
        self.approval_ttl = ttl;
        self
    }

    /// How long a claim lasts before another worker may re-claim (default 5 min).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Where the authority reads the time (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How hard commits work to survive a crash (default: fsync every commit).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How many pages the write-ahead log may hold before a commit copies them into the database (default
    /// [`DEFAULT_CHECKPOINT_PAGES`](crate::DEFAULT_CHECKPOINT_PAGES), about 40 MB). Lower keeps the `-wal` file
    /// smaller at some throughput; every acknowledged change is durable either way.
    pub fn checkpoint_pages(mut self, pages: u32) -> Self {
        self.checkpoint_pages = pages;
        self
    }

    /// Opens (creating or migrating) the database and loads the policies.
    ///
    /// With no policy configured every decision is DENY; that suits an operator tool that only approves,
    /// flips the kill switch or verifies the ledger.
    pub fn open(self) -> Result<Authority> {
        let policies = match (&self.policy_file, &self.policy_source) {
            (Some(path), _) => PolicyEngine::from_file(path)?,
            (None, Some((name, source))) => PolicyEngine::from_source(name, source)?,
            (None, None) => PolicyEngine::empty(),
        };
        let conn = sqlite::open_writer(&self.db_path, self.durability, self.checkpoint_pages)?;
        let counters = Arc::new(WriterCounters::default());
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let runner = SqliteRunner::new(conn, self.clock.clone(), counters.clone(), events.clone());
        let writer = Writer::new(Box::new(runner));
        let thread = {
            let writer = writer.clone();
            std::thread::Builder::new()
                .name("haltstate-writer".into())
                .spawn(move || writer.run())
                .map_err(|e| {
                    AuthorityError::CommitFailed(format!("cannot start the writer thread: {e}"))
                })?
        };
        Ok(Authority {
            inner: Arc::new(Inner {
                policies,
                policy_file: self.policy_file,
                reads: Arc::new(SqliteReads::new(self.db_path.clone())),
                db_path: self.db_path,
                writer,
                writer_thread: Some(thread),
                clock: self.clock,
                windows: Windows {
                    approval_ttl: self.approval_ttl,
                    lease: self.lease,
                },
                counters,
                events,
                key_cache: Arc::new(KeyCache::default()),
            }),
        })
    }
}

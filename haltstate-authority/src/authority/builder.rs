//! Configuring and opening an [`Authority`].

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::{
    Authority, DEFAULT_APPROVAL_ATTEMPTS, DEFAULT_APPROVAL_TTL, DEFAULT_LEASE,
    DEFAULT_MAX_PENDING_PER_AGENT, DEFAULT_MAX_PENDING_PER_TENANT, Inner,
};
use crate::clock::{Clock, SystemClock};
use crate::database::Database;
use crate::error::Result;
use crate::key_cache::KeyCache;
use crate::policy::PolicyEngine;
use crate::rules::Windows;
use crate::store::Durability;
use crate::store::job::{Runner, WriterCounters};
use crate::store::sqlite::{self, SqliteReads, SqliteRunner, WalBound};
use crate::store::tx::Reads;
use crate::store::writers::Writers;

/// Configures and opens an [`Authority`].
#[derive(Debug)]
pub struct AuthorityBuilder {
    database: Database,
    policy_file: Option<PathBuf>,
    policy_source: Option<(String, String)>,
    approval_ttl: Duration,
    lease: Duration,
    approval_attempts: u32,
    refund_usage_on_error: bool,
    max_pending_per_agent: usize,
    max_pending_per_tenant: usize,
    clock: Arc<dyn Clock>,
    durability: Durability,
    checkpoint_pages: u32,
    migrate: bool,
    shadow_file: Option<PathBuf>,
    keyring: crate::webhooks::Keyring,
    log_prefix: String,
    /// Set by [`postgres_writers`](AuthorityBuilder::postgres_writers); `None` is the backend's default.
    writers: Option<NonZeroUsize>,
}

/// How many connections write to PostgreSQL unless [`AuthorityBuilder::postgres_writers`] says otherwise.
pub const DEFAULT_POSTGRES_WRITERS: usize = 4;

/// The most connections that may write to PostgreSQL from one authority.
pub const MAX_POSTGRES_WRITERS: usize = 64;

/// The default prefix of each tenant's log name (`haltstate/<tenant>`).
pub const DEFAULT_LOG_PREFIX: &str = "haltstate";

impl AuthorityBuilder {
    pub(super) fn new(database: Database) -> Self {
        Self {
            database,
            policy_file: None,
            policy_source: None,
            approval_ttl: DEFAULT_APPROVAL_TTL,
            lease: DEFAULT_LEASE,
            approval_attempts: DEFAULT_APPROVAL_ATTEMPTS,
            refund_usage_on_error: false,
            max_pending_per_agent: DEFAULT_MAX_PENDING_PER_AGENT,
            max_pending_per_tenant: DEFAULT_MAX_PENDING_PER_TENANT,
            clock: Arc::new(SystemClock),
            durability: Durability::Full,
            migrate: true,
            shadow_file: None,
            checkpoint_pages: sqlite::DEFAULT_CHECKPOINT_PAGES,
            keyring: crate::webhooks::Keyring::default(),
            log_prefix: DEFAULT_LOG_PREFIX.to_owned(),
            writers: None,
        }
    }

    /// The prefix of each tenant's log name, the origin line of its signed tree heads: `<prefix>/<tenant>`
    /// (default `haltstate`). A name the world can tell apart from other logs, such as `ledger.example.com`, lets
    /// witnesses and monitors watch it; it must hold no spaces and no `+`.
    pub fn log_origin_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.log_prefix = prefix.into();
        self
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

    /// How many claims one approval grants (default 3): its run, and retries after an error or a lapsed lease.
    /// Past it a guard of the key is decided by policy again, which asks a human again: an approval authorises
    /// a bounded number of runs, never as many as the agent likes (an agent could act, report `error`, and run
    /// again). At least 1.
    pub fn approval_attempts(mut self, attempts: u32) -> Self {
        self.approval_attempts = attempts.max(1);
        self
    }

    /// Whether an `error` (or aborted, panicked, cancelled) outcome gives the usage its claim was charged back
    /// (default no: the body may have acted before it failed, and an agent reporting every run as an error would
    /// never be counted). A retry of the same key is charged once either way.
    pub fn refund_usage_on_error(mut self, refund: bool) -> Self {
        self.refund_usage_on_error = refund;
        self
    }

    /// How many approvals one agent may have waiting for a decision at once (default 50). Past it, its requests
    /// that need a human are denied until some are decided or expire: one agent (or whoever holds its key) cannot
    /// bury other agents' requests in the approvers' inbox. At least 1.
    pub fn max_pending_approvals_per_agent(mut self, max: usize) -> Self {
        self.max_pending_per_agent = max.max(1);
        self
    }

    /// How many approvals one tenant may have waiting at once (default 500, as many as the console's inbox shows).
    /// Past it, requests that need a human are denied: no waiting request is ever below the inbox's fold, however
    /// many agents a key may act as. At least 1.
    pub fn max_pending_approvals_per_tenant(mut self, max: usize) -> Self {
        self.max_pending_per_tenant = max.max(1);
        self
    }

    /// Seals webhook secrets at rest with `keyring`'s current key, and opens what any of its keys sealed (see
    /// [`webhooks::Keyring`](crate::webhooks::Keyring)). Without one, secrets are stored as they are.
    pub fn secrets_keys(mut self, keyring: crate::webhooks::Keyring) -> Self {
        self.keyring = keyring;
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
    /// [`DEFAULT_CHECKPOINT_PAGES`](crate::DEFAULT_CHECKPOINT_PAGES), about 20 MB of 2 KiB pages; 40 MB in an older
    /// file with 4 KiB pages). Lower keeps the `-wal` file smaller at some throughput; every acknowledged change is
    /// durable either way.
    pub fn checkpoint_pages(mut self, pages: u32) -> Self {
        self.checkpoint_pages = pages;
        self
    }

    /// Decides every action under the policies of `path` too, beside the live set, and records what they would
    /// have decided (never enforced); [`Authority::reload_policies`] re-reads it.
    pub fn shadow_policy_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.shadow_file = Some(path.into());
        self
    }

    /// Whether opening creates or migrates the schema (default yes). Without, a database at another schema
    /// version is refused ([`SchemaTooOld`](crate::AuthorityError::SchemaTooOld),
    /// [`SchemaTooNew`](crate::AuthorityError::SchemaTooNew)) and a missing one is not created: for tools that
    /// read a deployment's database and must not change it.
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// How many connections write to PostgreSQL (default [`DEFAULT_POSTGRES_WRITERS`], at most
    /// [`MAX_POSTGRES_WRITERS`]), each for a share of the tenants: one connection commits one transaction at a
    /// time, so an instance serving many tenants needs several to commit them side by side. One tenant's
    /// operations always go through one of them, in the order they were queued. A SQLite database has one writer:
    /// more than one is refused when the authority opens.
    ///
    /// ```
    /// # use std::num::NonZeroUsize;
    /// # use haltstate_authority::Authority;
    /// # let dir = tempfile::tempdir()?;
    /// let one = NonZeroUsize::MIN;
    /// let authority = Authority::builder(dir.path().join("hs.db")).postgres_writers(one).open()?;
    /// # drop(authority);
    /// let two = NonZeroUsize::new(2).expect("two is not zero");
    /// assert!(Authority::builder(dir.path().join("hs.db")).postgres_writers(two).open().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn postgres_writers(mut self, writers: NonZeroUsize) -> Self {
        self.writers = Some(writers);
        self
    }

    fn open_storage(
        &self,
        counters: Arc<WriterCounters>,
        events: tokio::sync::broadcast::Sender<crate::approval_event::ApprovalEvent>,
    ) -> Result<Storage> {
        match &self.database {
            Database::Sqlite(path) => {
                if !self.migrate {
                    // Refuses a missing file, another schema version, or a file that is not ours.
                    drop(sqlite::open_existing_read_only(path)?);
                }
                if let Some(writers) = self.writers.filter(|n| n.get() > 1) {
                    return Err(crate::RequestError::Invalid(format!(
                        "{writers} writers: a SQLite database has one writer (several need PostgreSQL)"
                    ))
                    .into());
                }
                let conn = sqlite::open_writer(path, self.durability, self.checkpoint_pages)?;
                let wal = WalBound::new(&conn, path, self.checkpoint_pages)?;
                Ok(Storage {
                    runners: vec![Box::new(
                        SqliteRunner::new(conn, self.clock.clone(), counters, events)
                            .bounding_wal(wal),
                    )],
                    reads: Arc::new(SqliteReads::new(path.clone())),
                    callers_lead: true,
                    stop_listener: None,
                })
            }
            #[cfg(feature = "postgres")]
            Database::Postgres(url) => {
                let writers = self
                    .writers
                    .map_or(DEFAULT_POSTGRES_WRITERS, NonZeroUsize::get);
                if writers > MAX_POSTGRES_WRITERS {
                    return Err(crate::RequestError::Invalid(format!(
                        "{writers} PostgreSQL writers: at most {MAX_POSTGRES_WRITERS} (each holds a connection)"
                    ))
                    .into());
                }
                let opened = crate::store::postgres::open(
                    url,
                    self.migrate,
                    writers,
                    self.clock.clone(),
                    counters,
                    events,
                )?;
                Ok(Storage {
                    runners: opened.runners,
                    reads: Arc::new(opened.reads),
                    callers_lead: false,
                    stop_listener: Some(opened.stop_listener),
                })
            }
            #[cfg(not(feature = "postgres"))]
            Database::Postgres(_) => Err(no_postgres()),
        }
    }

    /// Opens (creating or migrating) the database and loads the policies.
    ///
    /// With no policy configured every decision is DENY; that suits an operator tool that only approves,
    /// flips the kill switch or verifies the ledger.
    pub fn open(self) -> Result<Authority> {
        if !signed_note::is_key_name_valid(&self.log_prefix) || self.log_prefix.ends_with('/') {
            return Err(crate::RequestError::Invalid(format!(
                "log origin prefix {:?}: it must be non-empty, without spaces, '+' or a trailing '/'",
                self.log_prefix
            ))
            .into());
        }
        let policies = match (&self.policy_file, &self.policy_source) {
            (Some(path), _) => PolicyEngine::from_file(path)?,
            (None, Some((name, source))) => PolicyEngine::from_source(name, source)?,
            (None, None) => PolicyEngine::empty(),
        };
        if let Some(shadow) = &self.shadow_file {
            policies.set_shadow_file(shadow)?;
        }
        let counters = Arc::new(WriterCounters::default());
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let storage = self.open_storage(counters.clone(), events.clone())?;
        let writers = Writers::start(storage.runners, storage.callers_lead)?;
        Ok(Authority {
            inner: Arc::new(Inner {
                policies: Arc::new(policies),
                policy_file: self.policy_file,
                shadow_file: self.shadow_file,
                reads: storage.reads,
                database: self.database,
                stop_listener: storage.stop_listener,
                writers,
                clock: self.clock,
                windows: Windows {
                    approval_ttl: self.approval_ttl,
                    lease: self.lease,
                    approval_attempts: self.approval_attempts,
                    refund_usage_on_error: self.refund_usage_on_error,
                    max_pending_per_agent: self.max_pending_per_agent,
                    max_pending_per_tenant: self.max_pending_per_tenant,
                },
                counters,
                events,
                key_cache: Arc::new(KeyCache::default()),
                keyring: self.keyring,
                log_prefix: self.log_prefix,
            }),
        })
    }
}

/// A backend, opened.
struct Storage {
    /// One per writer.
    runners: Vec<Box<dyn Runner>>,
    reads: Arc<dyn Reads>,
    /// Whether callers' threads may run batches (see `Writer`).
    callers_lead: bool,
    stop_listener: Option<Arc<AtomicBool>>,
}

/// The error for a PostgreSQL URL in a build without the `postgres` feature.
#[cfg(not(feature = "postgres"))]
pub(crate) fn no_postgres() -> crate::error::AuthorityError {
    crate::error::AuthorityError::storage(
        "this build has no PostgreSQL support (build haltstate-authority with the `postgres` feature)",
    )
}

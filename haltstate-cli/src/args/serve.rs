//! `haltstate serve`'s flags: where and what it serves, and its limits, webhooks and signing.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use haltstate_authority::Database;
use haltstate_server::ServeLimits;

use super::database;

/// `haltstate serve`.
///
/// Every flag can also come from a `HALTSTATE_<FLAG>` variable (`--max-connections` from
/// `HALTSTATE_MAX_CONNECTIONS`) or a key of the `--config` file (`max-connections = 512`); a flag wins over its
/// variable, and a variable over the file ([`crate::config_file`]).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML file of settings: each key a flag's name without its dashes (`listen = "0.0.0.0:8787"`). Flags and
    /// HALTSTATE_* variables win over it; an unknown key is refused with its line.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the effective configuration (as a --config file, each value's source beside it, secrets masked)
    /// and exit.
    #[arg(long)]
    pub print_config: bool,
    /// How log lines are written to stderr: `text` for people, `json` for collectors (one object per line,
    /// fields as values). What is logged is set with RUST_LOG (default `haltstate=info,warn`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The database: a SQLite file (created when missing, readable by its owner only) or a PostgreSQL URL
    /// (postgres://user@host:port/dbname), migrated on start.
    #[arg(long, env = "HALTSTATE_DB", hide_env_values = true, value_parser = database)]
    pub db: Database,
    /// The Cedar policy file; reloaded on SIGHUP (a bad file keeps the old set).
    #[arg(long)]
    pub policy: PathBuf,
    /// A candidate policy file decided beside the live one: what it would decide is recorded with each
    /// decision, never enforced (see `haltstate policy shadow-report` and the console's Shadow page).
    #[arg(long)]
    pub shadow: Option<PathBuf>,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// WAL pages after which a commit copies them into the database (2 KiB each, 4 KiB in an older file). Lower
    /// keeps the `-wal` file and the slowest commits smaller, at some throughput.
    #[arg(long, default_value_t = haltstate_authority::DEFAULT_CHECKPOINT_PAGES,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub checkpoint_pages: u32,
    /// PostgreSQL: how many connections write (default 4), each for a share of the tenants, so that tenants
    /// commit side by side. One tenant's operations always go through one of them. More than one is refused on
    /// SQLite, which has one writer.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=haltstate_authority::MAX_POSTGRES_WRITERS as i64))]
    pub postgres_writers: Option<u32>,
    /// Serve Prometheus metrics (`GET /metrics`) on this address, e.g. 127.0.0.1:9464. They span every tenant,
    /// so they are not on the API's address; off unless given.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Do not serve the operators' console (`/ui`).
    #[arg(long)]
    pub no_console: bool,
    /// Claims one approval grants: its run, and retries after an error or a lapsed lease. Past it, policy decides
    /// the key again (and asks a human again).
    #[arg(long, default_value_t = haltstate_authority::DEFAULT_APPROVAL_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub approval_attempts: u32,
    /// Approvals one agent may have waiting at once; past it, a guard that needs a human is denied (one agent
    /// must not bury the others' requests in the approvers' inbox).
    #[arg(long, default_value_t = haltstate_authority::DEFAULT_MAX_PENDING_PER_AGENT as u32,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_pending_approvals_per_agent: u32,
    /// Approvals one tenant may have waiting at once, all its agents together.
    #[arg(long, default_value_t = haltstate_authority::DEFAULT_MAX_PENDING_PER_TENANT as u32,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_pending_approvals_per_tenant: u32,
    /// The key that seals webhook secrets at rest (`keys secrets create`): a file, or the key's text from the
    /// environment or a credential. Secrets stored before it, or under --secrets-key-previous, are resealed at
    /// start. Without it, webhook secrets are stored as they are (and the server warns).
    #[arg(long, hide_env_values = true)]
    pub secrets_key: Option<String>,
    /// A key secrets were sealed with before a rotation: opened with it, resealed with --secrets-key at start.
    #[arg(long, hide_env_values = true, requires = "secrets_key")]
    pub secrets_key_previous: Option<String>,
    /// Give a claim's usage back when its outcome is an error (by default it stays counted: the body may have
    /// acted before failing).
    #[arg(long)]
    pub refund_usage_on_error: bool,
    /// Before listening, the state rows are checked against the last day's evidence: at most this many of each
    /// tenant's newest records, so that a restart takes a bounded time whatever the agents wrote that day
    /// (`ledger verify` checks everything).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub start_check_records: u64,
    /// Webhook delivery.
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    /// Evidence signing.
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Connection and request limits.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// How `serve` writes its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line.
    Json,
}

/// The `serve` flags of evidence signing.
#[derive(Debug, Args)]
pub struct SigningArgs {
    /// The authority's Ed25519 signing key (`keys signing create`): every tenant's chain head is signed into a
    /// checkpoint at each --checkpoint-every. Without one the server warns that evidence is unsigned.
    #[arg(
        long,
        env = "HALTSTATE_SIGNING_KEY",
        hide_env_values = true,
        requires = "checkpoint_file"
    )]
    pub signing_key: Option<PathBuf>,
    /// Where checkpoints are appended outside the database (JSON lines; keep a copy where the database's
    /// administrators cannot write).
    #[arg(
        long,
        env = "HALTSTATE_CHECKPOINT_FILE",
        hide_env_values = true,
        requires = "signing_key"
    )]
    pub checkpoint_file: Option<PathBuf>,
    /// How often chain heads are signed.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub checkpoint_every: Duration,
    /// A witness to submit each signed tree head to, by the C2SP tlog-witness protocol (its submission prefix:
    /// `<url>/add-checkpoint` is posted, with the consistency proof from the last head it cosigned); its
    /// cosignatures are kept with the checkpoint. Repeat for several witnesses.
    #[arg(long, requires = "signing_key")]
    pub checkpoint_url: Vec<String>,
    /// Each tenant's log is named `<prefix>/<tenant>` in its signed tree heads (a name the world can tell apart
    /// from other logs, such as `ledger.example.com`, lets witnesses and monitors watch it).
    #[arg(long, env = "HALTSTATE_LOG_ORIGIN_PREFIX", default_value = haltstate_authority::DEFAULT_LOG_PREFIX)]
    pub log_origin_prefix: String,
}

/// The `serve` flags of webhook delivery.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// The address people reach the console at, for the links in webhook payloads (default: http:// and
    /// --listen).
    #[arg(long)]
    pub public_url: Option<String>,
    /// The wait before a failed delivery's first retry; each next wait doubles.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub webhook_retry_base: Duration,
    /// The longest wait between two attempts.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub webhook_retry_max: Duration,
    /// Attempts per delivery, the first included; then it is failed (and shown so in the console).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..))]
    pub webhook_attempts: u32,
    /// How long one attempt may take.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub webhook_timeout: Duration,
    /// Let webhooks and the checkpoint witness post to loopback, link-local and private addresses (refused by
    /// default, however spelt or resolved: the server's network position is not for operators to borrow).
    #[arg(long)]
    pub allow_private_targets: bool,
}

/// The `serve` flags behind [`ServeLimits`].
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// From a request's first byte to the end of its headers.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// To receive a request's body once its headers arrived (then 408).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// Connections served at once (keep it below the file descriptor limit); past it, `/healthz` and 503.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Connections one client address may hold at once (raise it to --max-connections behind a reverse proxy).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_address: u32,
    /// Open approval streams and console live views per key; past it, 429.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_key: u32,
    /// Console sessions per tenant; signing in past it ends that tenant's oldest session.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sessions_per_tenant: u32,
    /// On SIGTERM, how long in-flight requests get before the server exits anyway.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
    /// Failed authentications per minute from one client address before it gets 429.
    #[arg(long, default_value_t = NonZeroU32::MIN.saturating_add(59))]
    pub auth_failures_per_minute: NonZeroU32,
    /// Requests per second for keys without a limit of their own (default: unlimited).
    #[arg(long)]
    pub key_rate_limit: Option<NonZeroU32>,
}

impl LimitArgs {
    /// The limits these flags set.
    pub fn limits(&self) -> ServeLimits {
        ServeLimits {
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            max_connections_per_address: usize::try_from(self.max_connections_per_address)
                .unwrap_or(usize::MAX),
            max_streams_per_key: usize::try_from(self.max_streams_per_key).unwrap_or(usize::MAX),
            max_sessions_per_tenant: usize::try_from(self.max_sessions_per_tenant)
                .unwrap_or(usize::MAX),
            shutdown_timeout: self.shutdown_timeout,
            auth_failures_per_minute: self.auth_failures_per_minute,
            key_rate_limit: self.key_rate_limit,
        }
    }
}

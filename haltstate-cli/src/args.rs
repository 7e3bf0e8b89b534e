//! The command line's shape: every command, flag and help text (with an example each).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use haltstate_authority::Database;
use haltstate_server::ServeLimits;

/// The HaltState authority: serve it, and operate it.
#[derive(Debug, Parser)]
#[command(name = "haltstate", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the authority over HTTP.
    ///
    /// Example: haltstate serve --db haltstate.db --policy examples/policies/haltstate.cedar
    Serve(Box<ServeArgs>),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// List, show, approve or reject approvals.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Stop every guard of a tenant (or one agent) until resumed.
    ///
    /// Example: haltstate kill --db haltstate.db --tenant acme --agent billing-agent --as alice
    ///
    /// Example: HALTSTATE_TENANT_ID=acme HALTSTATE_API_KEY=hs_... haltstate kill --server http://127.0.0.1:8787
    Kill(KillArgs),
    /// Pause a tenant (or one agent): guards are denied until resumed.
    ///
    /// Example: haltstate pause --db haltstate.db --tenant acme --as alice
    Pause(KillArgs),
    /// Resume a killed or paused tenant (or agent).
    ///
    /// Example: haltstate resume --db haltstate.db --tenant acme --as alice
    Resume(KillArgs),
    /// Work with the evidence ledger.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Migrate or move the authority's database.
    #[command(subcommand)]
    Db(DbCommand),
    /// Export and verify proof packs: signed evidence auditors verify offline.
    #[command(subcommand)]
    Proof(ProofCommand),
    /// Webhooks: where approval and kill-switch events are posted (by `serve`), and how their deliveries went.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
}

/// `haltstate serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The database: a SQLite file (created when missing, readable by its owner only) or a PostgreSQL URL
    /// (postgres://user@host:port/dbname), migrated on start.
    #[arg(long, env = "HALTSTATE_DB", value_parser = database)]
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
    /// WAL pages after which a commit copies them into the database (about 4 KiB each). Lower keeps the
    /// `-wal` file and the slowest commits smaller, at some throughput.
    #[arg(long, default_value_t = haltstate_authority::DEFAULT_CHECKPOINT_PAGES,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub checkpoint_pages: u32,
    /// Serve Prometheus metrics (`GET /metrics`) on this address, e.g. 127.0.0.1:9464. They span every tenant,
    /// so they are not on the API's address; off unless given.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Do not serve the operators' console (`/ui`).
    #[arg(long)]
    pub no_console: bool,
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

/// The `serve` flags of evidence signing.
#[derive(Debug, Args)]
pub struct SigningArgs {
    /// The authority's Ed25519 signing key (`keys signing create`): every tenant's chain head is signed into a
    /// checkpoint at each --checkpoint-every. Without one the server warns that evidence is unsigned.
    #[arg(long, env = "HALTSTATE_SIGNING_KEY", requires = "checkpoint_file")]
    pub signing_key: Option<PathBuf>,
    /// Where checkpoints are appended outside the database (JSON lines; keep a copy where the database's
    /// administrators cannot write).
    #[arg(long, env = "HALTSTATE_CHECKPOINT_FILE", requires = "signing_key")]
    pub checkpoint_file: Option<PathBuf>,
    /// How often chain heads are signed.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub checkpoint_every: Duration,
    /// Also POST each checkpoint (JSON) to this URL: a witness the operator runs, or a webhook.
    #[arg(long, requires = "signing_key")]
    pub checkpoint_url: Option<String>,
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
            shutdown_timeout: self.shutdown_timeout,
            auth_failures_per_minute: self.auth_failures_per_minute,
            key_rate_limit: self.key_rate_limit,
        }
    }
}

/// `haltstate keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// The authority's evidence signing key.
    #[command(subcommand)]
    Signing(SigningCommand),
    /// Create a key and print it, alone, on stdout. It is shown only this once.
    ///
    /// An agent key acts as the agent its name says, or as the agents given with --agents (names, prefixes such
    /// as billing-*, or * for every agent of the tenant). An operator key is the operator its name says.
    ///
    /// Example: haltstate keys create --db haltstate.db --tenant acme --name billing-agent --role agent
    ///
    /// Example: haltstate keys create --db haltstate.db --tenant acme --name fleet --role agent --agents 'billing-*'
    Create {
        /// The database: a SQLite file (created when missing) or a PostgreSQL URL.
        #[arg(long, env = "HALTSTATE_DB", value_parser = database)]
        db: Database,
        /// The tenant the key belongs to.
        #[arg(long)]
        tenant: String,
        /// The key's name: unique among the tenant's live keys.
        #[arg(long)]
        name: String,
        /// `agent` (check, guard, report) or `operator` (approve, reject, kill switch, evidence, keys).
        #[arg(long, value_enum)]
        role: RoleArg,
        /// For an agent key: the agents it may act as, comma-separated (name, prefix*, or *).
        #[arg(long, value_delimiter = ',')]
        agents: Vec<String>,
        /// Requests per second this key may make.
        #[arg(long)]
        rate_limit: Option<NonZeroU32>,
    },
    /// List the tenant's keys (never their secrets).
    ///
    /// Example: haltstate keys list --db haltstate.db --tenant acme
    List {
        /// Where to act.
        #[command(flatten)]
        target: Target,
        /// Include revoked keys.
        #[arg(long)]
        all: bool,
    },
    /// Revoke a key: it authenticates nothing from now on, and its approval streams end.
    ///
    /// Example: haltstate keys revoke key_0123456789abcdef --db haltstate.db --tenant acme
    Revoke {
        /// The key id (`key_...`, from `keys list`).
        id: String,
        /// Where to act.
        #[command(flatten)]
        target: Target,
    },
}

/// A key's role.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Check, guard, report.
    Agent,
    /// Approve, reject, flip the kill switch, read evidence, manage keys.
    Operator,
}

/// Where an operator command acts: on the SQLite file, or through a running server's operator API.
#[derive(Debug, Args)]
pub struct Target {
    /// Work on this database directly, a SQLite file or a PostgreSQL URL (safe while the app runs).
    #[arg(
        long,
        env = "HALTSTATE_DB",
        value_parser = database,
        conflicts_with = "server",
        required_unless_present = "server"
    )]
    pub db: Option<Database>,
    /// Work through this server's operator API, with the operator key in HALTSTATE_TENANT_ID and
    /// HALTSTATE_API_KEY.
    #[arg(long)]
    pub server: Option<String>,
    /// The tenant (with --server, defaults to HALTSTATE_TENANT_ID).
    #[arg(long, required_unless_present = "server")]
    pub tenant: Option<String>,
}

/// `haltstate approvals ...`.
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List approvals, newest first.
    ///
    /// Example: haltstate approvals list --db haltstate.db --tenant acme --status pending
    List {
        /// Where to act.
        #[command(flatten)]
        target: Target,
        /// Only approvals in this status.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one approval as JSON.
    ///
    /// Example: haltstate approvals show apr_0123 --db haltstate.db --tenant acme
    Show {
        /// The approval id (`apr_...`).
        id: String,
        /// Where to act.
        #[command(flatten)]
        target: Target,
    },
    /// Approve a pending approval.
    ///
    /// Example: haltstate approvals approve apr_0123 --db haltstate.db --tenant acme --as alice --reason "verified"
    ///
    /// Example: haltstate approvals approve apr_0123 --server http://127.0.0.1:8787
    Approve(Decide),
    /// Reject a pending approval.
    ///
    /// Example: haltstate approvals reject apr_0123 --db haltstate.db --tenant acme --as alice --reason "fraud"
    Reject(Decide),
}

/// An approval status to filter on.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    /// Waiting for a human.
    Pending,
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
    /// Nobody decided in time.
    Expired,
}

/// Approve or reject.
#[derive(Debug, Args)]
pub struct Decide {
    /// The approval id (`apr_...`).
    pub id: String,
    /// Where to act.
    #[command(flatten)]
    pub target: Target,
    /// Why; recorded on the approval and the ledger.
    #[arg(long)]
    pub reason: Option<String>,
    /// Who decides (never the requesting agent). Required with --db, where it is recorded with `via: cli`; with
    /// --server the operator is the key's own, and --as may only repeat it.
    #[arg(long = "as")]
    pub approver: Option<String>,
}

/// Kill, pause or resume.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Where to act.
    #[command(flatten)]
    pub target: Target,
    /// Only this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// Who flips the switch: required with --db (recorded with `via: cli`); with --server, the key's operator.
    #[arg(long = "as")]
    pub actor: Option<String>,
}

/// `haltstate ledger ...`.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Recompute every tenant's hash chain, reading only: exit 0 with the record count and each chain's head, 2
    /// naming the tenant and first broken record, 1 when the database is not a HaltState database.
    ///
    /// Example: haltstate ledger verify --db haltstate.db
    Verify {
        /// The authority's database: a SQLite file (read only) or a PostgreSQL URL.
        #[arg(long, env = "HALTSTATE_DB", value_parser = database)]
        db: Database,
        /// Also check the chains against these signed checkpoints (the file `serve --checkpoint-file` or
        /// `ledger checkpoint` writes): catches a rewrite of every hash after an edit, and a truncation.
        #[arg(long, requires = "public_key")]
        checkpoints: Option<PathBuf>,
        /// The public key the checkpoints must be signed with (`ed25519:...`, from `keys signing public`).
        #[arg(long, requires = "checkpoints")]
        public_key: Option<String>,
    },
    /// Sign every tenant's chain head now, store the checkpoints and append them to the checkpoint file.
    ///
    /// Example: haltstate ledger checkpoint --db haltstate.db --signing-key signing.key --checkpoint-file checkpoints.jsonl
    Checkpoint {
        /// The database: a SQLite file or a PostgreSQL URL.
        #[arg(long, env = "HALTSTATE_DB", value_parser = database)]
        db: Database,
        /// The authority's signing key (`keys signing create`).
        #[arg(long, env = "HALTSTATE_SIGNING_KEY")]
        signing_key: PathBuf,
        /// Where checkpoints are appended outside the database (JSON lines).
        #[arg(long, env = "HALTSTATE_CHECKPOINT_FILE")]
        checkpoint_file: PathBuf,
    },
}

/// `haltstate keys signing ...`.
#[derive(Debug, Subcommand)]
pub enum SigningCommand {
    /// Create the authority's Ed25519 signing key in a new file (mode 0600) and print its public key.
    ///
    /// Example: haltstate keys signing create --out /etc/haltstate/signing.key
    Create {
        /// The file to create (an existing file is never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a signing key's public key (`ed25519:...`), to publish for auditors.
    ///
    /// Example: haltstate keys signing public --key /etc/haltstate/signing.key
    Public {
        /// The signing key file.
        #[arg(long)]
        key: PathBuf,
    },
}

/// `haltstate proof ...`.
#[derive(Debug, Subcommand)]
pub enum ProofCommand {
    /// Write a proof pack: a tenant's records (one key's, or a time range's), the chain to a signed checkpoint
    /// and the checkpoint, as one JSON document.
    ///
    /// Example: haltstate proof export --db haltstate.db --tenant acme --key refund:1042 --out refund-1042.json
    Export {
        /// The database: a SQLite file or a PostgreSQL URL.
        #[arg(long, env = "HALTSTATE_DB", value_parser = database)]
        db: Database,
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// Only this idempotency key's records.
        #[arg(long, conflicts_with_all = ["since", "until"], required_unless_present_any = ["since", "until"])]
        key: Option<String>,
        /// Records at or after this time (RFC 3339).
        #[arg(long, value_parser = rfc3339)]
        since: Option<time::OffsetDateTime>,
        /// Records before this time (RFC 3339).
        #[arg(long, value_parser = rfc3339)]
        until: Option<time::OffsetDateTime>,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a proof pack with the authority's public key alone: no database, no network.
    ///
    /// Example: haltstate proof verify refund-1042.json --public-key ed25519:3b6a...
    Verify {
        /// The pack.
        pack: PathBuf,
        /// The authority's public key (`ed25519:...`).
        #[arg(long)]
        public_key: String,
    },
}

fn rfc3339(text: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time: {e}"))
}

/// `haltstate db ...`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create or migrate the schema to this build's version (serve does it on start); refuses a newer schema.
    ///
    /// Example: haltstate db migrate --db postgres://haltstate@db.internal/haltstate
    Migrate {
        /// The database: a SQLite file or a PostgreSQL URL.
        #[arg(long, env = "HALTSTATE_DB", value_parser = database)]
        db: Database,
    },
    /// Copy a SQLite authority into an empty PostgreSQL one, every chain and row, then verify the copy.
    ///
    /// Example: haltstate db copy --from haltstate.db --to postgres://haltstate@db.internal/haltstate
    Copy {
        /// The SQLite file to copy (read only; its ledger must verify).
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database to fill (must hold no HaltState data).
        #[arg(long, value_parser = database)]
        to: Database,
    },
}

/// `haltstate webhooks ...`. Deliveries are made by `haltstate serve`; these commands work on the database.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Add a webhook and print its signing secret (`whsec_...`), alone, on stdout. It is shown only this once.
    ///
    /// Example: haltstate webhooks add --db haltstate.db --tenant acme --url https://hooks.example.com/hs --as alice
    ///
    /// Example: haltstate webhooks add --db haltstate.db --tenant acme --url https://hooks.slack.com/services/... --format slack --events approval.requested --as alice
    Add {
        /// The database: a SQLite file or a PostgreSQL URL.
        #[arg(long, env = "HALTSTATE_DB", value_parser = database)]
        db: Database,
        /// The tenant whose events it receives.
        #[arg(long)]
        tenant: String,
        /// Where to post (https:// or http://).
        #[arg(long)]
        url: String,
        /// Only these events, comma-separated: approval.requested, approval.decided, approval.expired,
        /// kill_switch.changed (default: all).
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// The body: a Standard Webhooks body, or a Slack message.
        #[arg(long, value_enum, default_value = "standard")]
        format: FormatArg,
        /// Who adds it.
        #[arg(long = "as")]
        actor: String,
    },
    /// List the tenant's webhooks (never their secrets).
    ///
    /// Example: haltstate webhooks list --db haltstate.db --tenant acme
    List {
        /// The database.
        #[arg(long, env = "HALTSTATE_DB", value_parser = database)]
        db: Database,
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Remove a webhook; what it has not received yet is failed, not sent.
    ///
    /// Example: haltstate webhooks remove wh_0123 --db haltstate.db --tenant acme
    Remove {
        /// The webhook id (`wh_...`).
        id: String,
        /// The database.
        #[arg(long, env = "HALTSTATE_DB", value_parser = database)]
        db: Database,
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// The latest deliveries, newest first: event, attempts, state, last status or error.
    ///
    /// Example: haltstate webhooks deliveries --db haltstate.db --tenant acme
    Deliveries {
        /// The database.
        #[arg(long, env = "HALTSTATE_DB", value_parser = database)]
        db: Database,
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// A webhook's body.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// `{"type", "timestamp", "data"}`, as the Standard Webhooks specification describes.
    Standard,
    /// `{"text"}` for a Slack incoming webhook.
    Slack,
}

/// Reads `--db`: a PostgreSQL URL or a file path.
fn database(text: &str) -> Result<Database, String> {
    if text.is_empty() {
        return Err("give a file path or a postgres:// URL".into());
    }
    Ok(Database::parse(text))
}

/// `haltstate policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file: exit 0, or print each error as file:line:column.
    ///
    /// Example: haltstate policy check examples/policies/haltstate.cedar
    Check {
        /// The Cedar policy file.
        path: PathBuf,
    },
    /// Run declarative cases (request, optional time and usage, expected decision and policy) against a
    /// policy file: prints each failure and `N passed, M failed`; exits 1 when any failed.
    ///
    /// Example: haltstate policy test examples/policies/haltstate.cases.toml --policy examples/policies/haltstate.cedar
    Test {
        /// The cases (TOML, `[[case]]` tables).
        cases: PathBuf,
        /// The Cedar policy file.
        #[arg(long)]
        policy: PathBuf,
    },
    /// List the recorded decisions whose shadow decision (`@mode("shadow")` policies, or `serve --shadow`)
    /// differed from the live one; ends with `compared N decisions: M disagreed`.
    ///
    /// Example: haltstate policy shadow-report --db haltstate.db --since 24h
    ShadowReport {
        /// The database: a SQLite file or a PostgreSQL URL.
        #[arg(long, env = "HALTSTATE_DB", value_parser = database)]
        db: Database,
        /// Only decisions made within this long (e.g. 24h, 7d).
        #[arg(long, value_parser = humantime::parse_duration)]
        since: Option<Duration>,
        /// Only this tenant's decisions.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Decide the recorded guards and checks again under a candidate policy file, from the context each record
    /// keeps, and print each decision that would change; ends with `replayed N decisions: M would change`.
    /// Reads only; a database at another schema version is refused.
    ///
    /// Example: haltstate policy replay --db haltstate.db --policy candidate.cedar --since 7d --fail-on-change
    Replay {
        /// The database: a SQLite file or a PostgreSQL URL.
        #[arg(long, env = "HALTSTATE_DB", value_parser = database)]
        db: Database,
        /// The candidate Cedar policy file.
        #[arg(long)]
        policy: PathBuf,
        /// Only decisions made within this long (e.g. 24h, 7d).
        #[arg(long, value_parser = humantime::parse_duration)]
        since: Option<Duration>,
        /// Only this tenant's decisions.
        #[arg(long)]
        tenant: Option<String>,
        /// Exit 1 when any decision would change (for CI).
        #[arg(long)]
        fail_on_change: bool,
    },
}

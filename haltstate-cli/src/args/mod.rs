//! The command line's shape: every command, flag and help text (with an example each).

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod evidence;
mod mcp;
mod serve;
mod webhooks;

pub use evidence::{LedgerCommand, ProofCommand, SigningCommand};
pub use mcp::{McpCommand, ProxyArgs};
pub use serve::{LogFormat, ServeArgs};

pub use webhooks::{FormatArg, WebhooksCommand};

use haltstate_authority::Database;

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
    /// Guard what agents do through MCP: an MCP server's tool calls under policy, approval and evidence.
    #[command(subcommand)]
    Mcp(McpCommand),
    /// Find the side effects (HTTP and SQL writes, files, processes, email, model calls, payments) no guard covers.
    ///
    /// Reads the workspace's sources without compiling them. Exit 1 with --fail-on when a sink is uncovered.
    ///
    /// Example: haltstate audit . --fail-on uncovered
    ///
    /// Example: haltstate audit --format sarif > haltstate.sarif
    Audit(haltstate_audit::cli::Options),
}

/// `haltstate keys secrets ...`.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Create a secrets key in a new file (mode 0600) and print its id. Keep it outside the database: a copy of
    /// the database without it cannot sign webhook deliveries.
    ///
    /// Example: haltstate keys secrets create --out /etc/haltstate/secrets.key
    Create {
        /// The file to create (an existing file is never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
}

/// `haltstate keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// The authority's evidence signing key.
    #[command(subcommand)]
    Signing(SigningCommand),
    /// The key that seals webhook secrets at rest (`serve --secrets-key`).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Create a key and print it, alone, on stdout. It is shown only this once.
    ///
    /// An agent key acts as the agent its name says, or as the agents given with --agents (names, prefixes such
    /// as billing-*, or * for every agent of the tenant). An operator key is the operator its name says. An admin
    /// key mints, rotates and revokes keys through the server (operators cannot). Whoever holds the database is
    /// the root of trust: the ledger records these keys as made by "(database)".
    ///
    /// Example: haltstate keys create --db haltstate.db --tenant acme --name root --role admin
    ///
    /// Example: haltstate keys create --db haltstate.db --tenant acme --name billing-agent --role agent
    ///
    /// Example: haltstate keys create --db haltstate.db --tenant acme --name fleet --role agent --agents 'billing-*'
    Create {
        /// The database: a SQLite file (created when missing) or a PostgreSQL URL.
        #[arg(long, env = "HALTSTATE_DB", hide_env_values = true, value_parser = database)]
        db: Database,
        /// The tenant the key belongs to.
        #[arg(long)]
        tenant: String,
        /// The key's name: never any other key's in the tenant, not even a revoked one's.
        #[arg(long)]
        name: String,
        /// `agent` (check, guard, report), `operator` (approve, reject, kill switch, evidence) or `admin`
        /// (keys).
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
    /// Give a live key a new secret (same id, name and role) and print it, alone, on stdout; the old secret stops
    /// working. Replaces a leaked key without a new name.
    ///
    /// Example: haltstate keys rotate key_0123456789abcdef --db haltstate.db --tenant acme
    Rotate {
        /// The key id (`key_...`, from `keys list`).
        id: String,
        /// Where to act (through a server: with an admin key).
        #[command(flatten)]
        target: Target,
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
    /// Approve, reject, flip the kill switch, read evidence.
    Operator,
    /// Mint, rotate and revoke keys.
    Admin,
}

/// Where an operator command acts: on the SQLite file, or through a running server's operator API.
#[derive(Debug, Args)]
pub struct Target {
    /// Work on this database directly, a SQLite file or a PostgreSQL URL (safe while the app runs).
    #[arg(
        long,
        env = "HALTSTATE_DB", hide_env_values = true,
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
    /// Why, kept in the switch's ledger record (its history says who, when and why).
    #[arg(long)]
    pub reason: Option<String>,
}

/// `haltstate db ...`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create or migrate the schema to this build's version (serve does it on start); refuses a newer schema.
    ///
    /// Example: haltstate db migrate --db postgres://haltstate@db.internal/haltstate
    Migrate {
        /// The database: a SQLite file or a PostgreSQL URL.
        #[arg(long, env = "HALTSTATE_DB", hide_env_values = true, value_parser = database)]
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
    /// Back up a SQLite authority, while it serves: a consistent copy as of one commit, in a new file readable by
    /// its owner only, then verified (integrity check and every chain). Restore: stop the server, put the copy
    /// in the database's place, `ledger verify --checkpoints`, start the server. PostgreSQL: `pg_dump`
    /// (README, "Backups").
    ///
    /// Example: haltstate db backup --db /var/lib/haltstate/haltstate.db --out /backups/haltstate-2026-12-02.db
    Backup {
        /// The SQLite file to back up (read only; it may be serving).
        #[arg(long, env = "HALTSTATE_DB", hide_env_values = true)]
        db: PathBuf,
        /// The new file (never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// The server's checkpoint file: saved as OUT.checkpoints.jsonl, as it stood just before the copy (so
        /// every checkpoint in it is of a head the copy holds), to verify a restore with `ledger verify
        /// --checkpoints`. Checkpoints signed later name records the copy cannot have.
        #[arg(long, env = "HALTSTATE_CHECKPOINT_FILE", hide_env_values = true)]
        checkpoint_file: Option<PathBuf>,
    },
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
        #[arg(long, env = "HALTSTATE_DB", hide_env_values = true, value_parser = database)]
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
        #[arg(long, env = "HALTSTATE_DB", hide_env_values = true, value_parser = database)]
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

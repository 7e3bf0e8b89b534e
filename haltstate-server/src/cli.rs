//! The `haltstate` command line: serve the authority, and operate it directly on its SQLite file.
//!
//! Every command that acts on the authority takes `--db PATH`: it opens the same file the app uses (safe while
//! the app runs, thanks to WAL), so an operator can approve, kill or verify on an embedded deployment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use haltstate_authority::{
    Approval, ApprovalStatus, Authority, AuthorityError, KillScope, KillState, PolicyEngine, Role,
    timestamp::format_rfc3339,
};

use crate::remote::{Remote, RemoteError};

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
    Serve {
        /// The SQLite file (created when missing).
        #[arg(long)]
        db: PathBuf,
        /// The Cedar policy file; reloaded on SIGHUP (a bad file keeps the old set).
        #[arg(long)]
        policy: PathBuf,
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: SocketAddr,
        /// WAL pages after which a commit copies them into the database (about 4 KiB each). Lower keeps the
        /// `-wal` file and the slowest commits smaller, at some throughput.
        #[arg(long, default_value_t = haltstate_authority::DEFAULT_CHECKPOINT_PAGES,
              value_parser = clap::value_parser!(u32).range(1..))]
        checkpoint_pages: u32,
    },
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// List, show, approve or reject approvals.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Stop every guard of a tenant (or one agent) until resumed.
    ///
    /// Example: haltstate kill --db haltstate.db --tenant acme --agent billing-agent
    ///
    /// Example: HALTSTATE_TENANT_ID=acme HALTSTATE_API_KEY=hs_... haltstate kill --server http://127.0.0.1:8787
    Kill(KillArgs),
    /// Pause a tenant (or one agent): guards are denied until resumed.
    ///
    /// Example: haltstate pause --db haltstate.db --tenant acme
    Pause(KillArgs),
    /// Resume a killed or paused tenant (or agent).
    ///
    /// Example: haltstate resume --db haltstate.db --tenant acme
    Resume(KillArgs),
    /// Work with the evidence ledger.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

/// `haltstate keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it, alone, on stdout. It is shown only this once.
    ///
    /// Example: haltstate keys create --db haltstate.db --tenant acme --name billing-agent --role agent
    Create {
        /// The SQLite file (created when missing).
        #[arg(long)]
        db: PathBuf,
        /// The tenant the key belongs to.
        #[arg(long)]
        tenant: String,
        /// The key's name: for an operator, the identity recorded on approvals.
        #[arg(long)]
        name: String,
        /// `agent` (check, guard, report) or `operator` (also approve, reject, kill switch, evidence).
        #[arg(long, value_enum)]
        role: RoleArg,
    },
}

/// A key's role.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Check, guard, report.
    Agent,
    /// Also approve, reject, flip the kill switch, read evidence.
    Operator,
}

/// Where an operator command acts: on the SQLite file, or through a running server's operator API.
#[derive(Debug, Args)]
pub struct Target {
    /// Work on this SQLite file directly (safe while the app runs).
    #[arg(long, conflicts_with = "server", required_unless_present = "server")]
    pub db: Option<PathBuf>,
    /// Work through this server's operator API, with the operator key in HALTSTATE_TENANT_ID and
    /// HALTSTATE_API_KEY.
    #[arg(long)]
    pub server: Option<String>,
    /// The tenant (with --server, defaults to HALTSTATE_TENANT_ID).
    #[arg(long, required_unless_present = "server")]
    pub tenant: Option<String>,
}

/// An opened target.
enum Backend {
    Db {
        authority: Authority,
        tenant: String,
    },
    Server(Remote),
}

impl Target {
    fn open(self) -> Result<Backend, CliError> {
        match (self.db, self.server) {
            (Some(db), _) => Ok(Backend::Db {
                authority: open(&db)?,
                tenant: self.tenant.unwrap_or_default(),
            }),
            (None, Some(server)) => Ok(Backend::Server(Remote::from_env(&server, self.tenant)?)),
            (None, None) => Err(CliError::Usage("give --db PATH or --server URL".into())),
        }
    }
}

/// What can go wrong in a CLI command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The authority refused or failed.
    #[error(transparent)]
    Authority(#[from] AuthorityError),
    /// The server refused or could not be reached.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The command line is incomplete.
    #[error("{0}")]
    Usage(String),
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
        #[arg(long, value_parser = ["pending", "approved", "rejected", "expired"])]
        status: Option<String>,
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
    /// Who decides (never the requesting agent). Defaults to $USER.
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
    /// Who flips the switch (recorded on the ledger). Defaults to $USER.
    #[arg(long = "as")]
    pub actor: Option<String>,
}

/// `haltstate ledger ...`.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Recompute the hash chain: exit 0 with the record count and head hash, or non-zero naming the first
    /// broken record.
    ///
    /// Example: haltstate ledger verify --db haltstate.db
    Verify {
        /// The SQLite file of the authority.
        #[arg(long)]
        db: PathBuf,
    },
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
}

/// Runs a command that is not `serve`.
pub fn run(command: Command) -> ExitCode {
    match execute(command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("haltstate: {error}");
            ExitCode::from(1)
        }
    }
}

fn open(db: &PathBuf) -> Result<Authority, AuthorityError> {
    if !db.exists() {
        return Err(AuthorityError::InvalidRequest(format!(
            "no database at {}",
            db.display()
        )));
    }
    Authority::builder(db).open()
}

fn whoami(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("USER").ok())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "operator".into())
}

fn execute(command: Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Serve { .. } => return Err(CliError::Usage("serve is handled by main".into())),
        Command::Keys(KeysCommand::Create {
            db,
            tenant,
            name,
            role,
        }) => {
            let role = match role {
                RoleArg::Agent => Role::Agent,
                RoleArg::Operator => Role::Operator,
            };
            let key = Authority::builder(&db)
                .open()?
                .create_key(&tenant, &name, role)
                .wait()?;
            println!("{}", key.secret);
            eprintln!(
                "created {role} key {} for tenant {tenant}; it will not be shown again",
                key.id
            );
        }
        Command::Approvals(ApprovalsCommand::List {
            target,
            status,
            limit,
        }) => {
            let approvals = match target.open()? {
                Backend::Db { authority, tenant } => {
                    authority.approvals(&tenant, status.as_deref().and_then(parse_status), limit)?
                }
                Backend::Server(remote) => remote.approvals(status.as_deref(), limit)?,
            };
            for approval in approvals {
                println!("{}", summary(&approval));
            }
        }
        Command::Approvals(ApprovalsCommand::Show { id, target }) => {
            let approval = match target.open()? {
                Backend::Db { authority, tenant } => authority.approval(&tenant, &id)?,
                Backend::Server(remote) => remote.approval(&id)?,
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&approval).unwrap_or_default()
            );
        }
        Command::Approvals(ApprovalsCommand::Approve(d)) => {
            println!("{}", summary(&decide(d, true)?))
        }
        Command::Approvals(ApprovalsCommand::Reject(d)) => {
            println!("{}", summary(&decide(d, false)?))
        }
        Command::Kill(args) => set_switch(args, KillState::Kill)?,
        Command::Pause(args) => set_switch(args, KillState::Pause)?,
        Command::Resume(args) => set_switch(args, KillState::Run)?,
        Command::Ledger(LedgerCommand::Verify { db }) => match open(&db)?.verify_ledger() {
            Ok(report) => println!(
                "ledger ok: {} records, head {}",
                report.records, report.head_hash
            ),
            Err(AuthorityError::LedgerBroken { seq, problem }) => {
                eprintln!("ledger BROKEN at record {seq}: {problem}");
                return Ok(ExitCode::from(2));
            }
            Err(other) => return Err(other.into()),
        },
        Command::Policy(PolicyCommand::Check { path }) => match PolicyEngine::from_file(&path) {
            Ok(engine) => println!("{}: {} policies ok", path.display(), engine.current().len()),
            Err(error) => {
                eprintln!("{error}");
                return Ok(ExitCode::from(1));
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

fn decide(d: Decide, approve: bool) -> Result<Approval, CliError> {
    Ok(match d.target.open()? {
        Backend::Db { authority, tenant } => {
            let approver = whoami(d.approver);
            if approve {
                authority
                    .approve(&tenant, &d.id, &approver, d.reason)
                    .wait()?
            } else {
                authority
                    .reject(&tenant, &d.id, &approver, d.reason)
                    .wait()?
            }
        }
        Backend::Server(remote) => remote.decide(&d.id, approve, d.approver, d.reason)?,
    })
}

fn set_switch(args: KillArgs, state: KillState) -> Result<(), CliError> {
    let agent = args.agent.clone();
    let (what, effective) = match args.target.open()? {
        Backend::Db { authority, tenant } => {
            let scope = KillScope::new(tenant.clone(), agent.clone());
            let status = authority
                .set_kill_switch(scope, state, &whoami(args.actor))
                .wait()?;
            (tenant, status.state.to_string())
        }
        Backend::Server(remote) => (
            "(the key's tenant)".to_owned(),
            remote.set_kill(agent.clone(), state, args.actor)?,
        ),
    };
    match agent {
        Some(agent) => println!("agent {agent} of tenant {what}: {state} (effective: {effective})"),
        None => println!("tenant {what}: {state} (effective: {effective})"),
    }
    Ok(())
}

fn parse_status(text: &str) -> Option<ApprovalStatus> {
    match text {
        "pending" => Some(ApprovalStatus::Pending),
        "approved" => Some(ApprovalStatus::Approved),
        "rejected" => Some(ApprovalStatus::Rejected),
        "expired" => Some(ApprovalStatus::Expired),
        _ => None,
    }
}

fn summary(a: &Approval) -> String {
    format!(
        "{}\t{}\t{}\t{}\tagent={}\tkey={}\texpires={}{}",
        a.id,
        a.status,
        a.action,
        a.resource.as_deref().unwrap_or("-"),
        a.agent_id,
        a.idempotency_key.as_deref().unwrap_or("-"),
        format_rfc3339(a.expires_at),
        a.approver
            .as_deref()
            .map(|who| format!("\tby={who}"))
            .unwrap_or_default(),
    )
}

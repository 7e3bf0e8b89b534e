//! Every command but `serve`: operate the authority directly on its database, or through a server.
//!
//! Every command that acts on the authority takes `--db PATH|URL`: it opens the same database the app uses (safe while
//! the app runs, thanks to WAL), so an operator can approve, kill or verify on an embedded deployment. Working on
//! the file, the person names themselves (`--as`), and the evidence says the change came `via: cli`. With
//! `--server URL` the operator key in the environment is the identity.

use std::process::ExitCode;

use haltstate_authority::Authority;
use haltstate_types::{
    Actor, AgentSet, Approval, ApprovalStatus, KeyInfo, KeySpec, KillScope, KillState, Role,
    Verdict, Via, timestamp::format_rfc3339,
};

use crate::args::{
    ApprovalsCommand, Command, DbCommand, Decide, KeysCommand, KillArgs, RoleArg, SecretsCommand,
    StatusArg, Target,
};

pub(crate) use crate::error::CliError;
use crate::open::open;
use crate::output::out;
use crate::remote::Remote;

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
                tenant: self
                    .tenant
                    .ok_or_else(|| CliError::Usage("give --tenant with --db".into()))?,
            }),
            (None, Some(server)) => Ok(Backend::Server(Remote::from_env(&server, self.tenant)?)),
            (None, None) => Err(CliError::Usage("give --db PATH or --server URL".into())),
        }
    }
}

/// Runs a command that is not `serve`.
pub(crate) fn run(command: Command) -> ExitCode {
    match execute(command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("haltstate: {error}");
            ExitCode::from(1)
        }
    }
}

/// The person acting on the database file: named explicitly, never guessed from the environment.
fn cli_actor(given: Option<String>, what: &str) -> Result<Actor, CliError> {
    let name = given.ok_or_else(|| {
        CliError::Usage(format!(
            "with --db, {what} needs --as NAME: the operator it is recorded as"
        ))
    })?;
    Ok(Actor::new(&name, Via::Cli)?)
}

fn role_of(role: RoleArg) -> Role {
    match role {
        RoleArg::Agent => Role::Agent,
        RoleArg::Operator => Role::Operator,
        RoleArg::Admin => Role::Admin,
    }
}

fn status_of(status: StatusArg) -> ApprovalStatus {
    match status {
        StatusArg::Pending => ApprovalStatus::Pending,
        StatusArg::Approved => ApprovalStatus::Approved,
        StatusArg::Rejected => ApprovalStatus::Rejected,
        StatusArg::Expired => ApprovalStatus::Expired,
    }
}

fn execute(command: Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Serve(_) | Command::Audit(_) => {
            return Err(CliError::Usage(
                "serve and audit are handled by main".into(),
            ));
        }
        Command::Keys(command) => keys(command)?,
        Command::Approvals(ApprovalsCommand::List {
            target,
            status,
            limit,
        }) => {
            let status = status.map(status_of);
            let approvals = match target.open()? {
                Backend::Db { authority, tenant } => authority.approvals(&tenant, status, limit)?,
                Backend::Server(remote) => remote.approvals(status, limit)?,
            };
            for approval in approvals {
                out!("{}", summary(&approval));
            }
        }
        Command::Approvals(ApprovalsCommand::Show { id, target }) => {
            let approval = match target.open()? {
                Backend::Db { authority, tenant } => authority.approval(&tenant, &id)?,
                Backend::Server(remote) => remote.approval(&id)?,
            };
            let shown = serde_json::to_string_pretty(&approval)
                .map_err(|e| CliError::Usage(format!("cannot show the approval: {e}")))?;
            out!("{shown}");
        }
        Command::Approvals(ApprovalsCommand::Approve(d)) => {
            out!("{}", summary(&decide(d, Verdict::Approve)?))
        }
        Command::Approvals(ApprovalsCommand::Reject(d)) => {
            out!("{}", summary(&decide(d, Verdict::Reject)?))
        }
        Command::Kill(args) => set_switch(args, KillState::Kill)?,
        Command::Pause(args) => set_switch(args, KillState::Pause)?,
        Command::Resume(args) => set_switch(args, KillState::Run)?,
        Command::Webhooks(command) => crate::webhooks::run(command)?,
        Command::Mcp(command) => crate::mcp::run(command)?,
        Command::Db(DbCommand::Migrate { db }) => {
            let version = Authority::migrate(&db)?;
            out!("{db}: schema version {version}");
        }
        Command::Db(DbCommand::Copy { from, to }) => {
            let report = Authority::copy_database(&from, &to)?;
            for (table, rows) in &report.rows {
                out!("  {table}: {rows} rows");
            }
            out!(
                "copied {} into {to}; ledger ok: {} records in {} tenant chain(s)",
                from.display(),
                report.verified.records,
                report.verified.chains.len()
            );
        }
        Command::Db(DbCommand::Backup {
            db,
            out,
            checkpoint_file,
        }) => {
            // Read before the copy: the server appends a checkpoint only after its head is committed, so each
            // one read now is of a head the copy will hold.
            let checkpoints = match &checkpoint_file {
                Some(file) => Some(std::fs::read(file).map_err(|e| {
                    CliError::Usage(format!("cannot read {}: {e}", file.display()))
                })?),
                None => None,
            };
            let report = Authority::backup_sqlite(&db, &out)?;
            if let Some(checkpoints) = checkpoints {
                let saved =
                    std::path::PathBuf::from(format!("{}.checkpoints.jsonl", out.display()));
                crate::private_file::create(&saved, &checkpoints)?;
                out!("checkpoints as of the copy: {}", saved.display());
            }
            out!(
                "backed up {} into {} ({} pages); ledger ok: {} records in {} tenant chain(s)",
                db.display(),
                out.display(),
                report.pages,
                report.verified.records,
                report.verified.chains.len()
            );
        }
        Command::Ledger(command) => return crate::evidence_commands::ledger(command),
        Command::Proof(command) => return crate::evidence_commands::proof(command),
        Command::Policy(command) => return crate::policy_commands::run(command),
    }
    Ok(ExitCode::SUCCESS)
}

fn keys(command: KeysCommand) -> Result<(), CliError> {
    match command {
        KeysCommand::Signing(command) => crate::evidence_commands::signing(command)?,
        KeysCommand::Secrets(SecretsCommand::Create { out }) => {
            let key = crate::secrets_key::create(&out)?;
            eprintln!(
                "created secrets key {} in {} (mode 0600); give it to serve with --secrets-key",
                key.id(),
                out.display()
            );
            out!("{}", key.id());
        }
        KeysCommand::Create {
            db,
            tenant,
            name,
            role,
            agents,
            rate_limit,
        } => {
            let mut spec = KeySpec::new(name, role_of(role));
            if !agents.is_empty() {
                spec = spec.agents(AgentSet::parse(&agents)?);
            }
            spec.rate_limit = rate_limit;
            let authority = Authority::builder(db).open()?;
            let key = authority.create_key_with(&tenant, spec).wait()?;
            let info = authority.key(&tenant, &key.id)?;
            out!("{}", key.secret);
            eprintln!(
                "created {} key {} ({}) for tenant {tenant}{}; it will not be shown again",
                info.role,
                info.id,
                info.name,
                match info.role {
                    Role::Agent => format!(", acting as {}", info.agents),
                    Role::Operator | Role::Admin => String::new(),
                }
            );
        }
        KeysCommand::List { target, all } => {
            let keys = match target.open()? {
                Backend::Db { authority, tenant } => authority.keys(&tenant, !all)?,
                Backend::Server(remote) => remote.keys(!all)?,
            };
            for key in keys {
                out!("{}", key_line(&key));
            }
        }
        KeysCommand::Rotate { id, target } => {
            let (key, secret) = match target.open()? {
                Backend::Db { authority, tenant } => {
                    authority.key(&tenant, &id)?;
                    let rotated = authority
                        .rotate_key(&tenant, &id, haltstate_authority::LOCAL_ACTOR)
                        .wait()?;
                    (authority.key(&tenant, &id)?, rotated.secret)
                }
                Backend::Server(remote) => remote.rotate_key(&id)?,
            };
            out!("{secret}");
            eprintln!(
                "{}: a new secret; the old one no longer works",
                key_line(&key)
            );
        }
        KeysCommand::Revoke { id, target } => {
            let (key, revoked) = match target.open()? {
                Backend::Db { authority, tenant } => {
                    authority.key(&tenant, &id)?;
                    let revoked = authority.revoke_key(&tenant, &id).wait()?;
                    (authority.key(&tenant, &id)?, revoked)
                }
                Backend::Server(remote) => remote.revoke_key(&id)?,
            };
            out!("{}", key_line(&key));
            if !revoked {
                eprintln!("key {id} was already revoked");
            }
        }
    }
    Ok(())
}

fn key_line(key: &KeyInfo) -> String {
    format!(
        "{}\t{}\t{}\t{}\tcreated={}{}{}",
        key.id,
        key.name,
        key.role,
        match key.role {
            Role::Agent => format!("agents={}", key.agents),
            Role::Operator | Role::Admin => "-".to_owned(),
        },
        format_rfc3339(key.created_at),
        key.rate_limit
            .map(|r| format!("\trate_limit={r}/s"))
            .unwrap_or_default(),
        key.revoked_at
            .map(|t| format!("\trevoked={}", format_rfc3339(t)))
            .unwrap_or_default(),
    )
}

fn decide(d: Decide, verdict: Verdict) -> Result<Approval, CliError> {
    Ok(match d.target.open()? {
        Backend::Db { authority, tenant } => {
            let approver = cli_actor(d.approver, "deciding an approval")?;
            authority
                .decide_approval(&tenant, &d.id, verdict, approver, d.reason)
                .wait()?
        }
        Backend::Server(remote) => remote.decide(&d.id, verdict, d.approver, d.reason)?,
    })
}

fn set_switch(args: KillArgs, state: KillState) -> Result<(), CliError> {
    let agent = args.agent.clone();
    let (what, effective) = match args.target.open()? {
        Backend::Db { authority, tenant } => {
            let actor = cli_actor(args.actor, "the kill switch")?;
            let scope = KillScope::new(tenant.clone(), agent.clone());
            let status = authority
                .set_kill_switch_because(scope, state, actor, args.reason.as_deref())
                .wait()?;
            (tenant, status.state)
        }
        Backend::Server(remote) => (
            "(the key's tenant)".to_owned(),
            remote.set_kill(agent.clone(), state, args.actor, args.reason)?,
        ),
    };
    match agent {
        Some(agent) => out!("agent {agent} of tenant {what}: {state} (effective: {effective})"),
        None => out!("tenant {what}: {state} (effective: {effective})"),
    }
    Ok(())
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

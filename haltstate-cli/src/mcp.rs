//! `haltstate mcp proxy`: an MCP server's tools under the authority, served on stdio.

use haltstate::HaltStateClient;
use haltstate_authority::Authority;
use haltstate_mcp::{GuardConfig, Upstream};

use crate::args::{McpCommand, ProxyArgs};
use crate::error::CliError;

pub(crate) fn run(command: McpCommand) -> Result<(), CliError> {
    match command {
        McpCommand::Proxy(args) => proxy(*args),
    }
}

fn proxy(args: ProxyArgs) -> Result<(), CliError> {
    let upstream = match (&args.upstream_cmd, &args.upstream_url) {
        (Some(line), _) => {
            let words = shlex::split(line)
                .filter(|words| !words.is_empty())
                .ok_or_else(|| {
                    CliError::Usage(format!("--upstream-cmd {line:?} is not a command line"))
                })?;
            let mut command = tokio::process::Command::new(&words[0]);
            command.args(&words[1..]);
            Upstream::Command(command)
        }
        (None, Some(url)) => Upstream::Url(url.clone()),
        (None, None) => {
            return Err(CliError::Usage(
                "name the upstream: --upstream-cmd or --upstream-url".into(),
            ));
        }
    };
    let client = client(&args)?;
    let mut config = GuardConfig::new(&args.name)
        .map_err(|e| CliError::Usage(e.to_string()))?
        .agent(args.agent.clone());
    for tool in &args.once {
        config = config.once(tool.clone());
    }
    for (tool, arg) in &args.resources {
        config = config.resource_arg(tool.clone(), arg.clone());
    }
    for (tool, arg) in &args.secret_args {
        config = config.secret_arg(tool.clone(), arg.clone());
    }
    config = config.trust_annotations(args.trust_annotations);
    if let Some(wait) = args.approval_wait {
        config = config.approval_wait(wait);
    }
    if let Some(template) = &args.approval_url {
        config = config.approval_url(template.clone());
    }
    let runtime = tokio::runtime::Runtime::new().map_err(CliError::Runtime)?;
    runtime.block_on(haltstate_mcp::serve_stdio(upstream, client, config))?;
    Ok(())
}

/// The client of the embedded authority (`--db`, `--policy`) or of a server (`--server`, HALTSTATE_API_KEY).
fn client(args: &ProxyArgs) -> Result<HaltStateClient, CliError> {
    let mut builder = HaltStateClient::builder()
        .tenant(args.tenant.clone())
        .agent_id(args.agent.clone());
    if let Ok(key) = std::env::var("HALTSTATE_REDACTION_KEY") {
        builder = builder.redaction_key(key);
    }
    builder = match (&args.server, &args.db, &args.policy) {
        (Some(server), _, _) => {
            let key = std::env::var("HALTSTATE_API_KEY").map_err(|_| {
                CliError::Usage("--server needs the agent's key in HALTSTATE_API_KEY".into())
            })?;
            builder.base_url(server.clone()).api_key(key)
        }
        (None, Some(db), Some(policy)) => {
            let authority = Authority::builder(db.clone()).policy_file(policy).open()?;
            builder.authority(authority)
        }
        _ => {
            return Err(CliError::Usage(
                "name an authority: --db and --policy (embedded), or --server".into(),
            ));
        }
    };
    Ok(builder.build()?)
}

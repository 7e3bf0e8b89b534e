//! `haltstate mcp ...`'s shape.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use haltstate_authority::Database;

use super::database;

/// `haltstate mcp ...`.
#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Guard an MCP server: start it as a child process (or reach it by URL) and serve it on stdin/stdout or
    /// streamable HTTP, every tool call under policy (action `mcp.<name>.<tool>`), approval and evidence. Over
    /// stdio it drops into a desktop client's MCP config in place of the server's own command.
    ///
    /// Example: haltstate mcp proxy --stdio --name files --agent desktop-agent --db haltstate.db --policy mcp.cedar --upstream-cmd 'npx -y @modelcontextprotocol/server-filesystem /data' --resource write_file=path
    Proxy(Box<ProxyArgs>),
}

/// `haltstate mcp proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The server's name: its tools' actions are `mcp.<name>.<tool>`.
    #[arg(long)]
    pub name: String,
    /// The upstream server's command line, started as a child process (words split as a shell would, without
    /// expanding anything).
    #[arg(
        long,
        required_unless_present = "upstream_url",
        conflicts_with = "upstream_url"
    )]
    pub upstream_cmd: Option<String>,
    /// The upstream server's streamable-HTTP URL instead (https://host/mcp, its certificate checked against the
    /// system's roots or SSL_CERT_FILE; or http://). The agent's credentials are never sent to it.
    #[arg(long)]
    pub upstream_url: Option<String>,
    /// Serve the agent's client on stdin and stdout.
    #[arg(long, required_unless_present = "listen", conflicts_with = "listen")]
    pub stdio: bool,
    /// Serve streamable HTTP at http://ADDR/mcp instead (clients of the session-based revisions and of
    /// 2026-07-28). Each request's agent key (X-API-Key or Authorization: Bearer) is who it acts as; on a loopback
    /// address only, --agent may stand in for keys.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// The agent the calls act as (over stdio; over HTTP, on a loopback address, instead of keys).
    #[arg(long, required_unless_present = "listen")]
    pub agent: Option<String>,
    /// With --listen: a `Host` the listener answers to (name or name:port; repeatable). Default: the loopback
    /// names. Anything else is refused (DNS rebinding).
    #[arg(long = "allowed-host", requires = "listen")]
    pub allowed_hosts: Vec<String>,
    /// With --listen: a browser origin allowed to call (scheme://host:port, :* for any port; repeatable).
    /// Default: pages of this machine's loopback names; a request carrying any other `Origin` is refused.
    #[arg(long = "allowed-origin", requires = "listen")]
    pub allowed_origins: Vec<String>,
    /// With --listen: sessions one agent may hold open; opening another closes its oldest.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sessions_per_agent: u32,
    /// The embedded authority's database: a SQLite file or a PostgreSQL URL.
    #[arg(long, env = "HALTSTATE_DB", hide_env_values = true, value_parser = database,
        conflicts_with = "server", requires = "policy")]
    pub db: Option<Database>,
    /// The embedded authority's Cedar policy file.
    #[arg(long, env = "HALTSTATE_POLICY", conflicts_with = "server")]
    pub policy: Option<PathBuf>,
    /// An authority server's URL instead (its key in HALTSTATE_API_KEY).
    #[arg(long, required_unless_present = "db")]
    pub server: Option<String>,
    /// The tenant.
    #[arg(long, env = "HALTSTATE_TENANT_ID", default_value = "default")]
    pub tenant: String,
    /// Tools that run once ever for the same arguments (a tool call is otherwise one operation until it
    /// completes, then the same call runs again), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub once: Vec<String>,
    /// TOOL=ARG: the argument that names what the tool acts on (the action's resource). Repeatable.
    #[arg(long = "resource", value_parser = tool_arg)]
    pub resources: Vec<(String, String)>,
    /// TOOL=ARG: an argument sent to policy only as a keyed digest (needs HALTSTATE_REDACTION_KEY). Repeatable.
    #[arg(long = "secret-arg", value_parser = tool_arg)]
    pub secret_args: Vec<(String, String)>,
    /// Send the tools' annotations (the server's hints in tools/list) as each call's risk: read_only, additive or
    /// destructive. Hints are the server's claims: only for a server you trust.
    #[arg(long)]
    pub trust_annotations: bool,
    /// Leave out of tools/list the tools no policy can ever allow the agent (no permit admits it, or a forbid
    /// always applies; conditions are not reasoned about, so a tool shown may still be denied). A courtesy to
    /// the model, not a guard: a hidden tool called anyway is denied as before. Embedded authority only.
    #[arg(long, conflicts_with = "server")]
    pub hide_denied: bool,
    /// Hold a call that needs approval this long while a human decides (`90s`, `10m`), then run it or answer the
    /// rejection; past it the call answers pending.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub approval_wait: Option<std::time::Duration>,
    /// Where approvers decide: `{id}` is replaced by the approval's id
    /// (https://authority.example/ui/approvals/{id}). Clients of 2026-07-28 that can open URLs are then sent
    /// there (input_required, the request state sealed with HALTSTATE_MCP_STATE_KEY, 32+ bytes, or a key of
    /// this process's own).
    #[arg(long)]
    pub approval_url: Option<String>,
    /// With --listen: the listener's timeouts and connection limits, as `haltstate serve`'s.
    #[command(flatten)]
    pub limits: super::serve::LimitArgs,
}

/// `TOOL=ARG`.
fn tool_arg(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((tool, arg)) if !tool.is_empty() && !arg.is_empty() => {
            Ok((tool.to_owned(), arg.to_owned()))
        }
        _ => Err(format!("expected TOOL=ARG, got {text:?}")),
    }
}

//! `haltstate mcp proxy`: an MCP server's tools under the authority, served on stdio or streamable HTTP.

use std::sync::Arc;

use haltstate::HaltStateClient;
use haltstate_authority::Authority;
use haltstate_mcp::{
    Caller, CallerFuture, Callers, Connected, GuardConfig, Guarded, HttpOptions, OneAgent, Refusal,
    ServerKeys, Upstream,
};

use crate::args::{McpCommand, ProxyArgs};
use crate::error::CliError;

pub(crate) fn run(command: McpCommand) -> Result<(), CliError> {
    match command {
        McpCommand::Proxy(args) => proxy(*args),
    }
}

/// The authority the proxy guards with: one in this process, or a server.
enum Guarding {
    Embedded(Authority),
    Server(String),
}

fn proxy(args: ProxyArgs) -> Result<(), CliError> {
    let upstream = upstream(&args)?;
    let mut config = GuardConfig::new(&args.name).map_err(|e| CliError::Usage(e.to_string()))?;
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
        // Clients of 2026-07-28 are sent to the approval's page (input_required), their state sealed with a key
        // instances share through the environment, or one this process alone knows.
        let key = match std::env::var("HALTSTATE_MCP_STATE_KEY") {
            Ok(key) => key.into_bytes(),
            Err(_) => {
                use rand::RngCore;
                let mut key = vec![0u8; 32];
                rand::rng().fill_bytes(&mut key);
                key
            }
        };
        config = config
            .request_state_key(key)
            .map_err(|e| CliError::Usage(format!("HALTSTATE_MCP_STATE_KEY: {e}")))?;
    }
    let authority = match (&args.server, &args.db, &args.policy) {
        (Some(server), _, _) => Guarding::Server(server.clone()),
        (None, Some(db), Some(policy)) => {
            Guarding::Embedded(Authority::builder(db.clone()).policy_file(policy).open()?)
        }
        _ => {
            return Err(CliError::Usage(
                "name an authority: --db and --policy (embedded), or --server".into(),
            ));
        }
    };
    if let (true, Guarding::Embedded(authority)) = (args.hide_denied, &authority) {
        let authority = authority.clone();
        config = config.hide_tools(move |action, agent| {
            authority.policies().current().can_allow(action, agent)
        });
    }
    let runtime = tokio::runtime::Runtime::new().map_err(CliError::Runtime)?;
    match (args.listen, &args.agent) {
        (None, Some(agent)) => {
            let client = client(&args, &authority, agent, own_key()?)?;
            let config = config.agent(agent.clone());
            runtime.block_on(haltstate_mcp::serve_stdio(upstream, client, config))?;
        }
        (Some(address), agent) => {
            let callers = callers(&args, &authority, address, agent.as_deref())?;
            let options = HttpOptions {
                allowed_hosts: if args.allowed_hosts.is_empty() {
                    HttpOptions::default().allowed_hosts
                } else {
                    args.allowed_hosts.clone()
                },
                allowed_origins: if args.allowed_origins.is_empty() {
                    HttpOptions::default().allowed_origins
                } else {
                    args.allowed_origins.clone()
                },
                max_sessions_per_agent: usize::try_from(args.max_sessions_per_agent)
                    .unwrap_or(usize::MAX),
                auth_failures_per_minute: args.limits.auth_failures_per_minute.get(),
                ..HttpOptions::default()
            };
            let limits = args.limits.limits();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(address)
                    .await
                    .map_err(|e| CliError::Usage(format!("cannot listen on {address}: {e}")))?;
                let shutdown = crate::shutdown_signal().map_err(CliError::Runtime)?;
                let connected = Connected::connect(upstream).await?;
                // Every request over HTTP brings its caller (the gate refuses the rest), and its client with it.
                let guarded = Guarded::for_callers(connected.forward(), config);
                let router = haltstate_mcp::router(guarded, callers, options);
                let bound = listener.local_addr().map_err(CliError::Runtime)?;
                tracing::info!(address = %bound, "MCP proxy listening at /mcp");
                // The first line on stdout, as `haltstate serve` writes it: what a supervisor waits for.
                crate::output::line(format_args!("listening on http://{bound}/mcp"))?;
                haltstate_server::serve_router(listener, router, limits, shutdown)
                    .await
                    .map_err(CliError::Runtime)?;
                drop(connected);
                Ok::<(), CliError>(())
            })?;
        }
        (None, None) => return Err(CliError::Usage("--stdio needs --agent".into())),
    }
    Ok(())
}

/// The upstream the flags name.
fn upstream(args: &ProxyArgs) -> Result<Upstream, CliError> {
    match (&args.upstream_cmd, &args.upstream_url) {
        (Some(line), _) => {
            let words = shlex::split(line)
                .filter(|words| !words.is_empty())
                .ok_or_else(|| {
                    CliError::Usage(format!("--upstream-cmd {line:?} is not a command line"))
                })?;
            let mut command = tokio::process::Command::new(&words[0]);
            command.args(&words[1..]);
            Ok(Upstream::Command(command))
        }
        (None, Some(url)) => Ok(Upstream::Url(url.clone())),
        (None, None) => Err(CliError::Usage(
            "name the upstream: --upstream-cmd or --upstream-url".into(),
        )),
    }
}

/// The proxy's own key for a server (stdio: HALTSTATE_API_KEY).
fn own_key() -> Result<Option<String>, CliError> {
    Ok(std::env::var("HALTSTATE_API_KEY").ok())
}

/// A client of `authority` acting as `agent` (for a server, with `key`).
fn client(
    args: &ProxyArgs,
    authority: &Guarding,
    agent: &str,
    key: Option<String>,
) -> Result<HaltStateClient, CliError> {
    let mut builder = HaltStateClient::builder()
        .tenant(args.tenant.clone())
        .agent_id(agent);
    if let Ok(key) = std::env::var("HALTSTATE_REDACTION_KEY") {
        builder = builder.redaction_key(key);
    }
    builder = match authority {
        Guarding::Server(server) => {
            let key = key.ok_or_else(|| {
                CliError::Usage("--server needs the agent's key in HALTSTATE_API_KEY".into())
            })?;
            builder.base_url(server.clone()).api_key(key)
        }
        Guarding::Embedded(authority) => builder.authority(authority.clone()),
    };
    Ok(builder.build()?)
}

/// Who requests over HTTP act as: one `--agent` on a loopback address, otherwise each request's key.
fn callers(
    args: &ProxyArgs,
    authority: &Guarding,
    address: std::net::SocketAddr,
    agent: Option<&str>,
) -> Result<Arc<dyn Callers>, CliError> {
    match (agent, authority) {
        (Some(agent), _) if address.ip().is_loopback() => {
            let client = client(args, authority, agent, own_key()?)?;
            Ok(Arc::new(OneAgent(Caller::new(agent, client))))
        }
        (Some(_), _) => Err(CliError::Usage(format!(
            "--agent without keys is only for a loopback address, not {address}: drop --agent, and each \
             request's agent key says who it is"
        ))),
        (None, Guarding::Embedded(authority)) => Ok(Arc::new(EmbeddedKeys {
            authority: authority.clone(),
            tenant: args.tenant.clone(),
            client: client(
                args,
                &Guarding::Embedded(authority.clone()),
                "default",
                None,
            )?,
        })),
        (None, Guarding::Server(server)) => {
            let (server, tenant) = (server.clone(), args.tenant.clone());
            let redaction = std::env::var("HALTSTATE_REDACTION_KEY").ok();
            Ok(Arc::new(ServerKeys::new(move |key| {
                let mut builder = HaltStateClient::builder()
                    .base_url(server.clone())
                    .tenant(tenant.clone())
                    .api_key(key);
                if let Some(redaction) = &redaction {
                    builder = builder.redaction_key(redaction.clone());
                }
                builder.build()
            })))
        }
    }
}

/// Keys of the embedded authority's tenant: each names the one agent it acts as.
struct EmbeddedKeys {
    authority: Authority,
    tenant: String,
    client: HaltStateClient,
}

impl Callers for EmbeddedKeys {
    fn caller<'a>(&'a self, key: Option<&'a str>) -> CallerFuture<'a> {
        Box::pin(async move {
            let key = key.ok_or(Refusal::Unauthenticated)?;
            let (authority, tenant, key) =
                (self.authority.clone(), self.tenant.clone(), key.to_owned());
            // A first sight of a key reads the database.
            let principal =
                tokio::task::spawn_blocking(move || authority.authenticate(&tenant, &key))
                    .await
                    .map_err(|e| Refusal::Unavailable(e.to_string()))?
                    .map_err(|_| Refusal::Unauthenticated)?;
            let agent = principal
                .act_as(None)
                .map_err(|_| Refusal::Unauthenticated)?;
            Ok(Caller::new(agent, self.client.clone()))
        })
    }
}

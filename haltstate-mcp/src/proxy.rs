//! `haltstate mcp proxy --stdio`: an upstream MCP server started as a child process, its tools guarded, served to
//! the agent's client on this process's stdin and stdout.

use std::sync::Arc;

use haltstate::HaltStateClient;
use rmcp::ServiceExt;
use rmcp::model::ServerConfig;
use rmcp::transport::{TokioChildProcess, stdio};

use crate::config::GuardConfig;
use crate::forward::{Downstream, Forward, Relay};
use crate::layer::Guarded;

/// Why the proxy stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The upstream command could not be started.
    #[error("cannot start the upstream MCP server {command:?}: {error}")]
    Spawn {
        /// The command.
        command: String,
        /// Why.
        error: std::io::Error,
    },
    /// The upstream server did not complete MCP's initialization.
    #[error("the upstream MCP server did not initialize: {0}")]
    Upstream(String),
    /// The downstream client did not complete MCP's initialization.
    #[error("the MCP client on stdin did not initialize: {0}")]
    Downstream(String),
}

/// Starts `upstream`, then serves it guarded on stdin/stdout until the client goes away.
pub async fn serve_stdio(
    upstream: tokio::process::Command,
    client: HaltStateClient,
    config: GuardConfig,
) -> Result<(), ProxyError> {
    let shown = format!("{:?}", upstream.as_std().get_program());
    let transport = TokioChildProcess::new(upstream).map_err(|error| ProxyError::Spawn {
        command: shown,
        error,
    })?;
    let downstream = Downstream::default();
    let upstream = Relay::new(Arc::clone(&downstream))
        .serve(transport)
        .await
        .map_err(|e| ProxyError::Upstream(e.to_string()))?;
    let info = upstream
        .peer_info()
        .ok_or_else(|| ProxyError::Upstream("it sent no server info".into()))?;
    // What the agent's client is told: the upstream's capabilities, name and instructions.
    let mut presented = ServerConfig::new(info.capabilities.clone());
    if let Some(server) = &info.server_info {
        presented.server_info = server.clone();
    }
    presented.instructions = info.instructions.clone();
    let forward = Forward::new(upstream.peer().clone(), Arc::new(presented), downstream);
    let downstream = Guarded::new(forward, client, config)
        .serve(stdio())
        .await
        .map_err(|e| ProxyError::Downstream(e.to_string()))?;
    // The client closing stdin ends the session; the upstream child is stopped with `upstream` when it drops.
    let _ = downstream.waiting().await;
    drop(upstream);
    Ok(())
}

//! `haltstate mcp proxy --stdio`: an upstream MCP server (a child process over stdio, or a streamable-HTTP URL),
//! its tools guarded, served to the agent's client on this process's stdin and stdout.

use std::sync::Arc;

use haltstate::HaltStateClient;
use rmcp::ServiceExt;
use rmcp::model::ServerConfig;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess, stdio};

use crate::config::GuardConfig;
use crate::forward::Forward;
use crate::layer::Guarded;
use crate::relay::{Relay, Routes};

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
    /// The upstream URL is not one the proxy can reach.
    #[error("upstream URL {0:?}: only http:// and https:// are served")]
    UpstreamUrl(String),
    /// The downstream client did not complete MCP's initialization.
    #[error("the MCP client on stdin did not initialize: {0}")]
    Downstream(String),
}

/// Where the upstream MCP server is.
#[derive(Debug)]
pub enum Upstream {
    /// A command started as a child process, spoken to over its stdin and stdout.
    Command(tokio::process::Command),
    /// A streamable-HTTP endpoint (`https://host/mcp`, or `http://`), its certificate checked against the
    /// system's trusted roots (`SSL_CERT_FILE` names others). The agent's credentials are never sent to it.
    Url(String),
}

/// An upstream MCP server the proxy is connected to: [`forward`](Self::forward) answers from it (guard that with
/// [`Guarded`]). The upstream (a child process: stopped) goes when this drops.
#[derive(Debug)]
pub struct Connected {
    upstream: RunningService<RoleClient, Relay>,
    forward: Forward,
}

impl Connected {
    /// Connects to `upstream` and completes MCP's initialization with it.
    pub async fn connect(upstream: Upstream) -> Result<Self, ProxyError> {
        let routes = Routes::default();
        let relay = Relay::new(routes.clone());
        let upstream = match upstream {
            Upstream::Command(command) => {
                let shown = format!("{:?}", command.as_std().get_program());
                let transport =
                    TokioChildProcess::new(command).map_err(|error| ProxyError::Spawn {
                        command: shown,
                        error,
                    })?;
                relay.serve(transport).await
            }
            Upstream::Url(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return Err(ProxyError::UpstreamUrl(url));
            }
            Upstream::Url(url) => {
                relay
                    .serve(StreamableHttpClientTransport::from_uri(url))
                    .await
            }
        }
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
        let forward = Forward::new(upstream.peer().clone(), Arc::new(presented), routes);
        Ok(Self { upstream, forward })
    }

    /// The handler answering from the upstream (cheap to clone: one per session is fine).
    pub fn forward(&self) -> Forward {
        self.forward.clone()
    }

    /// Whether the upstream has gone (its process exited, its connection closed).
    pub fn is_closed(&self) -> bool {
        self.upstream.is_closed()
    }
}

/// Connects to `upstream`, then serves it guarded on stdin/stdout until the client goes away.
pub async fn serve_stdio(
    upstream: Upstream,
    client: HaltStateClient,
    config: GuardConfig,
) -> Result<(), ProxyError> {
    let connected = Connected::connect(upstream).await?;
    let downstream = Guarded::new(connected.forward(), client, config)
        .serve(stdio())
        .await
        .map_err(|e| ProxyError::Downstream(e.to_string()))?;
    // The client closing stdin ends the session; the upstream child is stopped with `connected` when it drops.
    let _ = downstream.waiting().await;
    drop(connected);
    Ok(())
}

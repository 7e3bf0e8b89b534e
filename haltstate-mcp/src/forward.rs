//! The upstream side of the proxy: a `ServerHandler` that answers each request by asking an upstream MCP server
//! (a child process over stdio), so that [`Guarded`](crate::Guarded) over it guards the upstream's tools.
//! Tools, resources and prompts pass through; resources and prompts unguarded (only tool calls act). Progress the
//! upstream reports on a forwarded request reaches the downstream client ([`Relay`]), whose progress token the
//! forwarded request carries unchanged.

use std::sync::{Arc, OnceLock};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ReadResourceRequestParams,
    ReadResourceResponse, ServerConfig,
};
use rmcp::service::{NotificationContext, RequestContext, RoleClient, RoleServer, ServiceError};
use rmcp::{ClientHandler, ErrorData as McpError, Peer, ServerHandler};

/// The downstream client, once it has asked something: where the upstream's progress goes.
pub type Downstream = Arc<OnceLock<Peer<RoleServer>>>;

/// The proxy's client of the upstream server: relays the upstream's progress notifications downstream.
#[derive(Debug, Clone, Default)]
pub struct Relay {
    downstream: Downstream,
}

impl Relay {
    /// A relay to the downstream client [`Forward`] learns of.
    pub fn new(downstream: Downstream) -> Self {
        Self { downstream }
    }
}

impl ClientHandler for Relay {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        if let Some(peer) = self.downstream.get()
            && let Err(error) = peer.notify_progress(params).await
        {
            tracing::debug!(%error, "progress could not be relayed to the client");
        }
    }
}

/// Answers every request from the upstream server behind `peer`.
#[derive(Debug, Clone)]
pub struct Forward {
    upstream: Peer<RoleClient>,
    info: Arc<ServerConfig>,
    downstream: Downstream,
}

impl Forward {
    /// Forwards to the server behind `upstream`, presenting what it said of itself at initialization; the
    /// downstream client is recorded in `downstream` for the [`Relay`].
    pub fn new(
        upstream: Peer<RoleClient>,
        info: Arc<ServerConfig>,
        downstream: Downstream,
    ) -> Self {
        Self {
            upstream,
            info,
            downstream,
        }
    }
}

/// An upstream failure as the downstream client sees it: the upstream's own JSON-RPC error as it was, anything
/// else (the process exited, a timeout) as an internal error that says so.
fn upstream_error(error: ServiceError) -> McpError {
    match error {
        ServiceError::McpError(error) => error,
        other => McpError::internal_error(format!("the upstream MCP server: {other}"), None),
    }
}

impl ServerHandler for Forward {
    fn get_info(&self) -> ServerConfig {
        self.info.as_ref().clone()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        self.upstream
            .list_tools(request)
            .await
            .map_err(upstream_error)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        // One proxy serves one client (stdio): the first request names it.
        self.downstream.get_or_init(|| context.peer.clone());
        // Dropped when the downstream client cancels: the upstream request is cancelled with it.
        self.upstream
            .call_tool_once(request)
            .await
            .map_err(upstream_error)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        self.upstream
            .list_resources(request)
            .await
            .map_err(upstream_error)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        self.upstream
            .list_resource_templates(request)
            .await
            .map_err(upstream_error)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        self.upstream
            .read_resource_once(request)
            .await
            .map_err(upstream_error)
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        self.upstream
            .list_prompts(request)
            .await
            .map_err(upstream_error)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        self.upstream
            .get_prompt_once(request)
            .await
            .map_err(upstream_error)
    }
}

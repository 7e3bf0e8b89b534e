//! The upstream side of the proxy: a `ServerHandler` that answers each request by asking an upstream MCP server
//! (a child process over stdio), so that [`Guarded`](crate::Guarded) over it guards the upstream's tools.
//! Tools, resources and prompts pass through; resources and prompts unguarded (only tool calls act).

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerConfig,
};
use rmcp::service::{RequestContext, RoleClient, RoleServer, ServiceError};
use rmcp::{ErrorData as McpError, Peer, ServerHandler};

/// Answers every request from the upstream server behind `peer`.
#[derive(Debug, Clone)]
pub struct Forward {
    upstream: Peer<RoleClient>,
    info: Arc<ServerConfig>,
}

impl Forward {
    /// Forwards to the server behind `upstream`, presenting what it said of itself at initialization.
    pub fn new(upstream: Peer<RoleClient>, info: Arc<ServerConfig>) -> Self {
        Self { upstream, info }
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
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
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

//! The upstream side of the proxy: a `ServerHandler` that answers each request by asking an upstream MCP server,
//! so that [`Guarded`](crate::Guarded) over it guards the upstream's tools. Tools, resources and prompts pass
//! through (with completions, logging levels and resource subscriptions); resources and prompts unguarded (only tool calls act). Progress the upstream reports on a forwarded
//! tool call reaches the client that made it ([`Routes`]).

// Logging levels and `resources/subscribe` are deprecated in the newest revision but still served to older
// clients (and upstreams): they pass through like every other method.
#![allow(deprecated)]

use std::sync::Arc;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, CancelledNotification,
    CancelledNotificationParam, ClientRequest, CompleteRequestParams, CompleteResult,
    GetPromptRequestParams, GetPromptResponse, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, RequestId, ServerConfig, ServerResult, SetLevelRequestParams,
    SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::{PeerRequestOptions, RequestContext, RoleClient, RoleServer, ServiceError};
use rmcp::{ErrorData as McpError, Peer, ServerHandler};

use crate::relay::Routes;

/// Answers every request from the upstream server behind `peer`.
#[derive(Debug, Clone)]
pub struct Forward {
    upstream: Peer<RoleClient>,
    info: Arc<ServerConfig>,
    routes: Routes,
}

impl Forward {
    /// Forwards to the server behind `upstream`, presenting what it said of itself at initialization; a call
    /// that asks for progress is routed in `routes` for the [`Relay`](crate::Relay).
    pub fn new(upstream: Peer<RoleClient>, info: Arc<ServerConfig>, routes: Routes) -> Self {
        Self {
            upstream,
            info,
            routes,
        }
    }

    /// One `tools/call` upstream, its progress routed to `context`'s client under the client's own token while it
    /// runs; dropped before its answer (the client cancelled), it is cancelled upstream.
    async fn call_upstream(
        &self,
        params: CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ServiceError> {
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let wanted = context.meta.get_progress_token();
        // Progress may come back before the token is known here: the relay waits at the gate until it is routed.
        let routing = match wanted {
            Some(_) => Some(self.routes.hold().await),
            None => None,
        };
        let handle = self
            .upstream
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await?;
        let _route = wanted.map(|token| {
            self.routes
                .route(handle.progress_token.clone(), context.peer.clone(), token)
        });
        drop(routing);
        let mut abandoned = Abandoned {
            upstream: self.upstream.clone(),
            id: Some(handle.id.clone()),
        };
        let result = handle.await_response().await;
        abandoned.id = None;
        match result? {
            ServerResult::CallToolResult(result) => Ok(CallToolResponse::Complete(result)),
            ServerResult::InputRequiredResult(result) => {
                Ok(CallToolResponse::InputRequired(result))
            }
            ServerResult::CreateTaskResult(result) => Ok(CallToolResponse::Task(result)),
            ServerResult::EmptyResult(_) => Ok(CallToolResponse::Complete(Default::default())),
            _ => Err(ServiceError::UnexpectedResponse),
        }
    }
}

/// A request upstream whose answer nobody waits for any more: cancelled upstream when dropped unanswered, so the
/// upstream stops the work (and the guard reports the call cancelled, not completed).
struct Abandoned {
    upstream: Peer<RoleClient>,
    id: Option<RequestId>,
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let upstream = self.upstream.clone();
        runtime.spawn(async move {
            let cancelled = CancelledNotification::new(CancelledNotificationParam::new(
                Some(id),
                Some("cancelled by the client".into()),
            ));
            let _ = upstream.send_notification(cancelled.into()).await;
        });
    }
}

/// The session a request came in (streamable HTTP's `Mcp-Session-Id`); "" for the one client of stdio.
fn session_of(context: &RequestContext<RoleServer>) -> String {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.headers.get("mcp-session-id"))
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default()
        .to_owned()
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
        // Dropped when the downstream client cancels: the upstream request is cancelled with it.
        self.call_upstream(request, &context)
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

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        self.upstream
            .complete(request)
            .await
            .map_err(upstream_error)
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        // One upstream serves every client: the last level any of them set is the upstream's.
        self.upstream
            .set_level(request)
            .await
            .map_err(upstream_error)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.routes
            .subscribe(&request.uri, &session_of(&context), &context.peer);
        self.upstream
            .subscribe(request)
            .await
            .map_err(upstream_error)
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        // The upstream stops only when no client of the proxy still listens.
        if self.routes.unsubscribe(&request.uri, &session_of(&context)) {
            self.upstream
                .unsubscribe(request)
                .await
                .map_err(upstream_error)?;
        }
        Ok(())
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

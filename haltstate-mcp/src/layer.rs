//! The guard layer: any `ServerHandler`, with every `tools/call` under a guard. Everything else (initialize,
//! `tools/list`, resources, prompts, notifications, tasks) is the wrapped handler's, unchanged.

// Logging and `resources/subscribe` are deprecated in the newest revision but still served to older clients: the
// wrapped handler's must be passed through like every other method.
#![allow(deprecated)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use haltstate::{GuardError, HaltStateClient, Outcome};
use rmcp::ErrorData as McpError;
use rmcp::ServerHandler;
use rmcp::model::*;
use rmcp::service::{
    MaybeSendFuture, NotificationContext, RequestContext, RoleServer, SubscriptionContext,
};

use crate::caller::Caller;
use crate::config::GuardConfig;
use crate::{answer, call, elicit};

/// A `ServerHandler` whose tool calls are guarded: each `tools/call` asks the authority first, runs only when
/// allowed, and reports how it ended (an `isError` result or a JSON-RPC error as failed, a cancelled request as
/// cancelled). A refusal comes back as a tool result the model can read (`isError: true`, a sentence, and
/// `structuredContent.haltstate`).
///
/// ```no_run
/// # fn serve<H: rmcp::ServerHandler>(my_handler: H, client: haltstate::HaltStateClient) -> Result<(), Box<dyn std::error::Error>> {
/// use haltstate_mcp::{GuardConfig, Guarded};
///
/// let guarded = Guarded::new(my_handler, client, GuardConfig::new("files")?.resource_arg("write_file", "path"));
/// // serve `guarded` on any rmcp transport, as `my_handler` would be
/// # let _ = guarded; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Guarded<H> {
    inner: H,
    /// The client of calls that bring no [`Caller`]; none: such calls are refused.
    client: Option<HaltStateClient>,
    config: GuardConfig,
    /// The risk each listed tool's annotations give (kept only with `trust_annotations`).
    risks: Arc<Mutex<HashMap<String, &'static str>>>,
}

/// The risk a tool's annotations claim, MCP's defaults filled in (not read-only, destructive).
fn risk_of(annotations: Option<&ToolAnnotations>) -> &'static str {
    let read_only = annotations.and_then(|a| a.read_only_hint).unwrap_or(false);
    let destructive = annotations.and_then(|a| a.destructive_hint).unwrap_or(true);
    match (read_only, destructive) {
        (true, _) => "read_only",
        (false, false) => "additive",
        (false, true) => "destructive",
    }
}

impl<H: ServerHandler> Guarded<H> {
    /// Guards `inner`'s tool calls with `client`'s authority, as `config` says.
    pub fn new(inner: H, client: HaltStateClient, config: GuardConfig) -> Self {
        Self {
            inner,
            client: Some(client),
            config,
            risks: Arc::default(),
        }
    }

    /// Guards `inner`'s tool calls as `config` says, each through the client of the [`Caller`] its HTTP
    /// request authenticated as; a call without one is refused (nothing runs on nobody's authority).
    pub fn for_callers(inner: H, config: GuardConfig) -> Self {
        Self {
            inner,
            client: None,
            config,
            risks: Arc::default(),
        }
    }

    /// The risk of a call of `tool`, when annotations are trusted.
    fn risk(&self, tool: &str) -> Option<&'static str> {
        if !self.config.trust_annotations {
            return None;
        }
        let known = self
            .risks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(tool)
            .copied();
        Some(known.unwrap_or("destructive"))
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    async fn guarded_call(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let arguments = request.arguments.clone().unwrap_or_default();
        // The request's `_meta` (rmcp moves it into the context before the handler runs).
        let meta = request
            .meta
            .as_ref()
            .map(|meta| &meta.0.0)
            .filter(|meta| meta.contains_key(call::KEY_META))
            .unwrap_or(&context.meta.0.0);
        // Over HTTP, the caller the request authenticated as; otherwise the configured agent, on our client.
        let caller = Caller::of(&context.extensions);
        let (client, agent) = match caller {
            Some(caller) => (caller.client().clone(), Some(caller.agent())),
            None => match &self.client {
                Some(client) => (client.clone(), self.config.agent.as_deref()),
                None => {
                    return Err(McpError::invalid_request(
                        "this server guards calls only for an authenticated caller",
                        None,
                    ));
                }
            },
        };
        let mut action = call::action(&self.config, agent, &request.name, &arguments, Some(meta))
            .map_err(|e| McpError::invalid_params(e.to_string(), None))?;
        // The 2026-07-28 round trip: a retry carrying our sealed state must be this agent's same call.
        let binding = match &self.config.sealer {
            Some(_) => Some(
                call::binding(&self.config, agent, &request.name, &arguments, Some(meta))
                    .map_err(|e| McpError::invalid_params(e.to_string(), None))?,
            ),
            None => None,
        };
        let declined = elicit::declined(request.input_responses.as_ref());
        if let Some(state) = request
            .request_state
            .take_if(|state| elicit::is_ours(state))
        {
            match (&self.config.sealer, &binding) {
                (Some(sealer), Some(binding)) => drop(sealer.open(&state, binding)?),
                _ => {
                    return Err(McpError::invalid_params(
                        "requestState: this server asks for no input",
                        None,
                    ));
                }
            }
            // Our input is not the upstream's business.
            if let Some(responses) = &mut request.input_responses {
                responses.remove(elicit::APPROVAL_INPUT);
            }
            request.input_responses = request.input_responses.take().filter(|r| !r.is_empty());
        }
        if let Some(risk) = self.risk(&request.name) {
            action = action.risk(risk);
        }
        // Only a call that may wait for its approval keeps its action for the second guard.
        let retry = self.config.approval_wait.map(|wait| (wait, action.clone()));
        let mut answer = client.guard(action).await;
        if let (Err(GuardError::ApprovalPending { approval_id, .. }), Some((wait, action))) =
            (&answer, retry)
        {
            match client.wait_for_approval(approval_id, wait).await {
                // Decided: guard again, which runs an approval and answers a rejection.
                Ok(_) => answer = client.guard(action).await,
                // Not decided in time: the answer stays pending.
                Err(GuardError::ApprovalTimeout { .. }) => {}
                Err(other) => answer = Err(other),
            }
        }
        // A pending approval's window: in the answer, and as the sealed state's lifetime. Asked separately (the
        // guard's error names the approval only); not knowing it leaves it out, it never fails the answer.
        let expires_at = match &answer {
            Err(GuardError::ApprovalPending { approval_id, .. }) => {
                client.approval_window(approval_id).await.ok().flatten()
            }
            _ => None,
        };
        if let Err(GuardError::ApprovalPending { approval_id, .. }) = &answer
            && let (Some(sealer), Some(template), Some(binding)) =
                (&self.config.sealer, &self.config.approval_url, &binding)
            && !declined
            && elicit::can_open_urls(&context)
        {
            let ttl =
                expires_at.and_then(|at| (at - time::OffsetDateTime::now_utc()).try_into().ok());
            let url = template.replace("{id}", approval_id);
            return Ok(sealer.ask(approval_id, url, ttl, binding)?.into());
        }
        let mut permit = match answer {
            Ok(permit) => permit,
            Err(refusal) => {
                return Ok(answer::refused(&self.config, &refusal, expires_at).into());
            }
        };
        // Should this future be dropped mid-call (the session ended), the permit reports the call cancelled.
        permit.set_drop_outcome(Outcome::Cancelled);
        let cancelled = context.ct.clone();
        let response = tokio::select! {
            response = self.inner.call_tool(request, context) => response,
            // The client cancelled the request: the tool's future is dropped (a forwarded call is cancelled
            // upstream with it) and the evidence says so. The client no longer waits for an answer.
            () = cancelled.cancelled() => {
                if let Err(error) = permit
                    .finish(Outcome::Cancelled, Some("the client cancelled the call".into()))
                    .await
                {
                    tracing::error!(%error, "the cancellation of a guarded tool call could not be reported");
                }
                return Err(McpError::internal_error("the client cancelled the call", None));
            }
        };
        let reported =
            match &response {
                Ok(CallToolResponse::Complete(result)) if result.is_error != Some(true) => {
                    permit.complete().await
                }
                Ok(CallToolResponse::Complete(_)) => permit.fail("the tool answered isError").await,
                Ok(_) => permit
                    .fail("the tool asked for more input or made a task; the call did not complete")
                    .await,
                Err(error) => {
                    permit
                        .fail(format!("JSON-RPC error {}", error.code.0))
                        .await
                }
            };
        if let Err(error) = reported {
            tracing::error!(%error, "the outcome of a guarded tool call could not be reported");
        }
        response
    }
}

impl<H: ServerHandler> ServerHandler for Guarded<H> {
    fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CallToolResponse, McpError>> + MaybeSendFuture + '_ {
        self.guarded_call(request, context)
    }

    fn ping(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.ping(context)
    }

    fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<InitializeResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.initialize(request, context)
    }

    fn negotiate_initialize(
        &self,
        request: &InitializeRequestParams,
    ) -> Result<InitializeResult, McpError> {
        self.inner.negotiate_initialize(request)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.inner.supported_protocol_versions()
    }

    fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<DiscoverResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.discover(context)
    }

    fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CompleteResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.complete(request, context)
    }

    fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.set_level(request, context)
    }

    fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetPromptResponse, McpError>> + MaybeSendFuture + '_ {
        self.inner.get_prompt(request, context)
    }

    fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListPromptsResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.list_prompts(request, context)
    }

    fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourcesResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.list_resources(request, context)
    }

    fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourceTemplatesResult, McpError>> + MaybeSendFuture + '_
    {
        self.inner.list_resource_templates(request, context)
    }

    fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceResponse, McpError>> + MaybeSendFuture + '_ {
        self.inner.read_resource(request, context)
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        self.inner.accepted_subscription_filter(requested)
    }

    fn listen(
        &self,
        context: SubscriptionContext,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.listen(context)
    }

    fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.subscribe(request, context)
    }

    fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.unsubscribe(request, context)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let agent = match Caller::of(&context.extensions) {
            Some(caller) => Some(caller.agent().to_owned()),
            None => self
                .config
                .agent
                .clone()
                .or_else(|| self.client.as_ref().map(|c| c.agent_id().to_owned())),
        };
        let mut listed = self.inner.list_tools(request, context).await?;
        if let (Some(visible), Some(agent)) = (&self.config.visible, &agent) {
            listed
                .tools
                .retain(|tool| visible(&self.config.action_of(&tool.name), agent));
        }
        if self.config.trust_annotations {
            let mut risks = self
                .risks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for tool in &listed.tools {
                risks.insert(tool.name.to_string(), risk_of(tool.annotations.as_ref()));
            }
        }
        Ok(listed)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner.get_tool(name)
    }

    fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CustomResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.on_custom_request(request, context)
    }

    fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_cancelled(notification, context)
    }

    fn on_progress(
        &self,
        notification: ProgressNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_progress(notification, context)
    }

    fn on_initialized(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_initialized(context)
    }

    fn on_roots_list_changed(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_roots_list_changed(context)
    }

    fn on_custom_notification(
        &self,
        notification: CustomNotification,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_custom_notification(notification, context)
    }

    fn get_info(&self) -> ServerConfig {
        self.inner.get_info()
    }

    fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetTaskResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.get_task(request, context)
    }

    fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.update_task(request, context)
    }

    fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.cancel_task(request, context)
    }

    fn list_skills(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListSkillsResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.list_skills(request, context)
    }

    fn get_skill(
        &self,
        request: GetSkillRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetSkillResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.get_skill(request, context)
    }

    fn read_resource_directory(
        &self,
        request: ReadResourceDirectoryRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceDirectoryResult, McpError>> + MaybeSendFuture + '_
    {
        self.inner.read_resource_directory(request, context)
    }
}

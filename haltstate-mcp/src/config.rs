//! What the guard needs to know about the server it guards: its name (actions are `mcp.<name>.<tool>`), who the
//! agent is, which tools run once ever, which arguments are secret, which argument names the resource.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Texts longer than this many characters are sent to policy as their length and a digest, not their content
/// (a file's content, a message body).
pub const DEFAULT_LONG_STRING: usize = 256;

/// Why a guard cannot be configured as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The server's name cannot be part of an action name.
    #[error(
        "server name {0:?} must be 1-64 letters, digits, `_` or `-` (it becomes part of the action `mcp.<name>.<tool>`)"
    )]
    ServerName(String),
    /// A tool or argument name is empty.
    #[error("an empty {0} name")]
    EmptyName(&'static str),
    /// The key sealing request states is too short.
    #[error("the request-state key must be at least 32 bytes")]
    StateKey,
}

/// How tool calls of one server are guarded.
///
/// ```
/// use haltstate_mcp::GuardConfig;
///
/// let config = GuardConfig::new("files")?
///     .agent("desktop-agent")
///     .once("delete_file")
///     .secret_arg("write_file", "token")
///     .resource_arg("write_file", "path");
/// assert_eq!(config.action_of("write_file"), "mcp.files.write_file");
/// # Ok::<(), haltstate_mcp::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct GuardConfig {
    pub(crate) server: String,
    pub(crate) agent: Option<String>,
    pub(crate) once: BTreeSet<String>,
    pub(crate) secret_args: BTreeMap<String, BTreeSet<String>>,
    pub(crate) resource_args: BTreeMap<String, String>,
    pub(crate) long_string: usize,
    pub(crate) approval_url: Option<String>,
    pub(crate) approval_wait: Option<Duration>,
    pub(crate) trust_annotations: bool,
    pub(crate) visible: Option<Arc<Visible>>,
    pub(crate) sealer: Option<crate::elicit::Sealer>,
}

/// Whether a tool's action may be shown to an agent: `(action, agent)`.
pub type Visible = dyn Fn(&str, &str) -> bool + Send + Sync;

impl std::fmt::Debug for GuardConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardConfig")
            .field("server", &self.server)
            .field("agent", &self.agent)
            .field("once", &self.once)
            .field("secret_args", &self.secret_args)
            .field("resource_args", &self.resource_args)
            .field("long_string", &self.long_string)
            .field("approval_url", &self.approval_url)
            .field("approval_wait", &self.approval_wait)
            .field("trust_annotations", &self.trust_annotations)
            .field("hides_tools", &self.visible.is_some())
            .field("seals_request_state", &self.sealer.is_some())
            .finish()
    }
}

impl GuardConfig {
    /// A guard for the server named `server`.
    pub fn new(server: impl Into<String>) -> Result<Self, ConfigError> {
        let server = server.into();
        let valid = !server.is_empty()
            && server.len() <= 64
            && server
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(ConfigError::ServerName(server));
        }
        Ok(Self {
            server,
            agent: None,
            once: BTreeSet::new(),
            secret_args: BTreeMap::new(),
            resource_args: BTreeMap::new(),
            long_string: DEFAULT_LONG_STRING,
            approval_url: None,
            approval_wait: None,
            trust_annotations: false,
            visible: None,
            sealer: None,
        })
    }

    /// The agent the calls act as (default: the client's agent).
    pub fn agent(mut self, agent: impl Into<String>) -> Self {
        self.agent = Some(agent.into());
        self
    }

    /// Calls of `tool` run once ever for the same arguments (a derived key is otherwise one operation until it
    /// completes, then the next call is a new one).
    pub fn once(mut self, tool: impl Into<String>) -> Self {
        self.once.insert(tool.into());
        self
    }

    /// The argument `arg` of `tool` leaves the process only as a keyed digest (the client's redaction key).
    pub fn secret_arg(mut self, tool: impl Into<String>, arg: impl Into<String>) -> Self {
        self.secret_args
            .entry(tool.into())
            .or_default()
            .insert(arg.into());
        self
    }

    /// The argument `arg` of `tool` names what the call acts on (a path, a ticket id): the action's resource.
    pub fn resource_arg(mut self, tool: impl Into<String>, arg: impl Into<String>) -> Self {
        self.resource_args.insert(tool.into(), arg.into());
        self
    }

    /// Texts longer than `chars` characters are sent as their length and a digest.
    pub fn long_string(mut self, chars: usize) -> Self {
        self.long_string = chars;
        self
    }

    /// Where an approver decides an approval: `{id}` in `template` is replaced by its id (the console's
    /// `https://authority.example/ui/approvals/{id}`, say). Answers for a pending approval carry the link.
    pub fn approval_url(mut self, template: impl Into<String>) -> Self {
        self.approval_url = Some(template.into());
        self
    }

    /// Hold a call that needs a human's approval up to `wait` while the approval is decided, then run it (or
    /// answer the rejection); past `wait` the call answers pending, as without this. For clients that cannot
    /// retry by themselves.
    pub fn approval_wait(mut self, wait: Duration) -> Self {
        self.approval_wait = Some(wait);
        self
    }

    /// Take the tools' annotations (hints the server gives in `tools/list`) as the calls' risk: `read_only`,
    /// `additive` (not destructive) or `destructive` (MCP's default when a tool says nothing, and for a tool not
    /// listed yet). They are the server's claims, so only for a server you trust; without this, no risk is sent.
    pub fn trust_annotations(mut self, trust: bool) -> Self {
        self.trust_annotations = trust;
        self
    }

    /// `tools/list` shows an agent only the tools whose action `visible(action, agent)` admits: hide the tools no
    /// policy can ever allow it (`CompiledPolicies::can_allow`). Hiding is a courtesy to the model, not a guard:
    /// a hidden tool called anyway is guarded like any other.
    pub fn hide_tools(
        mut self,
        visible: impl Fn(&str, &str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.visible = Some(Arc::new(visible));
        self
    }

    /// Answer a call that needs a human `input_required` to clients of 2026-07-28 that can send their user to a
    /// URL: a URL elicitation of the approval's page ([`approval_url`](Self::approval_url) is needed too), the
    /// request state sealed with `key` (at least 32 bytes; states sealed with another key are refused, so
    /// instances behind one address share it). Other clients get the pending tool result as before.
    pub fn request_state_key(mut self, key: impl Into<Vec<u8>>) -> Result<Self, ConfigError> {
        self.sealer = Some(crate::elicit::Sealer::new(key).ok_or(ConfigError::StateKey)?);
        Ok(self)
    }

    /// The action a call of `tool` is: `mcp.<server>.<tool>`.
    pub fn action_of(&self, tool: &str) -> String {
        format!("mcp.{}.{tool}", self.server)
    }
}

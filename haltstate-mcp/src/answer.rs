//! A call that does not run, answered so the model can act on it: a tool result with `isError: true`, a sentence
//! for the model, and `structuredContent.haltstate` holding the decision. (Protocol faults stay JSON-RPC errors;
//! a refusal is not one.)

use haltstate::GuardError;
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::config::GuardConfig;

/// The tool result for a call the authority did not let run.
/// `expires_at`: a pending approval's window, when known.
pub(crate) fn refused(
    config: &GuardConfig,
    error: &GuardError,
    expires_at: Option<time::OffsetDateTime>,
) -> CallToolResult {
    let mut decision =
        json!({"status": error.decision(), "reason": error.to_string(), "retry": Value::Null});
    let sentence = match error {
        GuardError::ApprovalPending { approval_id, .. } => {
            decision["approval_id"] = json!(approval_id);
            if let Some(at) = expires_at.and_then(|at| at.format(&Rfc3339).ok()) {
                decision["expires_at"] = json!(at);
            }
            decision["retry"] = json!("same_arguments");
            if let Some(template) = &config.approval_url {
                decision["approval_url"] = json!(template.replace("{id}", approval_id));
            }
            format!(
                "This call needs a human's approval ({approval_id}); nothing ran. Retry the same call with the \
                 same arguments once it is approved."
            )
        }
        GuardError::InProgress { .. } => {
            decision["retry"] = json!("same_arguments");
            "The same call is running right now; nothing ran twice. Retry it later with the same arguments."
                .to_owned()
        }
        GuardError::ActionDenied { reason, policy_id } => {
            decision["policy_id"] = json!(policy_id);
            format!("Policy denied this call: {reason}. Do not retry it as it is.")
        }
        GuardError::AlreadyCompleted { .. } => {
            "This exact call already ran once, and runs only once; nothing ran again.".to_owned()
        }
        GuardError::KillSwitchTriggered { state, reason } => {
            decision["kill_switch"] = json!(state.to_string());
            format!("The operators stopped this agent ({state}): {reason}. Nothing ran.")
        }
        GuardError::ActionExpired { .. } => {
            "The approval for this call expired without a decision; nothing ran.".to_owned()
        }
        GuardError::RateLimited { .. } | GuardError::Connection(_) => {
            decision["retry"] = json!("later");
            "The policy authority is unreachable, so nothing ran. Retry later.".to_owned()
        }
        other => format!("This call was refused ({other}); nothing ran."),
    };
    let mut result = CallToolResult::error(vec![ContentBlock::text(sentence)]);
    result.structured_content = Some(json!({ "haltstate": decision }));
    result
}

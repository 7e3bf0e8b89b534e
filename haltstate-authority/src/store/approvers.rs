//! An approval's approvers so far, as both backends store them: a JSON list, NULL while there is none.

use haltstate_types::Approval;

use crate::error::{AuthorityError, Result};

/// The stored form of `approval.approved_by`: an approver is never dropped on the way to storage.
pub(crate) fn encode(approval: &Approval) -> Result<Option<String>> {
    if approval.approved_by.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(&approval.approved_by)
        .map(Some)
        .map_err(|e| AuthorityError::Corrupt(format!("approvers do not encode: {e}")))
}

/// The approvers a row holds.
pub(crate) fn decode(stored: Option<String>) -> std::result::Result<Vec<String>, String> {
    stored.map_or(Ok(Vec::new()), |text| {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    })
}

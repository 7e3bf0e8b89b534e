//! An approval's approvers so far, as both backends store them: a JSON list, NULL while there is none.

use haltstate_types::Approval;

/// The stored form of `approval.approved_by`.
pub(crate) fn encode(approval: &Approval) -> Option<String> {
    (!approval.approved_by.is_empty())
        .then(|| serde_json::to_string(&approval.approved_by).unwrap_or_else(|_| "[]".into()))
}

/// The approvers a row holds.
pub(crate) fn decode(stored: Option<String>) -> Result<Vec<String>, String> {
    stored.map_or(Ok(Vec::new()), |text| {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    })
}

//! Approval changes as they commit, for the approvals streams of this process.

use haltstate_types::Approval;

/// A change of an approval's status, as the approvals stream delivers it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalEvent {
    /// The approval after the change.
    pub approval: Approval,
}

//! The operations, on any storage: each loads what its rule needs through [`Tx`](crate::store::tx::Tx), applies
//! the rule (`rules/`), stores the outcome and appends its evidence. Every answer, refusal included, leaves a
//! ledger record.

pub(crate) mod approvals;
pub(crate) mod check;
pub(crate) mod guard;
pub(crate) mod judgement;
pub(crate) mod keys;
pub(crate) mod kill;
pub(crate) mod report;
pub(crate) mod sessions;
pub(crate) mod unverified;
pub(crate) mod usage;
pub(crate) mod webhooks;

/// The status of fail-open evidence in the ledger: what a caller says it ran, which moves no state row and which
/// the state check and a guard's ledger check never read as the authority's own outcome.
pub(crate) const UNVERIFIED: &str = "unverified";

pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

pub(crate) fn redaction_status(fields: &[String]) -> String {
    if fields.is_empty() {
        "none"
    } else {
        "redacted"
    }
    .to_owned()
}

//! The approvals table's writes and the transaction's reads of it, on the writer's connection, with the statements
//! both backends share (`store/sql.rs`; the decoders are in `queries.rs`).

use time::OffsetDateTime;

use haltstate_types::Approval;
use haltstate_types::timestamp::to_micros;

use super::conn::Conn;
use crate::error::Result;
use crate::store::sql::approval_json;

shared_statements!(
    PENDING_OF_AGENT,
    PENDING_OF_TENANT,
    APPROVAL_INSERT,
    APPROVAL_SETTLE,
    APPROVALS_OVERDUE
);

/// How many approvals of `tenant` (of `agent` alone when given) wait for a decision at `now`, counted up to
/// `at_most`.
pub(super) fn waiting(
    conn: &mut Conn,
    tenant: &str,
    agent: Option<&str>,
    now: OffsetDateTime,
    at_most: usize,
) -> Result<usize> {
    let now = to_micros(now);
    let at_most = i64::try_from(at_most).unwrap_or(i64::MAX);
    let row = match agent {
        Some(agent) => conn.query_opt(&PENDING_OF_AGENT, &[&tenant, &agent, &now, &at_most])?,
        None => conn.query_opt(&PENDING_OF_TENANT, &[&tenant, &now, &at_most])?,
    };
    let count: i64 = row.map_or(Ok(0), |row| row.try_get(0))?;
    Ok(usize::try_from(count).unwrap_or(usize::MAX))
}

/// A new approval, pending.
pub(super) fn insert(conn: &mut Conn, approval: &Approval, request_id: Option<&str>) -> Result<()> {
    let (params_json, metadata_json) = approval_json(approval);
    conn.execute(
        &APPROVAL_INSERT,
        &[
            &approval.id,
            &approval.tenant,
            &approval.idempotency_key,
            &request_id,
            &approval.agent_id,
            &approval.action,
            &approval.resource,
            &params_json,
            &approval.risk,
            &metadata_json,
            &approval.policy_id,
            &approval.policy_reason,
            &to_micros(approval.created_at),
            &to_micros(approval.expires_at),
            &i64::from(approval.approvals_required),
            &approval.policy_version,
        ],
    )?;
    Ok(())
}

/// Records `approval`'s decision if it is still pending; answers whether it was.
pub(super) fn settle(conn: &mut Conn, approval: &Approval) -> Result<bool> {
    let changed = conn.execute(
        &APPROVAL_SETTLE,
        &[
            &approval.id,
            &approval.tenant,
            &approval.status.as_str(),
            &approval.decided_at.map(to_micros),
            &approval.approver,
            &approval.decision_reason,
            &crate::store::approvers::encode(approval)?,
        ],
    )?;
    Ok(changed > 0)
}

/// Up to `limit` of `tenant`'s pending approvals past their expiry at `now`, the longest overdue first.
pub(super) fn overdue(
    conn: &mut Conn,
    tenant: &str,
    now: OffsetDateTime,
    limit: usize,
) -> Result<Vec<String>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = conn.query(&APPROVALS_OVERDUE, &[&tenant, &to_micros(now), &limit])?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

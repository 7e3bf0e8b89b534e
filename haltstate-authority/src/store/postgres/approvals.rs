//! The approvals table's writes and the transaction's reads of it, on the writer's connection (the decoders are in
//! `queries.rs`).

use time::OffsetDateTime;

use haltstate_types::Approval;
use haltstate_types::timestamp::to_micros;

use super::conn::Conn;
use crate::error::Result;

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
        Some(agent) => conn.query_opt(
            "SELECT COUNT(*) FROM (SELECT 1 FROM approvals WHERE tenant = $1 AND agent_id = $2 \
             AND status = 'pending' AND expires_us > $3 LIMIT $4) AS waiting",
            &[&tenant, &agent, &now, &at_most],
        )?,
        None => conn.query_opt(
            "SELECT COUNT(*) FROM (SELECT 1 FROM approvals WHERE tenant = $1 AND status = 'pending' \
             AND expires_us > $2 LIMIT $3) AS waiting",
            &[&tenant, &now, &at_most],
        )?,
    };
    let count: i64 = row.map_or(Ok(0), |row| row.try_get(0))?;
    Ok(usize::try_from(count).unwrap_or(usize::MAX))
}

/// A new approval, pending.
pub(super) fn insert(conn: &mut Conn, approval: &Approval, request_id: Option<&str>) -> Result<()> {
    let params_json = serde_json::Value::Object(approval.params.clone()).to_string();
    let metadata_json = approval
        .metadata
        .clone()
        .map(|m| serde_json::Value::Object(m).to_string());
    conn.execute(
        "INSERT INTO approvals (id, tenant, idempotency_key, request_id, agent_id, action, resource, params, \
         risk, metadata, policy_id, policy_reason, status, created_us, expires_us, approvals_required, \
         policy_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', $13, $14, $15, $16)",
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
        "UPDATE approvals SET status = $3, decided_us = $4, approver = $5, decision_reason = $6, \
         approved_by = $7 WHERE tenant = $2 AND id = $1 AND status = 'pending'",
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
    let rows = conn.query(
        "SELECT id FROM approvals WHERE tenant = $1 AND status = 'pending' AND expires_us <= $2 \
         ORDER BY expires_us LIMIT $3",
        &[
            &tenant,
            &to_micros(now),
            &i64::try_from(limit).unwrap_or(i64::MAX),
        ],
    )?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

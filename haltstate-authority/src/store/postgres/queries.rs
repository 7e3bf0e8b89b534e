//! SQL reads shared by the transaction ([`super::tx::PgTx`]) and the readers ([`super::reads::PgReads`]); the
//! PostgreSQL twin of `sqlite/queries.rs`, with the same rules (an undecodable row is an error, never a default).

use postgres::Row;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use haltstate_types::timestamp::{format_rfc3339, from_micros, to_micros};
use haltstate_types::{
    AgentSet, Approval, ApprovalStatus, ChainedRecord, EvidenceQuery, GENESIS_HASH, KeyInfo,
    KillScope, KillState, KillStatus, LedgerHead, Principal, Role,
};

use super::conn::{Conn, unsigned};
use crate::error::{AuthorityError, Result};
use crate::records::{CheckRecord, KeyRecord, KeyStatus};
use crate::secrets;

pub(crate) fn load_key(
    conn: &mut Conn,
    tenant: &str,
    agent: &str,
    key: &str,
) -> Result<Option<KeyRecord>> {
    let Some(row) = conn.query_opt(
        "SELECT fingerprint, agent_id, action, state, approval_id, policy_id, reason, claim_token, \
         lease_until_us, outcome_seq, claimed_by, client_token, usage_us, usage, attempts, retry_digest, \
         lifetime, generation FROM idempotency WHERE tenant = $1 AND agent_id = $2 AND key = $3",
        &[&tenant, &agent, &key],
    )?
    else {
        return Ok(None);
    };
    let (state, lifetime) = crate::store::decode_key_state(key, row.try_get(3)?, row.try_get(16)?)?;
    Ok(Some(KeyRecord {
        key: key.to_owned(),
        fingerprint: row.try_get(0)?,
        agent_id: row.try_get(1)?,
        action: row.try_get(2)?,
        state,
        lifetime,
        generation: unsigned(row.try_get(17)?, "a key's generation")?,
        approval_id: row.try_get(4)?,
        policy_id: row.try_get(5)?,
        reason: row.try_get(6)?,
        claim_token: row.try_get(7)?,
        retry_digest: row.try_get(15)?,
        attempts: u32::try_from(row.try_get::<_, i64>(14)?).map_err(|_| {
            AuthorityError::Corrupt(format!(
                "idempotency key {key:?} has a negative attempt count"
            ))
        })?,
        lease_until: row.try_get::<_, Option<i64>>(8)?.map(from_micros),
        outcome_seq: row
            .try_get::<_, Option<i64>>(9)?
            .map(|seq| unsigned(seq, "an outcome's sequence number"))
            .transpose()?,
        claimed_by: row.try_get(10)?,
        client_token: row.try_get(11)?,
        charged: crate::store::usage::charge_of(row.try_get(12)?, row.try_get(13)?)?,
    }))
}

/// Maps a row; a pending approval past its window reads as expired at its expiry time.
/// A query of approvals: the columns [`approval_from_row`] reads, then `$rest` (the statement text must be
/// `'static` to stay prepared on the connection).
macro_rules! select_approvals {
    ($rest:literal) => {
        concat!(
            "SELECT id, tenant, idempotency_key, agent_id, action, resource, params, risk, metadata, policy_id, \
             policy_reason, status, created_us, expires_us, decided_us, approver, decision_reason, \
             approvals_required, approved_by, policy_version FROM approvals ",
            $rest
        )
    };
}

pub(crate) fn approval_from_row(row: &Row, now: OffsetDateTime) -> Result<Approval> {
    let corrupt = |column: usize, why: String| {
        AuthorityError::Corrupt(format!("approval column {column}: {why}"))
    };
    let params: String = row.try_get(6)?;
    let metadata: Option<String> = row.try_get(8)?;
    let status: String = row.try_get(11)?;
    let expires_at = from_micros(row.try_get(13)?);
    let mut status = ApprovalStatus::parse(&status)
        .ok_or_else(|| corrupt(11, format!("unknown status {status:?}")))?;
    let mut decided_at = row.try_get::<_, Option<i64>>(14)?.map(from_micros);
    if status == ApprovalStatus::Pending && expires_at <= now {
        status = ApprovalStatus::Expired;
        decided_at = Some(expires_at);
    }
    let params = serde_json::from_str::<Map<String, Value>>(&params)
        .map_err(|e| corrupt(6, e.to_string()))?;
    let metadata = metadata
        .map(|m| serde_json::from_str(&m))
        .transpose()
        .map_err(|e| corrupt(8, e.to_string()))?;
    Ok(Approval {
        id: row.try_get(0)?,
        tenant: row.try_get(1)?,
        idempotency_key: row.try_get(2)?,
        agent_id: row.try_get(3)?,
        action: row.try_get(4)?,
        resource: row.try_get(5)?,
        params,
        risk: row.try_get(7)?,
        metadata,
        policy_id: row.try_get(9)?,
        policy_reason: row.try_get(10)?,
        status,
        created_at: from_micros(row.try_get(12)?),
        expires_at,
        decided_at,
        approver: row.try_get(15)?,
        decision_reason: row.try_get(16)?,
        approvals_required: u32::try_from(row.try_get::<_, i64>(17)?)
            .map_err(|e| corrupt(17, e.to_string()))?,
        approved_by: crate::store::approvers::decode(row.try_get(18)?)
            .map_err(|e| corrupt(18, e))?,
        policy_version: row.try_get(19)?,
    })
}

pub(crate) fn load_approval(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
    now: OffsetDateTime,
) -> Result<Option<Approval>> {
    conn.query_opt(
        select_approvals!("WHERE tenant = $1 AND id = $2"),
        &[&tenant, &id],
    )?
    .map(|row| approval_from_row(&row, now))
    .transpose()
}

pub(crate) fn load_approval_by_request(
    conn: &mut Conn,
    tenant: &str,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<Option<Approval>> {
    conn.query_opt(
        select_approvals!("WHERE tenant = $1 AND request_id = $2"),
        &[&tenant, &request_id],
    )?
    .map(|row| approval_from_row(&row, now))
    .transpose()
}

/// Approvals of `tenant`, newest first, optionally only those in `status` (effective: overdue pending ones are
/// expired).
pub(crate) fn list_approvals(
    conn: &mut Conn,
    tenant: &str,
    status: Option<ApprovalStatus>,
    limit: u32,
    now: OffsetDateTime,
) -> Result<Vec<Approval>> {
    let (filter, limit) = (
        status.map(ApprovalStatus::as_str),
        i64::from(limit.min(1000)),
    );
    let rows = conn.query(
        select_approvals!(
            "WHERE tenant = $1 AND ( $2::TEXT IS NULL \
         OR ($2 = 'pending' AND status = 'pending' AND expires_us > $3) \
         OR ($2 = 'expired' AND (status = 'expired' OR (status = 'pending' AND expires_us <= $3))) \
         OR ($2 NOT IN ('pending', 'expired') AND status = $2) ) \
         ORDER BY created_us DESC, id LIMIT $4"
        ),
        &[&tenant, &filter, &to_micros(now), &limit],
    )?;
    rows.iter().map(|row| approval_from_row(row, now)).collect()
}

/// Decided approvals with `decided_at > since`, oldest first (expiries count as decided at their expiry).
pub(crate) fn approvals_since(
    conn: &mut Conn,
    tenant: &str,
    since: OffsetDateTime,
    limit: u32,
    now: OffsetDateTime,
) -> Result<Vec<Approval>> {
    let rows = conn.query(
        select_approvals!(
            "WHERE tenant = $1 AND ( \
           (decided_us IS NOT NULL AND decided_us > $2) \
           OR (status = 'pending' AND expires_us > $2 AND expires_us <= $3) ) \
         ORDER BY COALESCE(decided_us, expires_us), id LIMIT $4"
        ),
        &[
            &tenant,
            &to_micros(since),
            &to_micros(now),
            &i64::from(limit.clamp(1, 1000)),
        ],
    )?;
    rows.iter().map(|row| approval_from_row(row, now)).collect()
}

/// The stored state of one scope (RUN when never set; an unreadable one is KILL: fail closed).
pub(crate) fn kill_state(conn: &mut Conn, scope: &KillScope) -> Result<KillState> {
    let state: Option<String> = conn
        .query_opt(
            "SELECT state FROM kill_switch WHERE tenant = $1 AND agent_id = $2",
            &[&scope.tenant(), &scope.agent_id().unwrap_or("")],
        )?
        .map(|row| row.try_get(0))
        .transpose()?;
    Ok(state.map_or(KillState::Run, |s| {
        KillState::parse(&s).unwrap_or(KillState::Kill)
    }))
}

/// The effective state for `agent_id`: the more severe of the tenant's and the agent's.
pub(crate) fn kill_status(conn: &mut Conn, tenant: &str, agent_id: &str) -> Result<KillStatus> {
    let rows = conn.query(
        "SELECT agent_id, state FROM kill_switch WHERE tenant = $1 AND agent_id IN ('', $2)",
        &[&tenant, &agent_id],
    )?;
    let (mut tenant_state, mut agent_state) = (KillState::Run, KillState::Run);
    for row in rows {
        let (agent, state): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        let state = KillState::parse(&state).unwrap_or(KillState::Kill);
        if agent.is_empty() {
            tenant_state = state;
        } else {
            agent_state = state;
        }
    }
    let tenant_scope = KillScope::Tenant(tenant.to_owned());
    Ok(
        if tenant_state == KillState::Run && agent_state == KillState::Run {
            KillStatus {
                state: KillState::Run,
                scope: None,
            }
        } else if tenant_state >= agent_state {
            KillStatus {
                state: tenant_state,
                scope: Some(tenant_scope),
            }
        } else {
            KillStatus {
                state: agent_state,
                scope: Some(KillScope::Agent {
                    tenant: tenant.to_owned(),
                    agent_id: agent_id.to_owned(),
                }),
            }
        },
    )
}

pub(crate) fn tenant_head(conn: &mut Conn, tenant: &str) -> Result<LedgerHead> {
    let head = conn.query_opt(
        "SELECT seq, hash FROM ledger WHERE tenant = $1 ORDER BY seq DESC LIMIT 1",
        &[&tenant],
    )?;
    Ok(match head {
        Some(row) => LedgerHead {
            seq: unsigned(row.try_get(0)?, "a ledger sequence number")?,
            hash: row.try_get(1)?,
        },
        None => LedgerHead {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        },
    })
}

pub(crate) fn evidence(
    conn: &mut Conn,
    tenant: &str,
    query: &EvidenceQuery,
) -> Result<Vec<ChainedRecord>> {
    let limit = i64::from(query.limit.unwrap_or(100).clamp(1, 1000));
    let after = query
        .after_seq
        .map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX));
    // Only the filters given go into the SQL, so that each query uses its index.
    let mut sql =
        String::from("SELECT body, prev_hash, hash FROM ledger WHERE tenant = $1 AND seq > $2");
    let mut text: Vec<String> = Vec::new();
    let mut filter = |column_condition: &str, value: Option<String>| {
        if let Some(value) = value {
            text.push(value);
            sql.push_str(&format!(" AND {column_condition} ${}", text.len() + 2));
        }
    };
    filter("idempotency_key =", query.idempotency_key.clone());
    filter("action =", query.action.clone());
    filter("agent_id =", query.agent_id.clone());
    filter("at >=", query.from.map(format_rfc3339));
    filter("at <", query.to.map(format_rfc3339));
    sql.push_str(&format!(" ORDER BY seq LIMIT ${}", text.len() + 3));
    let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&tenant, &after];
    params.extend(
        text.iter()
            .map(|t| t as &(dyn postgres::types::ToSql + Sync)),
    );
    params.push(&limit);
    let rows = conn.query_dynamic(&sql, &params)?;
    rows.iter()
        .map(|row| {
            let body: Vec<u8> = row.try_get(0)?;
            let record =
                serde_json::from_slice(&body).map_err(|e| AuthorityError::LedgerBroken {
                    tenant: tenant.to_owned(),
                    seq: 0,
                    problem: format!("a record does not decode: {e}"),
                })?;
            Ok(ChainedRecord {
                record,
                prev_hash: row.try_get(1)?,
                hash: row.try_get(2)?,
            })
        })
        .collect()
}

fn key_from_row(row: &Row) -> Result<KeyInfo> {
    let role: String = row.try_get(3)?;
    let role = Role::parse(&role)
        .ok_or_else(|| AuthorityError::Corrupt(format!("stored key role {role:?} is unknown")))?;
    let agents = match (role, row.try_get::<_, Option<String>>(4)?) {
        (Role::Operator | Role::Admin, _) => AgentSet::default(),
        (Role::Agent, Some(stored)) => serde_json::from_str(&stored).map_err(|e| {
            AuthorityError::Corrupt(format!("stored agent set does not decode: {e}"))
        })?,
        (Role::Agent, None) => AgentSet::one(&row.try_get::<_, String>(2)?)?,
    };
    let rate_limit = row
        .try_get::<_, Option<i64>>(5)?
        .and_then(|n| u32::try_from(n).ok())
        .and_then(std::num::NonZeroU32::new);
    Ok(KeyInfo {
        id: row.try_get(0)?,
        tenant: row.try_get(1)?,
        name: row.try_get(2)?,
        role,
        agents,
        rate_limit,
        created_at: from_micros(row.try_get(6)?),
        revoked_at: row.try_get::<_, Option<i64>>(7)?.map(from_micros),
    })
}

/// Finds the key's principal; every failure is the same `Unauthenticated` (see `sqlite/queries.rs`).
pub(crate) fn authenticate(conn: &mut Conn, tenant: &str, secret: &str) -> Result<Principal> {
    let presented = secrets::hash(secret);
    let row = conn.query_opt(
        "SELECT id, tenant, name, role, agents, rate_limit, created_us, revoked_us, key_hash \
         FROM api_keys WHERE tenant = $1 AND key_hash = $2",
        &[&tenant, &presented.as_slice()],
    )?;
    let Some(row) = row else {
        return Err(AuthorityError::Unauthenticated);
    };
    let stored: Vec<u8> = row.try_get(8)?;
    match key_from_row(&row) {
        Ok(info)
            if info.revoked_at.is_none()
                && info.tenant == tenant
                && secrets::matches(&stored, &presented) =>
        {
            Ok(Principal {
                tenant: info.tenant,
                key_id: info.id,
                name: info.name,
                role: info.role,
                agents: info.agents,
                rate_limit: info.rate_limit,
            })
        }
        Err(error) => {
            tracing::error!(%error, "an API key row does not decode; refusing it");
            Err(AuthorityError::Unauthenticated)
        }
        Ok(_) => Err(AuthorityError::Unauthenticated),
    }
}

/// The tenant's keys, newest first (revoked ones too, unless `live_only`).
pub(crate) fn list_keys(conn: &mut Conn, tenant: &str, live_only: bool) -> Result<Vec<KeyInfo>> {
    let rows = conn.query(
        "SELECT id, tenant, name, role, agents, rate_limit, created_us, revoked_us FROM api_keys \
         WHERE tenant = $1 AND (NOT $2 OR revoked_us IS NULL) ORDER BY created_us DESC, id",
        &[&tenant, &live_only],
    )?;
    rows.iter().map(key_from_row).collect()
}

pub(crate) fn load_key_info(conn: &mut Conn, tenant: &str, id: &str) -> Result<Option<KeyInfo>> {
    conn.query_opt(
        "SELECT id, tenant, name, role, agents, rate_limit, created_us, revoked_us FROM api_keys \
         WHERE tenant = $1 AND id = $2",
        &[&tenant, &id],
    )?
    .map(|row| key_from_row(&row))
    .transpose()
}

/// Whether any key of the tenant, live or revoked, ever had `name`: names are never given to a second key.
pub(crate) fn name_ever_taken(conn: &mut Conn, tenant: &str, name: &str) -> Result<bool> {
    Ok(conn
        .query_opt(
            "SELECT 1 FROM api_keys WHERE tenant = $1 AND name = $2 LIMIT 1",
            &[&tenant, &name],
        )?
        .is_some())
}

pub(crate) fn load_check(
    conn: &mut Conn,
    tenant: &str,
    request_id: &str,
) -> Result<Option<CheckRecord>> {
    conn.query_opt(
        "SELECT fingerprint, agent_id, action, decision FROM check_requests \
         WHERE tenant = $1 AND request_id = $2",
        &[&tenant, &request_id],
    )?
    .map(|row| {
        Ok(CheckRecord {
            request_id: request_id.to_owned(),
            fingerprint: row.try_get(0)?,
            agent_id: row.try_get(1)?,
            action: row.try_get(2)?,
            decision: row.try_get(3)?,
        })
    })
    .transpose()
}

pub(crate) fn key_state(
    conn: &mut Conn,
    tenant: &str,
    agent: &str,
    key: &str,
    now: OffsetDateTime,
) -> Result<Option<KeyStatus>> {
    Ok(load_key(conn, tenant, agent, key)?.map(|record| record.status(now)))
}

pub(crate) fn overdue_tenants(conn: &mut Conn, now: OffsetDateTime) -> Result<Vec<String>> {
    let rows = conn.query(
        "SELECT DISTINCT tenant FROM approvals WHERE status = 'pending' AND expires_us <= $1",
        &[&to_micros(now)],
    )?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

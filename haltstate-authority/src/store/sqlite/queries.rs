//! SQL reads shared by the transaction ([`super::tx::SqliteTx`]) and the read pool ([`super::SqliteReads`]).

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use haltstate_types::timestamp::{format_rfc3339, from_micros, to_micros};
use haltstate_types::{
    AgentSet, Approval, ApprovalStatus, ChainedRecord, EvidenceQuery, GENESIS_HASH, KeyInfo,
    KeyLifetime, KeyState, KillScope, KillState, KillStatus, LedgerHead, Principal, Role,
};

use crate::error::{AuthorityError, Result};
use crate::records::{CheckRecord, KeyRecord, KeyStatus};
use crate::secrets;

pub(crate) fn load_key(
    conn: &Connection,
    tenant: &str,
    agent: &str,
    key: &str,
) -> Result<Option<KeyRecord>> {
    let row = conn
        .prepare_cached(
            "SELECT fingerprint, agent_id, action, state, approval_id, policy_id, reason, claim_token, \
             lease_until_us, outcome_seq, claimed_by, client_token, usage_us, usage, attempts, retry_digest, \
             lifetime, generation FROM idempotency WHERE tenant = ?1 AND agent_id = ?2 AND key = ?3",
        )?
        .query_row(params![tenant, agent, key], |row| {
            Ok((
                (row.get::<_, String>(3)?, row.get::<_, String>(16)?),
                (row.get::<_, Option<i64>>(12)?, row.get::<_, Option<String>>(13)?),
                KeyRecord {
                    key: key.to_owned(),
                    fingerprint: row.get(0)?,
                    agent_id: row.get(1)?,
                    action: row.get(2)?,
                    state: KeyState::Failed,
                    lifetime: KeyLifetime::Once,
                    // A generation below 1 is a decoding error (the column's CHECK keeps it out).
                    generation: row.get::<_, u64>(17)?,
                    approval_id: row.get(4)?,
                    policy_id: row.get(5)?,
                    reason: row.get(6)?,
                    claim_token: row.get(7)?,
                    retry_digest: row.get(15)?,
                    attempts: row.get(14)?,
                    lease_until: row.get::<_, Option<i64>>(8)?.map(from_micros),
                    // A negative number is a decoding error, not sequence 0.
                    outcome_seq: row.get::<_, Option<u64>>(9)?,
                    claimed_by: row.get(10)?,
                    client_token: row.get(11)?,
                    charged: None,
                },
            ))
        })
        .optional()?;
    row.map(|((state, lifetime), (usage_us, usage), record)| {
        let (state, lifetime) = crate::store::decode_key_state(key, &state, &lifetime)?;
        Ok(KeyRecord {
            state,
            lifetime,
            charged: crate::store::usage::charge_of(usage_us, usage)?,
            ..record
        })
    })
    .transpose()
}

const APPROVAL_COLUMNS: &str = "id, tenant, idempotency_key, agent_id, action, resource, params, risk, metadata, \
     policy_id, policy_reason, status, created_us, expires_us, decided_us, approver, decision_reason, \
     approvals_required, approved_by, policy_version";

/// Maps a row; a pending approval past its window reads as expired at its expiry time. A column that does not
/// decode is an error, never an empty value an approver would be shown.
fn approval_from_row(row: &Row<'_>, now: OffsetDateTime) -> rusqlite::Result<Approval> {
    let corrupt = |column: usize, why: String| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("approval column {column}: {why}").into(),
        )
    };
    let params: String = row.get(6)?;
    let metadata: Option<String> = row.get(8)?;
    let status: String = row.get(11)?;
    let expires_at = from_micros(row.get(13)?);
    let mut status = ApprovalStatus::parse(&status)
        .ok_or_else(|| corrupt(11, format!("unknown status {status:?}")))?;
    let mut decided_at = row.get::<_, Option<i64>>(14)?.map(from_micros);
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
        id: row.get(0)?,
        tenant: row.get(1)?,
        idempotency_key: row.get(2)?,
        agent_id: row.get(3)?,
        action: row.get(4)?,
        resource: row.get(5)?,
        params,
        risk: row.get(7)?,
        metadata,
        policy_id: row.get(9)?,
        policy_reason: row.get(10)?,
        status,
        created_at: from_micros(row.get(12)?),
        expires_at,
        decided_at,
        approver: row.get(15)?,
        decision_reason: row.get(16)?,
        approvals_required: row.get(17)?,
        approved_by: crate::store::approvers::decode(row.get(18)?).map_err(|e| corrupt(18, e))?,
        policy_version: row.get(19)?,
    })
}

pub(crate) fn load_approval(
    conn: &Connection,
    tenant: &str,
    id: &str,
    now: OffsetDateTime,
) -> Result<Option<Approval>> {
    let sql = format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1 AND tenant = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![id, tenant], |row| approval_from_row(row, now))
        .optional()?)
}

pub(crate) fn load_approval_by_request(
    conn: &Connection,
    tenant: &str,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<Option<Approval>> {
    let sql =
        format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE tenant = ?1 AND request_id = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![tenant, request_id], |row| {
            approval_from_row(row, now)
        })
        .optional()?)
}

/// Approvals of `tenant`, newest first, optionally only those in `status`.
pub(crate) fn list_approvals(
    conn: &Connection,
    tenant: &str,
    status: Option<ApprovalStatus>,
    limit: u32,
    now: OffsetDateTime,
) -> Result<Vec<Approval>> {
    let now_us = to_micros(now);
    let (filter, limit) = (
        status.map(ApprovalStatus::as_str),
        i64::from(limit.min(1000)),
    );
    // The stored status lags for overdue pending approvals: filter on the effective status.
    let sql = format!(
        "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE tenant = ?1 AND ( ?2 IS NULL \
         OR (?2 = 'pending' AND status = 'pending' AND expires_us > ?3) \
         OR (?2 = 'expired' AND (status = 'expired' OR (status = 'pending' AND expires_us <= ?3))) \
         OR (?2 NOT IN ('pending', 'expired') AND status = ?2) ) \
         ORDER BY created_us DESC, id LIMIT ?4"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(params![tenant, filter, now_us, limit], |row| {
        approval_from_row(row, now)
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Decided approvals with `decided_at > since`, oldest first (expiries count as decided at their expiry).
pub(crate) fn approvals_since(
    conn: &Connection,
    tenant: &str,
    since: OffsetDateTime,
    limit: u32,
    now: OffsetDateTime,
) -> Result<Vec<Approval>> {
    let sql = format!(
        "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE tenant = ?1 AND ( \
           (decided_us IS NOT NULL AND decided_us > ?2) \
           OR (status = 'pending' AND expires_us > ?2 AND expires_us <= ?3) ) \
         ORDER BY COALESCE(decided_us, expires_us), id LIMIT ?4"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(
        params![
            tenant,
            to_micros(since),
            to_micros(now),
            i64::from(limit.clamp(1, 1000))
        ],
        |row| approval_from_row(row, now),
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A stored kill-switch row as a scope and state (an unreadable state is KILL: fail closed).
pub(crate) fn kill_row(tenant: String, agent_id: String, state: &str) -> (KillScope, KillState) {
    let scope = if agent_id.is_empty() {
        KillScope::Tenant(tenant)
    } else {
        KillScope::Agent { tenant, agent_id }
    };
    (scope, KillState::parse(state).unwrap_or(KillState::Kill))
}

/// The stored state of one scope (RUN when never set).
pub(crate) fn kill_state(conn: &Connection, scope: &KillScope) -> Result<KillState> {
    let state: Option<String> = conn
        .prepare_cached("SELECT state FROM kill_switch WHERE tenant = ?1 AND agent_id = ?2")?
        .query_row(
            params![scope.tenant(), scope.agent_id().unwrap_or("")],
            |row| row.get(0),
        )
        .optional()?;
    // An unreadable stored state is treated as KILL: fail closed.
    Ok(state.map_or(KillState::Run, |s| {
        KillState::parse(&s).unwrap_or(KillState::Kill)
    }))
}

/// The effective state for `agent_id`: the more severe of the tenant's and the agent's.
pub(crate) fn kill_status(conn: &Connection, tenant: &str, agent_id: &str) -> Result<KillStatus> {
    let tenant_scope = KillScope::Tenant(tenant.to_owned());
    let agent_scope = KillScope::Agent {
        tenant: tenant.to_owned(),
        agent_id: agent_id.to_owned(),
    };
    let tenant_state = kill_state(conn, &tenant_scope)?;
    let agent_state = kill_state(conn, &agent_scope)?;
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
                scope: Some(agent_scope),
            }
        },
    )
}

/// The head a chain's last record makes, or the genesis head of an empty chain.
fn head_of(last: Option<(u64, String)>) -> LedgerHead {
    match last {
        Some((seq, hash)) => LedgerHead { seq, hash },
        None => LedgerHead {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        },
    }
}

pub(crate) fn tenant_head(conn: &Connection, tenant: &str) -> Result<LedgerHead> {
    let head = conn
        .prepare_cached("SELECT seq, hash FROM ledger WHERE tenant = ?1 ORDER BY seq DESC LIMIT 1")?
        .query_row(params![tenant], |row| {
            Ok((row.get::<_, u64>(0)?, row.get::<_, String>(1)?))
        })
        .optional()?;
    Ok(head_of(head))
}

pub(crate) fn evidence(
    conn: &Connection,
    tenant: &str,
    query: &EvidenceQuery,
) -> Result<Vec<ChainedRecord>> {
    let limit = i64::from(query.limit.unwrap_or(100).clamp(1, 1000));
    let after = query
        .after_seq
        .map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX));
    // Only the filters given go into the SQL: `(?x IS NULL OR col = ?x)` would keep SQLite from using the
    // key and time indexes, and a query by key would scan the tenant's whole ledger.
    let mut sql =
        String::from("SELECT body, prev_hash, hash FROM ledger WHERE tenant = ?1 AND seq > ?2");
    let mut values: Vec<rusqlite::types::Value> = vec![tenant.to_owned().into(), after.into()];
    let mut filter = |column_condition: &str, value: Option<String>| {
        if let Some(value) = value {
            values.push(value.into());
            sql.push_str(&format!(" AND {column_condition} ?{}", values.len()));
        }
    };
    filter("idempotency_key =", query.idempotency_key.clone());
    filter("action =", query.action.clone());
    filter("agent_id =", query.agent_id.clone());
    filter("at >=", query.from.map(format_rfc3339));
    filter("at <", query.to.map(format_rfc3339));
    values.push(limit.into());
    sql.push_str(&format!(" ORDER BY seq LIMIT ?{}", values.len()));
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(values), |row| {
        Ok((
            row.get::<_, Vec<u8>>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    let mut records = Vec::new();
    for row in rows {
        let (body, prev_hash, hash) = row?;
        let record = serde_json::from_slice(&body).map_err(|e| AuthorityError::LedgerBroken {
            tenant: tenant.to_owned(),
            seq: 0,
            problem: format!("a record of tenant {tenant} does not decode: {e}"),
        })?;
        records.push(ChainedRecord {
            record,
            prev_hash,
            hash,
        });
    }
    Ok(records)
}

/// Finds the key's principal; every failure is the same `Unauthenticated`.
///
/// The key is found by its SHA-256, through the unique index: the time the lookup takes depends on the hash, which
/// tells an attacker nothing about any secret, and it does not grow with the tenant's number of keys. The stored
/// hash is still compared in constant time, and the tenant and revocation checked after the lookup, so a key of
/// another tenant fails exactly like a wrong one.
pub(crate) fn authenticate(conn: &Connection, tenant: &str, secret: &str) -> Result<Principal> {
    let presented = secrets::hash(secret);
    let row = conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS}, key_hash FROM api_keys WHERE key_hash = ?1"
        ))?
        .query_row(params![presented.as_slice()], |row| {
            Ok((key_from_row(row), row.get::<_, Vec<u8>>(8)?))
        })
        .optional()?;
    match row {
        Some((Ok(info), stored))
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
        // A row that does not decode authenticates nobody: fail closed, and say so in the log.
        Some((Err(error), _)) => {
            tracing::error!(%error, "an API key row does not decode; refusing it");
            Err(AuthorityError::Unauthenticated)
        }
        _ => Err(AuthorityError::Unauthenticated),
    }
}

const KEY_COLUMNS: &str = "id, tenant, name, role, agents, rate_limit, created_us, revoked_us";

fn key_from_row(row: &Row<'_>) -> Result<KeyInfo> {
    let role: String = row.get(3)?;
    let role = Role::parse(&role)
        .ok_or_else(|| AuthorityError::Corrupt(format!("stored key role {role:?} is unknown")))?;
    let agents = match (role, row.get::<_, Option<String>>(4)?) {
        (Role::Operator | Role::Admin, _) => AgentSet::default(),
        (Role::Agent, Some(stored)) => serde_json::from_str(&stored).map_err(|e| {
            AuthorityError::Corrupt(format!("stored agent set does not decode: {e}"))
        })?,
        // Keys from before agent sets act as the agent their name says.
        (Role::Agent, None) => AgentSet::one(&row.get::<_, String>(2)?)?,
    };
    let rate_limit = row
        .get::<_, Option<i64>>(5)?
        .and_then(|n| u32::try_from(n).ok())
        .and_then(std::num::NonZeroU32::new);
    Ok(KeyInfo {
        id: row.get(0)?,
        tenant: row.get(1)?,
        name: row.get(2)?,
        role,
        agents,
        rate_limit,
        created_at: from_micros(row.get(6)?),
        revoked_at: row.get::<_, Option<i64>>(7)?.map(from_micros),
    })
}

/// The tenant's keys, newest first (revoked ones too, unless `live_only`).
pub(crate) fn list_keys(conn: &Connection, tenant: &str, live_only: bool) -> Result<Vec<KeyInfo>> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant = ?1 AND (?2 = 0 OR revoked_us IS NULL) \
         ORDER BY created_us DESC, id"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params![tenant, live_only])?;
    let mut keys = Vec::new();
    while let Some(row) = rows.next()? {
        keys.push(key_from_row(row)?);
    }
    Ok(keys)
}

/// One key of the tenant.
pub(crate) fn load_key_info(conn: &Connection, tenant: &str, id: &str) -> Result<Option<KeyInfo>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant = ?1 AND id = ?2");
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params![tenant, id])?;
    rows.next()?.map(key_from_row).transpose()
}

/// Whether a live key of the tenant has this name.
/// Whether any key of the tenant, live or revoked, ever had `name`: names are never given to a second key.
pub(crate) fn name_ever_taken(conn: &Connection, tenant: &str, name: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM api_keys WHERE tenant = ?1 AND name = ?2 LIMIT 1")?
        .query_row(params![tenant, name], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(crate) fn load_check(
    conn: &Connection,
    tenant: &str,
    request_id: &str,
) -> Result<Option<CheckRecord>> {
    Ok(conn
        .prepare_cached(
            "SELECT fingerprint, agent_id, action, decision FROM check_requests \
             WHERE tenant = ?1 AND request_id = ?2",
        )?
        .query_row(params![tenant, request_id], |row| {
            Ok(CheckRecord {
                request_id: request_id.to_owned(),
                fingerprint: row.get(0)?,
                agent_id: row.get(1)?,
                action: row.get(2)?,
                decision: row.get(3)?,
            })
        })
        .optional()?)
}

/// The key's state as `(state, lease remaining)`, for operators and tests.
pub(crate) fn key_state(
    conn: &Connection,
    tenant: &str,
    agent: &str,
    key: &str,
    now: OffsetDateTime,
) -> Result<Option<KeyStatus>> {
    Ok(load_key(conn, tenant, agent, key)?.map(|record| record.status(now)))
}

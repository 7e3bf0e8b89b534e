//! SQL reads shared by the transaction ([`super::tx::PgTx`]) and the readers ([`super::reads::PgReads`]); the
//! PostgreSQL twin of `sqlite/queries.rs`. Rows are decoded by `store/decode.rs`, as SQLite's are.

use time::OffsetDateTime;

use haltstate_types::timestamp::to_micros;
use haltstate_types::{
    Approval, ApprovalStatus, ChainedRecord, EvidenceQuery, GENESIS_HASH, KeyInfo, KillScope,
    KillState, KillStatus, LedgerHead, Principal,
};

use super::conn::{Conn, signed, unsigned};
use crate::error::{AuthorityError, Result};
use crate::secrets;
use crate::state_rows::{CheckRecord, KeyRecord, KeyStatus};
use crate::store::decode::{
    self, approval_columns, check_record_columns, key_info_columns, key_record_columns,
};
use crate::store::job::KeyHint;
use crate::store::sql::{EvidenceStatement, LedgerColumns, Order};

shared_statements!(
    LIST_APPROVALS,
    APPROVALS_SINCE,
    PENDING_COUNTS,
    OVERDUE_TENANTS
);

pub(crate) fn load_key(
    conn: &mut Conn,
    tenant: &str,
    agent: &str,
    key: &str,
) -> Result<Option<KeyRecord>> {
    conn.query_opt(
        concat!(
            "SELECT ",
            key_record_columns!(),
            " FROM idempotency WHERE tenant = $1 AND agent_id = $2 AND key = $3"
        ),
        &[&tenant, &agent, &key],
    )?
    .map(|row| decode::key_record(&row, key))
    .transpose()
}

/// Every agent's record under `key` (see `Tx::key_records`).
pub(crate) fn load_key_records(conn: &mut Conn, tenant: &str, key: &str) -> Result<Vec<KeyRecord>> {
    conn.query(
        concat!(
            "SELECT ",
            key_record_columns!(),
            " FROM idempotency WHERE tenant = $1 AND key = $2 LIMIT 16"
        ),
        &[&tenant, &key],
    )?
    .iter()
    .map(|row| decode::key_record(row, key))
    .collect()
}

/// The rows of `hints` (an agent's row of a key each), read in one statement: each hinted row found, or `None`
/// for one that does not exist (rows of other agents of the same keys come along).
pub(crate) fn load_keys(conn: &mut Conn, tenant: &str, hints: &[&KeyHint]) -> Result<KnownKeys> {
    let mut keys: Vec<&str> = hints.iter().map(|hint| hint.key.as_str()).collect();
    let mut agents: Vec<&str> = hints.iter().map(|hint| hint.agent.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    agents.sort_unstable();
    agents.dedup();
    let mut known: KnownKeys = hints
        .iter()
        .map(|hint| ((hint.agent.clone(), hint.key.clone()), None))
        .collect();
    // The primary key (tenant, key, agent_id) answers both arrays.
    let rows = conn.query(
        concat!(
            "SELECT ",
            key_record_columns!(),
            ", key FROM idempotency WHERE tenant = $1 AND key = ANY($2) AND agent_id = ANY($3)"
        ),
        &[&tenant, &keys, &agents],
    )?;
    for row in rows {
        let key: String = row.try_get(18)?;
        let record = decode::key_record(&row, &key)?;
        known.insert((record.agent_id.clone(), key), Some(record));
    }
    Ok(known)
}

/// Key rows a transaction knows, by (agent, key): `None` for a row that does not exist.
pub(crate) type KnownKeys = std::collections::HashMap<(String, String), Option<KeyRecord>>;

/// A query of approvals: the columns [`decode::approval`] reads, then `$rest` (the statement text must be
/// `'static` to stay prepared on the connection).
macro_rules! select_approvals {
    ($rest:literal) => {
        concat!("SELECT ", approval_columns!(), " FROM approvals ", $rest)
    };
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
    .map(|row| decode::approval(&row, now))
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
    .map(|row| decode::approval(&row, now))
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
        &LIST_APPROVALS,
        &[&tenant, &filter, &to_micros(now), &limit],
    )?;
    rows.iter().map(|row| decode::approval(row, now)).collect()
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
        &APPROVALS_SINCE,
        &[
            &tenant,
            &to_micros(since),
            &to_micros(now),
            &i64::from(limit.clamp(1, 1000)),
        ],
    )?;
    rows.iter().map(|row| decode::approval(row, now)).collect()
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
    Ok(state.map_or(KillState::Run, |s| KillState::stored(&s)))
}

/// The effective state for `agent_id` (see [`KillStatus::effective`]), in one query.
pub(crate) fn kill_status(conn: &mut Conn, tenant: &str, agent_id: &str) -> Result<KillStatus> {
    let rows = conn.query(
        "SELECT agent_id, state FROM kill_switch WHERE tenant = $1 AND agent_id IN ('', $2)",
        &[&tenant, &agent_id],
    )?;
    let (mut tenant_state, mut agent_state) = (KillState::Run, KillState::Run);
    for row in rows {
        let (agent, state): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        let state = KillState::stored(&state);
        if agent.is_empty() {
            tenant_state = state;
        } else {
            agent_state = state;
        }
    }
    Ok(KillStatus::effective(
        tenant,
        agent_id,
        tenant_state,
        agent_state,
    ))
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
    order: Order,
) -> Result<Vec<ChainedRecord>> {
    let statement = EvidenceStatement::new(query, &LedgerColumns::POSTGRES, order);
    let sql = statement.postgres_sql();
    // Each window a statement of its own: a snapshot held for a whole scan keeps VACUUM from the head rows'
    // dead versions (`store/windows.rs`).
    let head = |conn: &mut Conn| Ok(signed(tenant_head(conn, tenant)?.seq));
    statement.run(conn, head, |conn, bounds| {
        let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&tenant, &bounds.after];
        params.extend(
            statement
                .filters
                .iter()
                .map(|t| t as &(dyn postgres::types::ToSql + Sync)),
        );
        if let Some(before) = &bounds.before {
            params.push(before);
        }
        params.push(&bounds.limit);
        let rows = conn.query_dynamic(&sql, &params)?;
        rows.iter()
            .map(|row| decode::chained_record(row, tenant))
            .collect()
    })
}

/// Finds the key's principal; every failure is the same `Unauthenticated` (see `sqlite/queries.rs`).
pub(crate) fn authenticate(conn: &mut Conn, tenant: &str, secret: &str) -> Result<Principal> {
    let presented = secrets::hash(secret);
    let row = conn.query_opt(
        concat!(
            "SELECT ",
            key_info_columns!(),
            ", key_hash FROM api_keys WHERE tenant = $1 AND key_hash = $2"
        ),
        &[&tenant, &presented.as_slice()],
    )?;
    // By tenant and hash: PostgreSQL's unique index leads with the tenant (SQLite's is the hash alone).
    match row {
        Some(row) => decode::principal(&row, tenant, &presented),
        None => Err(AuthorityError::Unauthenticated),
    }
}

/// The tenant's keys, newest first (revoked ones too, unless `live_only`).
pub(crate) fn list_keys(conn: &mut Conn, tenant: &str, live_only: bool) -> Result<Vec<KeyInfo>> {
    let rows = conn.query(
        concat!(
            "SELECT ",
            key_info_columns!(),
            " FROM api_keys WHERE tenant = $1 AND (NOT $2 OR revoked_us IS NULL) ORDER BY created_us DESC, id"
        ),
        &[&tenant, &live_only],
    )?;
    rows.iter().map(decode::key_info).collect()
}

pub(crate) fn load_key_info(conn: &mut Conn, tenant: &str, id: &str) -> Result<Option<KeyInfo>> {
    conn.query_opt(
        concat!(
            "SELECT ",
            key_info_columns!(),
            " FROM api_keys WHERE tenant = $1 AND id = $2"
        ),
        &[&tenant, &id],
    )?
    .map(|row| decode::key_info(&row))
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
        concat!(
            "SELECT ",
            check_record_columns!(),
            " FROM check_requests WHERE tenant = $1 AND request_id = $2"
        ),
        &[&tenant, &request_id],
    )?
    .map(|row| decode::check_record(&row, request_id))
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
    let rows = conn.query(&OVERDUE_TENANTS, &[&to_micros(now)])?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

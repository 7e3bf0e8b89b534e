//! SQL reads shared by the transaction ([`super::tx::SqliteTx`]) and the read pool ([`super::reads::SqliteReads`]).

use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use haltstate_types::timestamp::{format_rfc3339, to_micros};
use haltstate_types::{
    Approval, ApprovalStatus, ChainedRecord, EvidenceQuery, GENESIS_HASH, KeyInfo, KillScope,
    KillState, KillStatus, LedgerHead, Principal,
};

use super::held::Prepare;
use crate::error::{AuthorityError, Result};
use crate::secrets;
use crate::state_rows::{CheckRecord, KeyRecord, KeyStatus};
use crate::store::decode::{
    self, approval_columns, check_record_columns, key_info_columns, key_record_columns,
};
use crate::store::sql::{self, EvidenceStatement, LedgerColumns, Order};

/// The row of agent `?2` under key `?3` of tenant `?1`, found through the key's first ledger record (schema 23).
/// The key is compared too, so a row is never found by its `key_head` alone.
pub(crate) const KEY_ROW: &str = concat!(
    "SELECT ",
    key_record_columns!(),
    " FROM idempotency WHERE tenant = ?1 AND key_head = ",
    sql::sqlite_key_head!("?1", "?3"),
    " AND agent_id = ?2 AND key = ?3"
);

/// The row at rowid `?1`, if it is still the row of agent `?3` under key `?4` of tenant `?2` (see `KeyRowids`),
/// and the key's first ledger record it is filed under.
pub(crate) const KEY_ROW_AT: &str = concat!(
    "SELECT ",
    key_record_columns!(),
    ", key_head FROM idempotency WHERE rowid = ?1 AND tenant = ?2 AND agent_id = ?3 AND key = ?4"
);

/// Every agent's row under key `?2` of tenant `?1`, at most 16.
pub(crate) const KEY_ROWS: &str = concat!(
    "SELECT ",
    key_record_columns!(),
    " FROM idempotency WHERE tenant = ?1 AND key_head = ",
    sql::sqlite_key_head!("?1", "?2"),
    // A literal: SQLite prepares a statement again each time a parameter of its LIMIT is bound.
    " AND key = ?2 LIMIT 16"
);

pub(crate) fn load_key(
    conn: &(impl Prepare + ?Sized),
    tenant: &str,
    agent: &str,
    key: &str,
) -> Result<Option<KeyRecord>> {
    conn.with(KEY_ROW, |statement| {
        let mut rows = statement.query(params![tenant, agent, key])?;
        rows.next()?
            .map(|row| decode::key_record(row, key))
            .transpose()
    })
}

/// The row of `agent`'s `key` at `rowid`, if that is still where it is, with the key's first record.
pub(crate) fn load_key_at(
    conn: &(impl Prepare + ?Sized),
    rowid: i64,
    tenant: &str,
    agent: &str,
    key: &str,
) -> Result<Option<(KeyRecord, u64)>> {
    conn.with(KEY_ROW_AT, |statement| {
        let mut rows = statement.query(params![rowid, tenant, agent, key])?;
        rows.next()?
            .map(|row| Ok((decode::key_record(row, key)?, row.get(18)?)))
            .transpose()
    })
}

/// Every agent's record under `key` (see `Tx::key_records`).
pub(crate) fn load_key_records(
    conn: &(impl Prepare + ?Sized),
    tenant: &str,
    key: &str,
) -> Result<Vec<KeyRecord>> {
    conn.with(KEY_ROWS, |statement| {
        let rows = statement.query(params![tenant, key])?;
        all(rows, |row| decode::key_record(row, key))
    })
}

/// Every row `rows` holds, decoded by `decode`.
fn all<T>(
    mut rows: rusqlite::Rows<'_>,
    decode: impl Fn(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut decoded = Vec::new();
    while let Some(row) = rows.next()? {
        decoded.push(decode(row)?);
    }
    Ok(decoded)
}

const APPROVAL_COLUMNS: &str = approval_columns!();

pub(crate) fn load_approval(
    conn: &Connection,
    tenant: &str,
    id: &str,
    now: OffsetDateTime,
) -> Result<Option<Approval>> {
    let sql = format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1 AND tenant = ?2");
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params![id, tenant])?;
    rows.next()?
        .map(|row| decode::approval(row, now))
        .transpose()
}

pub(crate) fn load_approval_by_request(
    conn: &Connection,
    tenant: &str,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<Option<Approval>> {
    let sql =
        format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE tenant = ?1 AND request_id = ?2");
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params![tenant, request_id])?;
    rows.next()?
        .map(|row| decode::approval(row, now))
        .transpose()
}

/// Approvals of `tenant`, newest first, optionally only those in `status` (effective: overdue pending ones are
/// expired).
pub(crate) fn list_approvals(
    conn: &Connection,
    tenant: &str,
    status: Option<ApprovalStatus>,
    limit: u32,
    now: OffsetDateTime,
) -> Result<Vec<Approval>> {
    let (filter, limit) = (
        status.map(ApprovalStatus::as_str),
        i64::from(limit.min(1000)),
    );
    let mut statement = conn.prepare_cached(sql::LIST_APPROVALS)?;
    let rows = statement.query(params![tenant, filter, to_micros(now), limit])?;
    all(rows, |row| decode::approval(row, now))
}

/// Decided approvals with `decided_at > since`, oldest first (expiries count as decided at their expiry).
pub(crate) fn approvals_since(
    conn: &Connection,
    tenant: &str,
    since: OffsetDateTime,
    limit: u32,
    now: OffsetDateTime,
) -> Result<Vec<Approval>> {
    let mut statement = conn.prepare_cached(sql::APPROVALS_SINCE)?;
    let rows = statement.query(params![
        tenant,
        to_micros(since),
        to_micros(now),
        i64::from(limit.clamp(1, 1000))
    ])?;
    all(rows, |row| decode::approval(row, now))
}

/// A stored kill-switch row as a scope and state (an unreadable state is KILL: fail closed).
pub(crate) fn kill_row(tenant: String, agent_id: String, state: &str) -> (KillScope, KillState) {
    let scope = if agent_id.is_empty() {
        KillScope::Tenant(tenant)
    } else {
        KillScope::Agent { tenant, agent_id }
    };
    (scope, KillState::stored(state))
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
    Ok(state.map_or(KillState::Run, |s| KillState::stored(&s)))
}

/// The effective state for `agent_id` (see [`KillStatus::effective`]).
pub(crate) fn kill_status(conn: &Connection, tenant: &str, agent_id: &str) -> Result<KillStatus> {
    let tenant_state = kill_state(conn, &KillScope::Tenant(tenant.to_owned()))?;
    let agent_state = kill_state(
        conn,
        &KillScope::Agent {
            tenant: tenant.to_owned(),
            agent_id: agent_id.to_owned(),
        },
    )?;
    Ok(KillStatus::effective(
        tenant,
        agent_id,
        tenant_state,
        agent_state,
    ))
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
    order: Order,
) -> Result<Vec<ChainedRecord>> {
    let statement = if query.from.is_none() && query.to.is_none() {
        EvidenceStatement::new(query, &LedgerColumns::SQLITE, order)
    } else {
        // The time range's sequence numbers in one snapshot. The records are read after it, in windows: the
        // ledger only grows, and the statement compares the times too, so the range stays exact.
        let snapshot = conn.unchecked_transaction()?;
        let statement = if super::times::indexed(&snapshot)? {
            EvidenceStatement::new(query, &LedgerColumns::SQLITE, order)
        } else {
            let first = |at: Option<OffsetDateTime>| {
                at.map(|at| super::times::first_at_or_after(&snapshot, tenant, &format_rfc3339(at)))
                    .transpose()
            };
            let seqs = sql::SeqRange {
                from: first(query.from)?,
                to: first(query.to)?,
            };
            EvidenceStatement::by_sequence(query, &LedgerColumns::SQLITE, seqs, order)
        };
        snapshot.finish()?;
        statement
    };
    // The connection is shared: both closures hold it, and `run` passes nothing through.
    let head = |_: &mut ()| Ok(i64::try_from(tenant_head(conn, tenant)?.seq).unwrap_or(i64::MAX));
    let mut prepared = conn.prepare_cached(&statement.sql)?;
    statement.run(&mut (), head, |_, bounds| {
        let mut values: Vec<rusqlite::types::Value> =
            vec![tenant.to_owned().into(), bounds.after.into()];
        values.extend(statement.filters.iter().cloned().map(Into::into));
        values.extend(bounds.before.map(Into::into));
        values.push(bounds.limit.into());
        let rows = prepared.query(rusqlite::params_from_iter(values))?;
        all(rows, |row| decode::chained_record(row, tenant))
    })
}

/// Finds the key's principal; every failure is the same `Unauthenticated`.
///
/// The key is found by its SHA-256, through the unique index: the time the lookup takes depends on the hash, which
/// tells an attacker nothing about any secret, and it does not grow with the tenant's number of keys. The stored
/// hash is still compared in constant time, and the tenant and revocation checked after the lookup, so a key of
/// another tenant fails exactly like a wrong one.
pub(crate) fn authenticate(conn: &Connection, tenant: &str, secret: &str) -> Result<Principal> {
    let presented = secrets::hash(secret);
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS}, key_hash FROM api_keys WHERE key_hash = ?1"
    ))?;
    let mut rows = statement.query(params![presented.as_slice()])?;
    match rows.next()? {
        Some(row) => decode::principal(row, tenant, &presented),
        None => Err(AuthorityError::Unauthenticated),
    }
}

const KEY_COLUMNS: &str = key_info_columns!();

/// The tenant's keys, newest first (revoked ones too, unless `live_only`).
pub(crate) fn list_keys(conn: &Connection, tenant: &str, live_only: bool) -> Result<Vec<KeyInfo>> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant = ?1 AND (?2 = 0 OR revoked_us IS NULL) \
         ORDER BY created_us DESC, id"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query(params![tenant, live_only])?;
    all(rows, |row| decode::key_info(row))
}

/// One key of the tenant.
pub(crate) fn load_key_info(conn: &Connection, tenant: &str, id: &str) -> Result<Option<KeyInfo>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant = ?1 AND id = ?2");
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params![tenant, id])?;
    rows.next()?.map(decode::key_info).transpose()
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
    let mut statement = conn.prepare_cached(concat!(
        "SELECT ",
        check_record_columns!(),
        " FROM check_requests WHERE tenant = ?1 AND request_id = ?2"
    ))?;
    let mut rows = statement.query(params![tenant, request_id])?;
    rows.next()?
        .map(|row| decode::check_record(row, request_id))
        .transpose()
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

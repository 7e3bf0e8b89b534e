//! What the console stores in SQLite: its sessions (schema 15), with the statements of `store/sql.rs`, run on the
//! writer's transaction or a reader.

use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use haltstate_types::timestamp::{format_rfc3339, from_micros, to_micros};

use crate::console_session::{ConsoleSession, SessionId};
use crate::error::{AuthorityError, Result};
use crate::store::sql;
use crate::store::windows::Windows;

fn count(value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| AuthorityError::Corrupt(format!("a negative count: {value}")))
}

pub(crate) fn expire(conn: &Connection, now: OffsetDateTime) -> Result<()> {
    conn.prepare_cached(sql::SESSIONS_EXPIRE)?
        .execute(params![to_micros(now)])?;
    Ok(())
}

pub(crate) fn count_of(conn: &Connection, tenant: Option<&str>) -> Result<u64> {
    let counted: i64 = match tenant {
        Some(tenant) => conn
            .prepare_cached(sql::SESSIONS_OF_TENANT)?
            .query_row(params![tenant], |row| row.get(0))?,
        None => conn
            .prepare_cached(sql::SESSIONS_ALL)?
            .query_row([], |row| row.get(0))?,
    };
    count(counted)
}

pub(crate) fn end_oldest(conn: &Connection, tenant: &str, how_many: u64) -> Result<()> {
    conn.prepare_cached(sql::SESSIONS_END_OLDEST)?
        .execute(params![tenant, i64::try_from(how_many).unwrap_or(i64::MAX)])?;
    Ok(())
}

pub(crate) fn insert(conn: &Connection, id: &SessionId, session: &ConsoleSession) -> Result<()> {
    conn.prepare_cached(sql::SESSION_INSERT)?.execute(params![
        id.as_str(),
        session.tenant,
        session.key_id,
        to_micros(session.created_at),
        to_micros(session.expires_at)
    ])?;
    Ok(())
}

pub(crate) fn end(conn: &Connection, tenant: &str, id: &SessionId) -> Result<bool> {
    Ok(conn
        .prepare_cached(sql::SESSION_END)?
        .execute(params![tenant, id.as_str()])?
        > 0)
}

pub(crate) fn end_of_key(conn: &Connection, tenant: &str, key_id: &str) -> Result<u64> {
    let ended = conn
        .prepare_cached(sql::SESSIONS_OF_KEY_END)?
        .execute(params![tenant, key_id])?;
    Ok(ended as u64)
}

pub(crate) fn find(
    conn: &Connection,
    id: &SessionId,
    now: OffsetDateTime,
) -> Result<Option<ConsoleSession>> {
    Ok(conn
        .prepare_cached(sql::SESSION_FIND)?
        .query_row(params![id.as_str(), to_micros(now)], |row| {
            Ok(ConsoleSession {
                tenant: row.get(0)?,
                key_id: row.get(1)?,
                created_at: from_micros(row.get(2)?),
                expires_at: from_micros(row.get(3)?),
            })
        })
        .optional()?)
}

pub(crate) fn note_change(conn: &Connection, tenant: &str, subject: &str, seq: u64) -> Result<()> {
    conn.prepare_cached(sql::CHANGE_NOTE)?.execute(params![
        tenant,
        subject,
        i64::try_from(seq).unwrap_or(i64::MAX)
    ])?;
    Ok(())
}

/// A tenant's records at or after `since`, oldest first, at most `limit`: through the index by time where the
/// file keeps one (in one snapshot), else from the first such record by sequence number (`times.rs`), a window at a
/// time.
pub(crate) fn activity(
    conn: &Connection,
    tenant: &str,
    since: OffsetDateTime,
    limit: u32,
) -> Result<Vec<haltstate_types::EvidenceRecord>> {
    let since = format_rfc3339(since);
    let snapshot = conn.unchecked_transaction()?;
    if super::times::indexed(&snapshot)? {
        let mut records = Vec::new();
        let mut statement = snapshot.prepare_cached(sql::ACTIVITY_SINCE)?;
        let mut rows = statement.query(params![tenant, since, i64::from(limit)])?;
        while let Some(row) = rows.next()? {
            records.push(crate::store::decode::chained_record(row, tenant)?.record);
        }
        return Ok(records);
    }
    // Where the range begins and where the ledger ends, in one snapshot; the records a window at a time
    // (`store/windows.rs`): up to a day of them, which one snapshot would hold for as long as they take to read.
    let first = super::times::first_at_or_after(&snapshot, tenant, &since)?;
    let last: Option<i64> = snapshot
        .prepare_cached("SELECT max(seq) FROM ledger WHERE tenant = ?1")?
        .query_row([tenant], |row| row.get(0))?;
    snapshot.finish()?;
    let end = last.unwrap_or(0).saturating_add(1);
    let mut statement = conn.prepare_cached(super::times::ACTIVITY_FROM)?;
    Windows::new(first.saturating_sub(1), end, false).read_until(
        i64::from(limit),
        |after, before, wanted| {
            let mut rows = statement.query(params![tenant, after, before, since, wanted])?;
            let mut records = Vec::new();
            while let Some(row) = rows.next()? {
                records.push(crate::store::decode::chained_record(row, tenant)?.record);
            }
            Ok(records)
        },
    )
}

pub(crate) fn changes(
    conn: &Connection,
    tenant: &str,
    subject: &str,
    limit: u32,
) -> Result<Vec<haltstate_types::EvidenceRecord>> {
    let mut statement = conn.prepare_cached(sql::CHANGES_OF)?;
    let mut rows = statement.query(params![tenant, subject, i64::from(limit)])?;
    let mut records = Vec::new();
    while let Some(row) = rows.next()? {
        records.push(crate::store::decode::chained_record(row, tenant)?.record);
    }
    Ok(records)
}

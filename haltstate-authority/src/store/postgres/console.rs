//! What the console stores and reads on PostgreSQL: its sessions (schema 15), the count of a tenant's waiting
//! approvals, a span of the tenant's records. The statements SQLite runs (`store/sql.rs`), in PostgreSQL's placeholders.

use time::OffsetDateTime;

use haltstate_types::timestamp::{from_micros, to_micros};

use super::conn::{Conn, signed, unsigned};
use crate::console_session::{ConsoleSession, SessionId};
use crate::error::Result;

shared_statements!(
    SESSIONS_EXPIRE,
    SESSIONS_OF_TENANT,
    SESSIONS_ALL,
    SESSIONS_END_OLDEST,
    SESSION_INSERT,
    SESSION_END,
    SESSIONS_OF_KEY_END,
    SESSION_FIND,
    PENDING_OF_TENANT,
    ACTIVITY_SINCE,
    CHANGE_NOTE,
    CHANGES_OF
);

pub(crate) fn expire(conn: &mut Conn, now: OffsetDateTime) -> Result<()> {
    conn.execute(&SESSIONS_EXPIRE, &[&to_micros(now)])?;
    Ok(())
}

pub(crate) fn count_of(conn: &mut Conn, tenant: Option<&str>) -> Result<u64> {
    let row = match tenant {
        Some(tenant) => conn.query_opt(&SESSIONS_OF_TENANT, &[&tenant])?,
        None => conn.query_opt(&SESSIONS_ALL, &[])?,
    };
    unsigned(
        row.map_or(Ok(0), |row| row.try_get(0))?,
        "a count of sessions",
    )
}

pub(crate) fn end_oldest(conn: &mut Conn, tenant: &str, how_many: u64) -> Result<()> {
    conn.execute(&SESSIONS_END_OLDEST, &[&tenant, &signed(how_many)])?;
    Ok(())
}

pub(crate) fn insert(conn: &mut Conn, id: &SessionId, session: &ConsoleSession) -> Result<()> {
    conn.execute(
        &SESSION_INSERT,
        &[
            &id.as_str(),
            &session.tenant,
            &session.key_id,
            &to_micros(session.created_at),
            &to_micros(session.expires_at),
        ],
    )?;
    Ok(())
}

pub(crate) fn end(conn: &mut Conn, tenant: &str, id: &SessionId) -> Result<bool> {
    Ok(conn.execute(&SESSION_END, &[&tenant, &id.as_str()])? > 0)
}

pub(crate) fn end_of_key(conn: &mut Conn, tenant: &str, key_id: &str) -> Result<u64> {
    conn.execute(&SESSIONS_OF_KEY_END, &[&tenant, &key_id])
}

pub(crate) fn find(
    conn: &mut Conn,
    id: &SessionId,
    now: OffsetDateTime,
) -> Result<Option<ConsoleSession>> {
    conn.query_opt(&SESSION_FIND, &[&id.as_str(), &to_micros(now)])?
        .map(|row| {
            Ok(ConsoleSession {
                tenant: row.try_get(0)?,
                key_id: row.try_get(1)?,
                created_at: from_micros(row.try_get(2)?),
                expires_at: from_micros(row.try_get(3)?),
            })
        })
        .transpose()
}

pub(crate) fn pending_count(
    conn: &mut Conn,
    tenant: &str,
    now: OffsetDateTime,
    at_most: u64,
) -> Result<u64> {
    let row = conn.query_opt(
        &PENDING_OF_TENANT,
        &[&tenant, &to_micros(now), &signed(at_most)],
    )?;
    unsigned(
        row.map_or(Ok(0), |row| row.try_get(0))?,
        "a count of approvals",
    )
}

pub(crate) fn activity(
    conn: &mut Conn,
    tenant: &str,
    since: OffsetDateTime,
    limit: u32,
) -> Result<Vec<haltstate_types::EvidenceRecord>> {
    conn.query(
        &ACTIVITY_SINCE,
        &[
            &tenant,
            &haltstate_types::timestamp::format_rfc3339(since),
            &i64::from(limit),
        ],
    )?
    .iter()
    .map(|row| Ok(crate::store::decode::chained_record(row, tenant)?.record))
    .collect()
}

pub(crate) fn note_change(conn: &mut Conn, tenant: &str, subject: &str, seq: u64) -> Result<()> {
    conn.execute(&CHANGE_NOTE, &[&tenant, &subject, &signed(seq)])?;
    Ok(())
}

pub(crate) fn changes(
    conn: &mut Conn,
    tenant: &str,
    subject: &str,
    limit: u32,
) -> Result<Vec<haltstate_types::EvidenceRecord>> {
    conn.query(&CHANGES_OF, &[&tenant, &subject, &i64::from(limit)])?
        .iter()
        .map(|row| Ok(crate::store::decode::chained_record(row, tenant)?.record))
        .collect()
}

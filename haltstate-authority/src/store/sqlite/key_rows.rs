//! Key rows in SQLite, as the writer reads and stores them: through the key's first ledger record (schema 23), or,
//! for a row the writer stored lately, by its rowid (`KeyRowids`).

use rusqlite::params;
use time::OffsetDateTime;

use haltstate_types::timestamp::to_micros;

use super::held::{Held, Prepare};
use super::key_rowids::KeyRowids;
use super::queries;
use crate::error::Result;
use crate::state_rows::KeyRecord;
use crate::store::sql::{key_row_changes, key_upsert_conflict, key_upsert_into};
use crate::store::usage;

/// Stores a key's row, filed under its key's first ledger record, which the operation appended before a new key's
/// row: without one `key_head` is NULL, which its NOT NULL refuses.
const UPSERT: &str = concat!(
    key_upsert_into!(", key_head"),
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ",
    crate::store::sql::sqlite_key_head!("?1", "?2"),
    ")",
    key_upsert_conflict!("tenant, key_head, agent_id"),
);

/// Updates the row at rowid `?22` in place, if it is still the row of the key (the upsert's placeholders).
const UPDATE_AT: &str = concat!(
    "UPDATE idempotency SET ",
    key_row_changes!(numbered),
    " WHERE rowid = ?22 AND tenant = ?1 AND key = ?2 AND agent_id = ?4"
);

/// A key row as the writer found it, and the key's first ledger record when the row was found by its rowid (the
/// row names it: a record of the key appended next is filed under it without a search of the key's head).
pub(super) struct Found {
    pub(super) record: Option<KeyRecord>,
    pub(super) key_head: Option<u64>,
}

/// The row of `agent`'s `key`: where the writer last stored it, if it is still there, else through the key's head.
pub(super) fn load(
    held: &Held<'_>,
    rowids: &KeyRowids,
    tenant: &str,
    agent: &str,
    key: &str,
) -> Result<Found> {
    if let Some(rowid) = rowids.get(tenant, agent, key)
        && let Some((record, key_head)) = queries::load_key_at(held, rowid, tenant, agent, key)?
    {
        return Ok(Found {
            record: Some(record),
            key_head: Some(key_head),
        });
    }
    Ok(Found {
        record: queries::load_key(held, tenant, agent, key)?,
        key_head: None,
    })
}

/// Stores `record` as of `now`: in place where the writer last stored it, if it is still there, else by the
/// upsert (and remembers where a row it inserted went).
pub(super) fn store(
    held: &Held<'_>,
    rowids: &mut KeyRowids,
    now: OffsetDateTime,
    tenant: &str,
    record: &KeyRecord,
) -> Result<()> {
    let charge = record
        .charged
        .as_ref()
        .map(|c| usage::encode_charge(&c.figures))
        .transpose()?;
    let values = params![
        tenant,
        record.key,
        record.fingerprint,
        record.agent_id,
        record.action,
        record.state.as_str(),
        record.approval_id,
        record.policy_id,
        record.reason,
        record.claim_token,
        record.lease_until.map(to_micros),
        record.outcome_seq,
        to_micros(now),
        record.claimed_by,
        record.client_token,
        record.charged.as_ref().map(|c| to_micros(c.at)),
        charge,
        record.attempts,
        record.retry_digest,
        record.lifetime.as_str(),
        record.generation,
    ];
    if let Some(rowid) = rowids.get(tenant, &record.agent_id, &record.key) {
        let at: &dyn rusqlite::ToSql = &rowid;
        let changed = held.with(UPDATE_AT, |statement| {
            Ok(statement.execute(rusqlite::params_from_iter(
                values.iter().copied().chain(std::iter::once(at)),
            ))?)
        })?;
        if changed == 1 {
            return Ok(());
        }
    }
    // Where an inserted row went is the connection's last inserted rowid; an upsert that updated leaves it as it
    // was (`RETURNING rowid` would say in both cases, at 3% of a guard and report's CPU). A row whose rowid
    // happens to equal the last one inserted elsewhere is not remembered: the next use goes the long way.
    let before = held.conn().last_insert_rowid();
    held.with(UPSERT, |statement| Ok(statement.execute(values)?))?;
    let inserted = held.conn().last_insert_rowid();
    if inserted == before {
        rowids.forget(tenant, &record.agent_id, &record.key);
    } else {
        rowids.remember(tenant, &record.agent_id, &record.key, inserted);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use haltstate_types::{KeyLifetime, KeyState};

    use super::*;
    use crate::store::Durability;

    fn record(key: &str, state: KeyState) -> KeyRecord {
        KeyRecord {
            key: key.to_owned(),
            fingerprint: "fp".into(),
            agent_id: "bot".into(),
            action: "refund.create".into(),
            state,
            lifetime: KeyLifetime::Once,
            generation: 1,
            approval_id: None,
            policy_id: None,
            reason: String::new(),
            claim_token: Some("token".into()),
            retry_digest: None,
            attempts: 1,
            lease_until: None,
            outcome_seq: None,
            claimed_by: None,
            client_token: false,
            charged: None,
        }
    }

    /// A remembered rowid that names another row now (the key's insert undone, its rowid taken by the next row) is
    /// never taken for the key: the read finds the key's own row (none), and the store writes the key's own row and
    /// leaves the other as it was.
    #[test]
    fn a_rowid_that_names_another_row_now_is_not_taken_for_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::open_writer(
            &dir.path().join("rows.db"),
            Durability::Normal,
            super::super::DEFAULT_CHECKPOINT_PAGES,
        )
        .unwrap();
        // The keys' first records, which their rows are filed under.
        conn.execute_batch(
            "INSERT INTO ledger (tenant, seq, prev_hash, hash, body, at, idempotency_key, key_first) VALUES
                 ('acme', 1, 'p', 'h1', x'7b7d', 't', 'k1', 1), ('acme', 2, 'h1', 'h2', x'7b7d', 't', 'k2', 2)",
        )
        .unwrap();
        let held = Held::new(&conn);
        let now = OffsetDateTime::UNIX_EPOCH;
        let mut rowids = KeyRowids::default();
        store(
            &held,
            &mut rowids,
            now,
            "acme",
            &record("k1", KeyState::Claimed),
        )
        .unwrap();
        let first = rowids.get("acme", "bot", "k1").unwrap();
        conn.execute("DELETE FROM idempotency WHERE rowid = ?1", [first])
            .unwrap();
        store(
            &held,
            &mut KeyRowids::default(),
            now,
            "acme",
            &record("k2", KeyState::Claimed),
        )
        .unwrap();
        let taken: i64 = conn
            .query_row(
                "SELECT rowid FROM idempotency WHERE key = 'k2'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(
            taken, first,
            "the case under test: k1's rowid now names k2's row"
        );

        let found = load(&held, &rowids, "acme", "bot", "k1").unwrap();
        assert_eq!((found.record, found.key_head), (None, None));
        store(
            &held,
            &mut rowids,
            now,
            "acme",
            &record("k1", KeyState::Completed),
        )
        .unwrap();
        let state = |key: &str| {
            load(&held, &KeyRowids::default(), "acme", "bot", key)
                .unwrap()
                .record
                .map(|row| row.state)
        };
        assert_eq!(state("k2"), Some(KeyState::Claimed), "k2's row untouched");
        assert_eq!(state("k1"), Some(KeyState::Completed));
        let moved = rowids.get("acme", "bot", "k1").unwrap();
        assert_ne!(moved, first, "k1 is remembered where it is now");

        // Remembered where it is, the row is read and updated there.
        let mut failed = record("k1", KeyState::Failed);
        failed.attempts = 2;
        store(&held, &mut rowids, now, "acme", &failed).unwrap();
        // Found by its rowid, it names its key's first record (k1's: record 1).
        let found = load(&held, &rowids, "acme", "bot", "k1").unwrap();
        assert_eq!((found.record, found.key_head), (Some(failed), Some(1)));
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM idempotency", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 2);
    }
}

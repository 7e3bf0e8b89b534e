//! Finding a tenant's records by time without an index by time (schema 25).
//!
//! The index `ledger_tenant_at` took an entry for every record, and like every index B-tree SQLite rewrote three of
//! its leaves whenever the last one split (`tree.rs` says why): measured by dropping it, 0.942x server CPU and
//! 1.059x actions/s at 64 connections (BENCHMARKS.md). A tenant's records are numbered in the order they were
//! written, and the writer keeps their times in that order (`chain::Tail::next`: a record whose clock stands a
//! little behind its tenant's last record takes that record's time), so the first record at or after a time is
//! found by bisecting the sequence numbers through the `(tenant, seq)` index, about 20 lookups in a million records.
//!
//! Files written before schema 25 made no such promise: the migration drops the index only when every tenant's
//! times are already in order, and a file that keeps it is read through it as before ([`indexed`]). Nor does a
//! clock that stands far behind a tenant's last record (`chain::STEP_BACK_ABSORBED`): its record keeps its own
//! time and the writer builds the index again in the same transaction ([`index_again`]; ~1 s per million records,
//! once). Where the index is gone, `verify` checks the order (a record out of order would be hidden from time
//! queries).

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::error::{AuthorityError, Result};

/// The index by time, kept only by files whose times go backwards somewhere.
const TIME_INDEX: &str = "ledger_tenant_at";

/// A tenant's records at or after time `?4` (RFC 3339 text, as stored) between records `?2` and `?3` (exclusive: a
/// window from the record before the first such, found by [`first_at_or_after`]), oldest first, at most `?5`. The
/// time is compared too, so that the answer stays exact whatever was appended between the bisection and this read.
pub(crate) const ACTIVITY_FROM: &str = "SELECT body, prev_hash, hash FROM ledger \
     WHERE tenant = ?1 AND seq > ?2 AND seq < ?3 AND at >= ?4 ORDER BY seq LIMIT CAST(?5 AS BIGINT)";

/// Whether the file still has the index by time (its times go backwards somewhere, see the module's doc).
pub(super) fn indexed(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?1")?
        .query_row([TIME_INDEX], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Builds the index by time (if the file lacks it) before a record goes out of order: readers choose how to find a
/// time range by whether the index exists ([`indexed`]), so from the commit on they read through it.
pub(super) fn index_again(conn: &Connection) -> Result<()> {
    conn.execute_batch(&format!(
        "CREATE INDEX IF NOT EXISTS {TIME_INDEX} ON ledger (tenant, at)"
    ))?;
    Ok(())
}

/// The sequence number of `tenant`'s first record at or after `at` (as stored), or one past its last when none
/// is: every record from there on is at or after `at`, every one before it earlier. Only where times are in
/// sequence order, i.e. where the file has no index by time ([`indexed`]).
pub(super) fn first_at_or_after(conn: &Connection, tenant: &str, at: &str) -> Result<i64> {
    let last: Option<i64> = conn
        .prepare_cached("SELECT max(seq) FROM ledger WHERE tenant = ?1")?
        .query_row([tenant], |row| row.get(0))?;
    let mut probe = conn.prepare_cached("SELECT at FROM ledger WHERE tenant = ?1 AND seq = ?2")?;
    // The answer lies in [low, high]; `high` is one past the last record until a record at or after `at` is seen.
    let (mut low, mut high) = (1i64, last.unwrap_or(0).saturating_add(1));
    while low < high {
        let middle = low + (high - low) / 2;
        let found: Option<String> = probe
            .query_row(params![tenant, middle], |row| row.get(0))
            .optional()?;
        let Some(found) = found else {
            return Err(AuthorityError::LedgerBroken {
                tenant: tenant.to_owned(),
                seq: u64::try_from(middle).unwrap_or(0),
                problem: "the record is missing".into(),
            });
        };
        if found.as_str() >= at {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    Ok(low)
}

/// Schema 25: drops the index by time if every tenant's record times are in sequence order, keeps it otherwise
/// (a clock that stepped back before this version could write a record earlier than the one before it).
pub(super) fn drop_unless_backwards(tx: &Transaction<'_>) -> Result<()> {
    if first_out_of_order(tx)?.is_none() {
        tx.execute_batch(&format!("DROP INDEX IF EXISTS {TIME_INDEX}"))?;
    }
    Ok(())
}

/// The first record (tenant, sequence number) whose time is before its predecessor's. One pass in `(tenant, seq)`
/// order (1.1 s for 750,000 records), comparing each record's time with the one before it. (`verify` checks the
/// same as it walks the chains, `store/chain.rs`.)
fn first_out_of_order(conn: &Connection) -> Result<Option<(String, u64)>> {
    let found: Option<(String, i64)> = conn
        .prepare(
            "SELECT tenant, seq FROM ( \
                 SELECT tenant, seq, at < lag(at) OVER (PARTITION BY tenant ORDER BY seq) AS backwards \
                 FROM ledger) \
             WHERE backwards ORDER BY tenant, seq LIMIT 1",
        )?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    Ok(found.map(|(tenant, seq)| (tenant, u64::try_from(seq).unwrap_or(0))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ledger of `times` for tenant `acme` (one record each, in order) and one record for `other`.
    fn ledger(times: &[&str]) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::open_writer(
            &dir.path().join("times.db"),
            crate::store::Durability::Normal,
            super::super::DEFAULT_CHECKPOINT_PAGES,
        )
        .unwrap();
        let mut insert = conn
            .prepare(
                "INSERT INTO ledger (tenant, seq, prev_hash, hash, body, at) VALUES (?1, ?2, 'p', 'h', x'7b7d', ?3)",
            )
            .unwrap();
        for (seq, at) in (1i64..).zip(times) {
            insert.execute(params!["acme", seq, at]).unwrap();
        }
        insert.execute(params!["other", 1, "0000"]).unwrap();
        drop(insert);
        (dir, conn)
    }

    #[test]
    fn bisection_finds_the_first_record_at_or_after_a_time() {
        let times = ["a", "c", "c", "c", "e", "g"];
        let (_dir, conn) = ledger(&times);
        for (at, first) in [
            ("0", 1),
            ("a", 1),
            ("b", 2),
            ("c", 2),
            ("d", 5),
            ("e", 5),
            ("f", 6),
            ("g", 6),
            ("h", 7),
        ] {
            assert_eq!(first_at_or_after(&conn, "acme", at).unwrap(), first, "{at}");
        }
        assert_eq!(first_at_or_after(&conn, "nobody", "a").unwrap(), 1);
    }

    #[test]
    fn bisection_over_every_length_agrees_with_a_scan() {
        for length in 0..40 {
            let times: Vec<String> = (0..length).map(|i| format!("{:03}", i / 3 * 2)).collect();
            let refs: Vec<&str> = times.iter().map(String::as_str).collect();
            let (_dir, conn) = ledger(&refs);
            for probe in 0..(length / 3 * 2 + 3) {
                let at = format!("{probe:03}");
                let scanned = times.iter().position(|t| *t >= at).unwrap_or(times.len());
                assert_eq!(
                    first_at_or_after(&conn, "acme", &at).unwrap(),
                    i64::try_from(scanned).unwrap() + 1,
                    "{length} records, {at}"
                );
            }
        }
    }

    #[test]
    fn a_missing_record_is_a_broken_ledger_not_a_wrong_answer() {
        let (_dir, conn) = ledger(&["a", "b", "c", "d", "e"]);
        conn.execute("DELETE FROM ledger WHERE tenant = 'acme' AND seq = 3", [])
            .unwrap();
        assert!(matches!(
            first_at_or_after(&conn, "acme", "c"),
            Err(AuthorityError::LedgerBroken { seq: 3, .. })
        ));
    }

    #[test]
    fn a_time_before_its_predecessor_is_found_within_its_tenant() {
        let (_dir, conn) = ledger(&["a", "b", "b", "c"]);
        assert_eq!(first_out_of_order(&conn).unwrap(), None);
        let (_dir, conn) = ledger(&["a", "c", "b", "d", "a"]);
        assert_eq!(
            first_out_of_order(&conn).unwrap(),
            Some(("acme".to_owned(), 3))
        );
    }

    /// A time range by sequence number, and the console's activity, read the `(tenant, seq)` index from where the
    /// range begins (no scan of the tenant's records, no sort). (That binding new bounds prepares nothing again is
    /// `sql.rs`'s test of every statement with a bound limit.)
    #[test]
    fn a_range_by_sequence_reads_the_sequence_index_from_its_start() {
        let (_dir, conn) = ledger(&["a", "b"]);
        assert!(!indexed(&conn).unwrap(), "a new file has no index by time");
        let query = haltstate_types::EvidenceQuery {
            from: Some(time::OffsetDateTime::UNIX_EPOCH),
            to: Some(time::OffsetDateTime::UNIX_EPOCH),
            ..Default::default()
        };
        let seqs = crate::store::sql::SeqRange {
            from: Some(1),
            to: Some(2),
        };
        let evidence = crate::store::sql::EvidenceStatement::by_sequence(
            &query,
            &crate::store::sql::LedgerColumns::SQLITE,
            seqs,
            crate::store::sql::Order::OldestFirst,
        );
        assert_eq!((evidence.after, evidence.before), (0, Some(2)));
        for sql in [ACTIVITY_FROM, evidence.sql.as_str()] {
            let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let count = explain.parameter_count();
            let plan: Vec<String> = explain
                .query_map(rusqlite::params_from_iter((1..=count).map(|_| 1)), |row| {
                    row.get(3)
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert_eq!(
                plan,
                [
                    "SEARCH ledger USING INDEX sqlite_autoindex_ledger_1 (tenant=? AND seq>? AND seq<?)"
                ],
                "{sql}"
            );
        }
    }

    #[test]
    fn the_index_goes_only_where_times_are_in_order() {
        for (times, kept) in [(&["a", "b", "b"][..], false), (&["b", "a"][..], true)] {
            let (_dir, mut conn) = ledger(times);
            conn.execute_batch(&format!("CREATE INDEX {TIME_INDEX} ON ledger (tenant, at)"))
                .unwrap();
            let tx = conn.transaction().unwrap();
            drop_unless_backwards(&tx).unwrap();
            tx.commit().unwrap();
            assert_eq!(indexed(&conn).unwrap(), kept, "{times:?}");
        }
    }
}

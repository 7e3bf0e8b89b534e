//! Statements both backends run with the same meaning, written once. They use SQLite's numbered placeholders
//! (`?1`); PostgreSQL's (`$1`) are made from them by [`dollars`]. A rule that lives in SQL (which approvals
//! count as pending or expired at a given time, which evidence a query selects) is then stated in one place.
//!
//! A limit is bound as `LIMIT CAST(?n AS BIGINT)`, never `LIMIT ?n`: SQLite (3.50) plans with a bare bound limit's
//! value, so binding it expires the statement and every execution parses and plans it again (a test counts).

use std::borrow::Cow;
use std::sync::LazyLock;

use haltstate_types::EvidenceQuery;
use haltstate_types::timestamp::format_rfc3339;

use super::decode::approval_columns;
use super::windows::Windows;

/// Approvals of tenant `?1` in effective status `?2` (all when NULL) at `?3` (microseconds), newest first, at
/// most `?4`. The stored status lags for overdue pending approvals, so the filter is on the effective status,
/// the one [`Approval::as_of`](haltstate_types::Approval::as_of) gives after decoding.
pub(crate) const LIST_APPROVALS: &str = concat!(
    "SELECT ",
    approval_columns!(),
    " FROM approvals WHERE tenant = ?1 AND ( CAST(?2 AS TEXT) IS NULL \
     OR (?2 = 'pending' AND status = 'pending' AND expires_us > ?3) \
     OR (?2 = 'expired' AND (status = 'expired' OR (status = 'pending' AND expires_us <= ?3))) \
     OR (?2 NOT IN ('pending', 'expired') AND status = ?2) ) \
     ORDER BY created_us DESC, id LIMIT CAST(?4 AS BIGINT)"
);

/// Approvals of tenant `?1` decided after `?2`, oldest first, as of `?3`, at most `?4`: an overdue pending
/// approval counts as decided at its expiry.
pub(crate) const APPROVALS_SINCE: &str = concat!(
    "SELECT ",
    approval_columns!(),
    " FROM approvals WHERE tenant = ?1 AND ( \
       (decided_us IS NOT NULL AND decided_us > ?2) \
       OR (status = 'pending' AND expires_us > ?2 AND expires_us <= ?3) ) \
     ORDER BY COALESCE(decided_us, expires_us), id LIMIT CAST(?4 AS BIGINT)"
);

/// Tenants with pending approvals, how many, and when the oldest was asked for, not past their window at `?1`.
pub(crate) const PENDING_COUNTS: &str = "SELECT tenant, count(*), min(created_us) FROM approvals \
     WHERE status = 'pending' AND expires_us > ?1 GROUP BY tenant";

/// Approvals agent `?2` of tenant `?1` has waiting, not past their window at `?3` (index `approvals_pending_agent`).
/// Counts no further than `?4`.
pub(crate) const PENDING_OF_AGENT: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM approvals \
     WHERE tenant = ?1 AND agent_id = ?2 AND status = 'pending' AND expires_us > ?3 \
     LIMIT CAST(?4 AS BIGINT)) AS waiting";

/// Approvals tenant `?1` has waiting, not past their window at `?2` (index `approvals_pending`).
/// Counts no further than `?3`.
pub(crate) const PENDING_OF_TENANT: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM approvals \
     WHERE tenant = ?1 AND status = 'pending' AND expires_us > ?2 LIMIT CAST(?3 AS BIGINT)) AS waiting";

/// A new approval, pending: id `?1`, tenant `?2`, key `?3`, request `?4`, agent `?5`, action `?6`, resource `?7`,
/// params `?8` and metadata `?10` as JSON text ([`approval_json`]), risk `?9`, policy `?11` and its reason `?12`,
/// created `?13` and expiring `?14` (microseconds), approvals required `?15`, policy version `?16`.
pub(crate) const APPROVAL_INSERT: &str = "INSERT INTO approvals (id, tenant, idempotency_key, request_id, \
     agent_id, action, resource, params, risk, metadata, policy_id, policy_reason, status, created_us, expires_us, \
     approvals_required, policy_version) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'pending', ?13, ?14, ?15, ?16)";

/// Approval `?1` of tenant `?2` decided, if still pending: status `?3` at `?4` (microseconds) by `?5` for reason
/// `?6`, its approvers so far `?7` (`approvers::encode`).
pub(crate) const APPROVAL_SETTLE: &str = "UPDATE approvals SET status = ?3, decided_us = ?4, approver = ?5, \
     decision_reason = ?6, approved_by = ?7 WHERE id = ?1 AND tenant = ?2 AND status = 'pending'";

/// Up to `?3` of tenant `?1`'s pending approvals past their expiry at `?2` (microseconds), the longest overdue
/// first.
pub(crate) const APPROVALS_OVERDUE: &str = "SELECT id FROM approvals \
     WHERE tenant = ?1 AND status = 'pending' AND expires_us <= ?2 ORDER BY expires_us LIMIT CAST(?3 AS BIGINT)";

/// An approval's params and metadata as [`APPROVAL_INSERT`] stores them: JSON text (metadata NULL when absent).
pub(crate) fn approval_json(approval: &haltstate_types::Approval) -> (String, Option<String>) {
    let params = serde_json::Value::Object(approval.params.clone()).to_string();
    let metadata = approval
        .metadata
        .clone()
        .map(|m| serde_json::Value::Object(m).to_string());
    (params, metadata)
}

/// A tenant's records at or after time `?2` (RFC 3339 text, as stored), oldest first, at most `?3` (index
/// `ledger_tenant_at`): what the console's overview counts. A SQLite file without that index (schema 25) reads
/// them by sequence number (`sqlite/times.rs`).
pub(crate) const ACTIVITY_SINCE: &str = "SELECT body, prev_hash, hash FROM ledger \
     WHERE tenant = ?1 AND at >= ?2 ORDER BY at LIMIT CAST(?3 AS BIGINT)";

/// Notes that record `?3` of tenant `?1` is a change of `?2` (`kill-switch`, `key:<id>`).
pub(crate) const CHANGE_NOTE: &str =
    "INSERT INTO change_history (tenant, subject, seq) VALUES (?1, ?2, ?3)";
/// The records of the changes of `?2`, newest first, at most `?3`.
pub(crate) const CHANGES_OF: &str = "SELECT l.body, l.prev_hash, l.hash FROM change_history c \
     JOIN ledger l ON l.tenant = c.tenant AND l.seq = c.seq \
     WHERE c.tenant = ?1 AND c.subject = ?2 ORDER BY c.seq DESC LIMIT CAST(?3 AS BIGINT)";

/// Console sessions past their expiry at `?1`.
pub(crate) const SESSIONS_EXPIRE: &str = "DELETE FROM console_sessions WHERE expires_us <= ?1";
/// Sessions of tenant `?1`.
pub(crate) const SESSIONS_OF_TENANT: &str =
    "SELECT COUNT(*) FROM console_sessions WHERE tenant = ?1";
/// Sessions of every tenant.
pub(crate) const SESSIONS_ALL: &str = "SELECT COUNT(*) FROM console_sessions";
/// Ends the `?2` sessions of tenant `?1` closest to their expiry.
pub(crate) const SESSIONS_END_OLDEST: &str = "DELETE FROM console_sessions WHERE token_hash IN \
     (SELECT token_hash FROM console_sessions WHERE tenant = ?1 ORDER BY expires_us, token_hash \
     LIMIT CAST(?2 AS BIGINT))";
/// Stores a session.
pub(crate) const SESSION_INSERT: &str = "INSERT INTO console_sessions \
     (token_hash, tenant, key_id, created_us, expires_us) VALUES (?1, ?2, ?3, ?4, ?5)";
/// Ends session `?2` of tenant `?1`.
pub(crate) const SESSION_END: &str =
    "DELETE FROM console_sessions WHERE tenant = ?1 AND token_hash = ?2";
/// Ends every session of key `?2` of tenant `?1`.
pub(crate) const SESSIONS_OF_KEY_END: &str =
    "DELETE FROM console_sessions WHERE tenant = ?1 AND key_id = ?2";
/// Session `?1`, unless expired at `?2`.
pub(crate) const SESSION_FIND: &str = "SELECT tenant, key_id, created_us, expires_us \
     FROM console_sessions WHERE token_hash = ?1 AND expires_us > ?2";

/// Tenants with pending approvals past their window at `?1`.
pub(crate) const OVERDUE_TENANTS: &str =
    "SELECT DISTINCT tenant FROM approvals WHERE status = 'pending' AND expires_us <= ?1";

/// The head of a key row's upsert: the table and its columns, `created_us` then `updated_us` (both backends write
/// the transaction's clock into both; an update keeps the stored `created_us`, see `key_upsert_conflict!`), then
/// the backend's own columns (`$more`, each after a comma: SQLite's `key_head`).
macro_rules! key_upsert_into {
    ($($more:literal)?) => {
        concat!(
            "INSERT INTO idempotency (tenant, key, fingerprint, agent_id, action, state, approval_id, policy_id, \
             reason, claim_token, lease_until_us, outcome_seq, created_us, updated_us, claimed_by, client_token, \
             usage_us, usage, attempts, retry_digest, lifetime, generation",
            $($more,)?
            ") "
        )
    };
}

/// The tail of a key row's upsert on the backend's unique key of a row (`$unique`): a stored row takes every
/// column of `key_row_changes!`.
macro_rules! key_upsert_conflict {
    ($unique:literal) => {
        concat!(
            " ON CONFLICT (",
            $unique,
            ") DO UPDATE SET ",
            $crate::store::sql::key_row_changes!(excluded)
        )
    };
}

/// The columns a stored key row takes from a new write: all but the row's identity (tenant, key, agent,
/// `created_us`, SQLite's `key_head`), as the assignments of an update: `excluded` takes each from the upsert's
/// new row, `numbered` from its placeholder in SQLite's `put_key`. One list, so that the upsert and SQLite's update
/// of a row found by its rowid never assign different columns.
macro_rules! key_row_changes {
    ($from:ident) => {
        $crate::store::sql::key_row_changes!(@ $from fingerprint 3, action 5, state 6, approval_id 7,
            policy_id 8, reason 9, claim_token 10, lease_until_us 11, outcome_seq 12, updated_us 13,
            claimed_by 14, client_token 15, usage_us 16, usage 17, attempts 18, retry_digest 19, lifetime 20,
            generation 21)
    };
    (@ excluded $first:ident $first_n:literal $(, $column:ident $n:literal)*) => {
        concat!(
            stringify!($first), " = excluded.", stringify!($first)
            $(, ", ", stringify!($column), " = excluded.", stringify!($column))*
        )
    };
    (@ numbered $first:ident $first_n:literal $(, $column:ident $n:literal)*) => {
        concat!(
            stringify!($first), " = ?", stringify!($first_n)
            $(, ", ", stringify!($column), " = ?", stringify!($n))*
        )
    };
}

pub(crate) use {key_row_changes, key_upsert_conflict, key_upsert_into};

/// Usage buckets of tenant `?1`, agent `?2`, action `?3` still in their windows: seconds from `?4`, minutes from
/// `?5`, hours from `?6`.
pub(crate) const USAGE_SINCE: &str = "SELECT span, start_us, count, tokens, sums FROM usage_buckets \
     WHERE tenant = ?1 AND agent_id = ?2 AND action = ?3 AND ( \
       (span = 's' AND start_us >= ?4) OR (span = 'm' AND start_us >= ?5) OR (span = 'h' AND start_us >= ?6))";

/// Stores `rows` usage buckets' figures, replacing what they held, in one statement: tenant `?1`, agent `?2`,
/// action `?3`, then per bucket its span, start, count, tokens and sums (`?4` to `?8` for the first). A
/// transaction's charges usually touch one bucket per span, so one to three rows: those statements are made once.
pub(crate) fn usage_write(rows: usize) -> Cow<'static, str> {
    static MADE: LazyLock<[String; 3]> = LazyLock::new(|| [1, 2, 3].map(usage_write_sql));
    match rows.checked_sub(1).and_then(|n| MADE.get(n)) {
        Some(sql) => Cow::Borrowed(sql),
        None => Cow::Owned(usage_write_sql(rows)),
    }
}

fn usage_write_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let first = 4 + row * 5;
            let placeholders: Vec<String> = (first..first + 5).map(|n| format!("?{n}")).collect();
            format!("(?1, ?2, ?3, {})", placeholders.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO usage_buckets (tenant, agent_id, action, span, start_us, count, tokens, sums) \
         VALUES {} ON CONFLICT (tenant, agent_id, action, span, start_us) DO UPDATE SET \
         count = excluded.count, tokens = excluded.tokens, sums = excluded.sums",
        values.join(", ")
    )
}

/// Deletes the usage buckets of span `?4` starting before `?5`.
pub(crate) const USAGE_PRUNE: &str = "DELETE FROM usage_buckets \
     WHERE tenant = ?1 AND agent_id = ?2 AND action = ?3 AND span = ?4 AND start_us < ?5";

/// `sql` with each `?N` placeholder written `$N`.
#[cfg(feature = "postgres")]
pub(crate) fn dollars(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        let numbered = c == '?' && chars.peek().is_some_and(char::is_ascii_digit);
        out.push(if numbered { '$' } else { c });
    }
    out
}

/// How a backend's ledger finds a key's records and gives a record's action and agent, which evidence queries may
/// filter on.
#[derive(Debug)]
pub(crate) struct LedgerColumns {
    /// The condition on a key given as `?3` (the first filter's placeholder), after ` AND `.
    pub(crate) key: &'static str,
    pub(crate) action: &'static str,
    pub(crate) agent_id: &'static str,
}

/// SQLite's head of a key (schema 22): the sequence number of the key's first record, the one record of the key
/// that names itself in `key_first`, found through the `ledger_key_head` index. `$tenant` and `$key` are
/// placeholders; NULL when the key has no record yet.
macro_rules! sqlite_key_head {
    ($tenant:literal, $key:literal) => {
        concat!(
            "(SELECT head.seq FROM ledger AS head WHERE head.tenant = ",
            $tenant,
            " AND head.idempotency_key = ",
            $key,
            " AND head.key_first = head.seq)"
        )
    };
}
pub(crate) use sqlite_key_head;

/// SQLite's records of the key in `$key` of tenant `$tenant`: those that name the key's head. The key is compared
/// too, so a query never depends on `key_first` alone.
macro_rules! sqlite_key_records {
    ($tenant:literal, $key:literal) => {
        concat!(
            "key_first = ",
            $crate::store::sql::sqlite_key_head!($tenant, $key),
            " AND idempotency_key = ",
            $key
        )
    };
}
pub(crate) use sqlite_key_records;

impl LedgerColumns {
    /// SQLite finds a key's records through its head (schema 22), and reads action and agent from the record's
    /// body: a generated column was computed on every insert, for a filter that is rarely used and never indexed.
    pub(crate) const SQLITE: Self = Self {
        key: sqlite_key_records!("?1", "?3"),
        action: "json_extract(body, '$.action')",
        agent_id: "json_extract(body, '$.agent_id')",
    };
    /// PostgreSQL indexes the key and stores action and agent as columns of the row.
    #[cfg(feature = "postgres")]
    pub(crate) const POSTGRES: Self = Self {
        key: "idempotency_key = ?3",
        action: "action",
        agent_id: "agent_id",
    };
}

/// Which end of a tenant's ledger a query's records come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// The oldest that match first: how a reader pages through the ledger with `after_seq`.
    OldestFirst,
    /// The newest that match first (the limit counts from the end): a page of recent activity.
    NewestFirst,
}

/// A ledger query as a statement: tenant `?1`, records after `?2`, then one placeholder for each filter given,
/// then, when the records end at a sequence number, that number, then the limit.
#[derive(Debug)]
pub(crate) struct EvidenceStatement {
    /// In SQLite's placeholders (see [`dollars`]).
    pub(crate) sql: String,
    pub(crate) after: i64,
    /// The filters' values, in placeholder order from `?3`.
    pub(crate) filters: Vec<String>,
    /// Only records before this sequence number.
    pub(crate) before: Option<i64>,
    pub(crate) limit: i64,
    /// No key, and no time range but as sequence numbers: the statement reads a range of sequence numbers, a window
    /// at a time ([`run`](Self::run)).
    scan: bool,
    order: Order,
}

/// What one execution of an [`EvidenceStatement`] binds: records after `after` (`?2`), before `before` (the
/// placeholder after the filters, when the statement has one), at most `limit`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) after: i64,
    pub(crate) before: Option<i64>,
    pub(crate) limit: i64,
}

/// Where a tenant's records at or after a query's `from` begin and those at or after its `to` begin, as sequence
/// numbers: how a ledger without an index by time finds a time range (`sqlite/times.rs`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeqRange {
    pub(crate) from: Option<i64>,
    pub(crate) to: Option<i64>,
}

impl EvidenceStatement {
    /// Only the filters given go into the SQL: `(?x IS NULL OR col = ?x)` would keep the planner from using
    /// the key and time indexes, and a query by key would scan the tenant's whole ledger.
    pub(crate) fn new(query: &EvidenceQuery, columns: &LedgerColumns, order: Order) -> Self {
        Self::build(query, columns, None, order)
    }

    /// As [`new`](Self::new), with the time range also bounded by the sequence numbers where it begins and ends
    /// (`seqs`), so that the `(tenant, seq)` index serves it. The times are compared too: the range stays exact
    /// whatever was appended after `seqs` were found.
    pub(crate) fn by_sequence(
        query: &EvidenceQuery,
        columns: &LedgerColumns,
        seqs: SeqRange,
        order: Order,
    ) -> Self {
        Self::build(query, columns, Some(seqs), order)
    }

    fn build(
        query: &EvidenceQuery,
        columns: &LedgerColumns,
        seqs: Option<SeqRange>,
        order: Order,
    ) -> Self {
        let mut sql =
            String::from("SELECT body, prev_hash, hash FROM ledger WHERE tenant = ?1 AND seq > ?2");
        let mut filters = Vec::new();
        // The key first: its condition names its placeholder, `?3`.
        if let Some(key) = &query.idempotency_key {
            filters.push(key.clone());
            sql.push_str(" AND ");
            sql.push_str(columns.key);
        }
        let given = [
            (columns.action, "=", query.action.clone()),
            (columns.agent_id, "=", query.agent_id.clone()),
            ("at", ">=", query.from.map(format_rfc3339)),
            ("at", "<", query.to.map(format_rfc3339)),
        ];
        for (column, comparison, value) in given {
            if let Some(value) = value {
                filters.push(value);
                sql.push_str(&format!(
                    " AND {column} {comparison} ?{}",
                    filters.len() + 2
                ));
            }
        }
        let mut after = query
            .after_seq
            .map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX));
        let mut before = None;
        if let Some(seqs) = seqs {
            if let Some(first) = seqs.from {
                after = after.max(first.saturating_sub(1));
            }
            before = seqs.to;
        }
        // A scan reads its range a window at a time (`run`), so it always has an end: a query with neither a key
        // nor a time range, or one whose time range was found as sequence numbers (SQLite). A time range left to
        // an index by time (PostgreSQL's, an older SQLite file's) runs as one statement: the planner may walk that
        // index for each window, the whole range each time.
        let scan = query.idempotency_key.is_none()
            && (seqs.is_some() || (query.from.is_none() && query.to.is_none()));
        if scan {
            before = Some(before.unwrap_or(i64::MAX));
        }
        if before.is_some() {
            sql.push_str(&format!(" AND seq < ?{}", filters.len() + 3));
        }
        let limit_at = filters.len() + 3 + usize::from(before.is_some());
        let direction = match order {
            Order::OldestFirst => "ASC",
            Order::NewestFirst => "DESC",
        };
        sql.push_str(&format!(
            " ORDER BY seq {direction} LIMIT CAST(?{limit_at} AS BIGINT)"
        ));
        Self {
            sql,
            after,
            filters,
            before,
            limit: i64::from(query.limit.unwrap_or(100).clamp(1, 1000)),
            scan,
            order,
        }
    }

    /// Runs the statement through `read` (which binds `?2`, the end and the limit from the [`Bounds`] it is given):
    /// once for a query by key (its index finds its few records) or by time through an index by time; a window of
    /// sequence numbers at a time for a scan (`store/windows.rs`), up to `head` (the tenant's last record, read only
    /// for a scan), until it has its limit. The records come in the statement's order. Both read through `conn`.
    pub(crate) fn run<C, T>(
        &self,
        conn: &mut C,
        head: impl FnOnce(&mut C) -> crate::error::Result<i64>,
        mut read: impl FnMut(&mut C, Bounds) -> crate::error::Result<Vec<T>>,
    ) -> crate::error::Result<Vec<T>> {
        if !self.scan {
            let once = Bounds {
                after: self.after,
                before: self.before,
                limit: self.limit,
            };
            return read(conn, once);
        }
        let end = self
            .before
            .unwrap_or(i64::MAX)
            .min(head(conn)?.saturating_add(1));
        Windows::new(self.after, end, self.order == Order::NewestFirst).read_until(
            self.limit,
            |after, before, limit| {
                let window = Bounds {
                    after,
                    before: Some(before),
                    limit,
                };
                read(conn, window)
            },
        )
    }

    /// The statement text for PostgreSQL.
    #[cfg(feature = "postgres")]
    pub(crate) fn postgres_sql(&self) -> String {
        dollars(&self.sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "postgres")]
    #[test]
    fn dollars_rewrites_numbered_placeholders_only() {
        assert_eq!(
            dollars("a = ?1 AND b = ?12 AND c = '?' AND d IS NULL"),
            "a = $1 AND b = $12 AND c = '?' AND d IS NULL"
        );
    }

    #[test]
    fn evidence_numbers_only_the_filters_given() {
        let query = EvidenceQuery {
            action: Some("refund".into()),
            agent_id: Some("bot".into()),
            limit: Some(5000),
            ..EvidenceQuery::default()
        };
        let statement = EvidenceStatement::new(&query, &LedgerColumns::SQLITE, Order::OldestFirst);
        assert!(
            statement.sql.ends_with(
                "AND json_extract(body, '$.action') = ?3 AND json_extract(body, '$.agent_id') = ?4 \
                 AND seq < ?5 ORDER BY seq ASC LIMIT CAST(?6 AS BIGINT)"
            ),
            "{}",
            statement.sql
        );
        assert_eq!(statement.filters, ["refund", "bot"]);
        assert_eq!((statement.after, statement.limit), (0, 1000));
        assert_eq!(statement.before, Some(i64::MAX));
    }

    /// A scan reads window by window and stops at its limit; a query by key runs once with its own bounds.
    #[test]
    fn a_scan_runs_a_window_at_a_time_until_its_limit() {
        let scan = |order, after_seq| {
            let query = EvidenceQuery {
                action: Some("refund".into()),
                after_seq,
                limit: Some(3),
                ..EvidenceQuery::default()
            };
            EvidenceStatement::new(&query, &LedgerColumns::SQLITE, order)
        };
        // `head` None: reading it fails (a query by key or through an index by time must not read it).
        let windows = |statement: &EvidenceStatement, head: Option<i64>, found: usize| {
            let mut asked = Vec::new();
            let head = |_: &mut ()| {
                head.ok_or_else(|| crate::AuthorityError::storage("the head was read"))
            };
            let records: Vec<i64> = statement
                .run(&mut (), head, |_, bounds| {
                    asked.push((bounds.after, bounds.before, bounds.limit));
                    Ok(vec![bounds.after; found.min(bounds.limit as usize)])
                })
                .unwrap();
            (asked, records.len())
        };
        let w = super::super::windows::WINDOW;
        let (asked, found) = windows(&scan(Order::OldestFirst, None), Some(10_000), 1);
        assert_eq!(
            asked,
            [
                (0, Some(w + 1), 3),
                (w, Some(2 * w + 1), 2),
                (2 * w, Some(10_001), 1)
            ]
        );
        assert_eq!(found, 3);
        let (asked, found) = windows(&scan(Order::NewestFirst, Some(9_000)), Some(10_000), 0);
        assert_eq!(asked, [(9_000, Some(10_001), 3)]);
        assert_eq!(found, 0);
        let (asked, _) = windows(&scan(Order::OldestFirst, None), Some(0), 1);
        assert!(asked.is_empty(), "an empty ledger is not read");
        let by_key = EvidenceStatement::new(
            &EvidenceQuery {
                idempotency_key: Some("k".into()),
                ..EvidenceQuery::default()
            },
            &LedgerColumns::SQLITE,
            Order::OldestFirst,
        );
        assert_eq!(windows(&by_key, None, 7).0, [(0, None, 100)]);
        let by_time = EvidenceQuery {
            action: Some("refund".into()),
            from: Some(time::OffsetDateTime::UNIX_EPOCH),
            ..EvidenceQuery::default()
        };
        let indexed = EvidenceStatement::new(&by_time, &LedgerColumns::SQLITE, Order::OldestFirst);
        assert_eq!(windows(&indexed, None, 7).0, [(0, None, 100)]);
        let seqs = SeqRange {
            from: Some(9_001),
            to: Some(9_500),
        };
        let by_sequence = EvidenceStatement::by_sequence(
            &by_time,
            &LedgerColumns::SQLITE,
            seqs,
            Order::OldestFirst,
        );
        assert_eq!(
            windows(&by_sequence, Some(10_000), 7).0,
            [(9_000, Some(9_500), 100)]
        );
    }

    /// Run twice with fresh bindings, no statement is prepared again: a bare `LIMIT ?n` is (measured: a report's
    /// one-statement key read with `LIMIT ?3` spent 19% of the writer's samples in `sqlite3Reprepare`).
    #[test]
    fn binding_a_limit_does_not_prepare_the_statement_again() {
        let (_dir, conn) = plan_db();
        let evidence = EvidenceStatement::new(
            &EvidenceQuery {
                idempotency_key: Some("k".into()),
                ..EvidenceQuery::default()
            },
            &LedgerColumns::SQLITE,
            Order::OldestFirst,
        );
        let by_sequence = EvidenceStatement::by_sequence(
            &EvidenceQuery {
                from: Some(time::OffsetDateTime::UNIX_EPOCH),
                to: Some(time::OffsetDateTime::UNIX_EPOCH),
                ..EvidenceQuery::default()
            },
            &LedgerColumns::SQLITE,
            SeqRange {
                from: Some(1),
                to: Some(2),
            },
            Order::OldestFirst,
        );
        let statements = [
            LIST_APPROVALS,
            APPROVALS_SINCE,
            PENDING_OF_AGENT,
            PENDING_OF_TENANT,
            APPROVALS_OVERDUE,
            ACTIVITY_SINCE,
            CHANGES_OF,
            SESSIONS_END_OLDEST,
            &evidence.sql,
            &by_sequence.sql,
            crate::store::sqlite::times::ACTIVITY_FROM,
            crate::store::sqlite::webhooks::CLAIM_DUE,
            crate::store::sqlite::webhooks::DELIVERIES,
        ];
        for sql in statements {
            let mut statement = conn.prepare(sql).unwrap();
            let count = statement.parameter_count();
            for limit in [5i64, 6] {
                let values = (1..=count).map(|i| if i == count { limit } else { 1 });
                let mut rows = statement.query(rusqlite::params_from_iter(values)).unwrap();
                while rows.next().unwrap().is_some() {}
            }
            assert_eq!(
                statement.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "{sql}"
            );
        }
    }

    /// A database with the current schema, for `EXPLAIN QUERY PLAN` (the directory lives as long as it).
    fn plan_db() -> (tempfile::TempDir, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::sqlite::open_writer(
            &dir.path().join("plan.db"),
            crate::store::Durability::Full,
            crate::store::sqlite::DEFAULT_CHECKPOINT_PAGES,
        )
        .unwrap();
        (dir, conn)
    }

    /// A key's row is found through its key's head (schema 23), then the rows' index by head (schema 21: the rows
    /// themselves lie in the order they were made, so that a new row and its update dirty the table's newest
    /// pages, not a random one): by its agent, and by the key alone (a report that names no agent). The one
    /// random page a key costs is the head's.
    #[test]
    fn key_rows_are_found_through_the_key_head_on_sqlite() {
        let (_dir, conn) = plan_db();
        let plan = |sql: &str| -> Vec<String> {
            let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let count = explain.parameter_count();
            explain
                .query_map(
                    rusqlite::params_from_iter((1..=count).map(|_| "k")),
                    |row| row.get(3),
                )
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let head = "SEARCH head USING INDEX ledger_key_head (tenant=? AND idempotency_key=?)";
        assert_eq!(
            plan(super::super::sqlite::queries::KEY_ROW),
            [
                "SEARCH idempotency USING INDEX idempotency_head (tenant=? AND key_head=? AND agent_id=?)",
                "SCALAR SUBQUERY 1",
                head
            ]
        );
        assert_eq!(
            plan(super::super::sqlite::queries::KEY_ROWS),
            [
                "SEARCH idempotency USING INDEX idempotency_head (tenant=? AND key_head=?)",
                "SCALAR SUBQUERY 1",
                head
            ]
        );
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM pragma_index_list('idempotency') ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(indexes, ["idempotency_head"], "no index by key");
        let without_rowid: bool = conn
            .query_row(
                "SELECT wr FROM pragma_table_list WHERE name = 'idempotency'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert!(
            !without_rowid,
            "key rows are stored in the order they were made"
        );
    }

    /// An update of a stored key row takes every column but the row's identity: a column missing from
    /// `key_row_changes!` would keep its old value at every update, by upsert and in place alike.
    #[test]
    fn a_key_rows_update_takes_every_column_but_its_identity() {
        let (_dir, conn) = plan_db();
        let mut columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('idempotency') ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        columns.retain(|c| {
            !["tenant", "key", "agent_id", "created_us", "key_head"].contains(&c.as_str())
        });
        let assigned = |sql: &str| -> Vec<String> {
            let mut names: Vec<String> = sql
                .split(", ")
                .map(|assignment| assignment.split(" = ").next().unwrap().to_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(assigned(key_row_changes!(excluded)), columns);
        assert_eq!(assigned(key_row_changes!(numbered)), columns);
        assert!(
            key_row_changes!(excluded).contains("generation = excluded.generation")
                && key_row_changes!(numbered).contains("generation = ?21")
        );
    }

    /// A query by key must read the key's records through an index, in order, not walk the tenant's ledger
    /// (SQLite chose the walk while the key index lacked the sequence number: linear in the ledger's size). Since
    /// schema 22 that is the key's head, then the records that name it.
    #[test]
    fn a_query_by_key_reads_the_key_index_in_order_on_sqlite() {
        let (_dir, conn) = plan_db();
        let query = EvidenceQuery {
            idempotency_key: Some("refund:1".into()),
            ..EvidenceQuery::default()
        };
        let statement = EvidenceStatement::new(&query, &LedgerColumns::SQLITE, Order::OldestFirst);
        let mut explain = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", statement.sql))
            .unwrap();
        let plan: Vec<String> = explain
            .query_map(rusqlite::params!["acme", 0i64, "refund:1", 100i64], |row| {
                row.get(3)
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            plan,
            [
                "SEARCH ledger USING INDEX ledger_key_records (tenant=? AND key_first=? AND seq>?)",
                "SCALAR SUBQUERY 1",
                "SEARCH head USING INDEX ledger_key_head (tenant=? AND idempotency_key=?)"
            ],
            "{}",
            statement.sql
        );
        // Appending a record finds its key's head through the same index (one read, no scan).
        let mut explain = conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN {}",
                crate::store::sqlite::LEDGER_INSERT
            ))
            .unwrap();
        let plan: Vec<String> = explain
            .query_map(
                rusqlite::params![
                    "acme",
                    7i64,
                    "p",
                    "h",
                    b"{}",
                    "t",
                    "refund:1",
                    None::<i64>,
                    [0u8; 32]
                ],
                |row| row.get(3),
            )
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            plan,
            [
                "SCALAR SUBQUERY 1",
                "SEARCH head USING INDEX ledger_key_head (tenant=? AND idempotency_key=?)"
            ]
        );
    }

    /// Counting an agent's waiting approvals (before each new one) must read the agent's index entries only, not
    /// each of the tenant's pending rows: before schema 14 it cost as much as the tenant's whole inbox.
    #[test]
    fn pending_approvals_are_counted_from_covering_indexes_on_sqlite() {
        let (_dir, conn) = plan_db();
        let plan = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> Vec<String> {
            let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            explain
                .query_map(params, |row| row.get(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        // The count reads index entries only (a covering index), as many as the cap at most.
        let expected = |index: &str, terms: &str| {
            vec![
                // The subquery is named `waiting` (PostgreSQL needs the alias; SQLite shows it here).
                "CO-ROUTINE waiting".to_owned(),
                format!("SEARCH approvals USING COVERING INDEX {index} ({terms})"),
                "SCAN waiting".to_owned(),
            ]
        };
        assert_eq!(
            plan(PENDING_OF_AGENT, &[&"acme", &"bot", &0i64, &50i64]),
            expected(
                "approvals_pending_agent",
                "tenant=? AND agent_id=? AND status=? AND expires_us>?"
            )
        );
        assert_eq!(
            plan(PENDING_OF_TENANT, &[&"acme", &0i64, &500i64]),
            expected(
                "approvals_pending",
                "tenant=? AND status=? AND expires_us>?"
            )
        );
    }
}

//! The ledger: what each record holds, and that any tampering done directly in SQLite is found by verify.

#![allow(clippy::unwrap_used)]

mod common;

use common::{TENANT, env, guard_refund, sqlite_env};
use haltstate_authority::{
    Authority, AuthorityError, Decision, EvidenceKind, EvidenceQuery, GENESIS_HASH, GuardRequest,
    GuardStatus, KillScope, KillState, Outcome, OutcomeReport, ProofStatus, record_hash,
};
use proptest::prelude::*;
use rusqlite::{Connection, params};

#[test]
fn decision_and_outcome_records_hold_the_evidence() {
    let env = env();
    let mut request = guard_refund(4_500, "refund:ev1");
    request.action.redacted_fields = vec!["card_last4".into()];
    let answer = env.authority.guard(TENANT, request).wait().unwrap();
    let report = OutcomeReport::new("refund:ev1", Outcome::Success)
        .claim_token(answer.claim.unwrap().token)
        .body_latency(std::time::Duration::from_micros(1234))
        .resource_ref("refund:re_9");
    env.authority.report(TENANT, report).wait().unwrap();

    let records = evidence_of_key(&env.authority, "refund:ev1");
    assert_eq!(records.len(), 2);
    let decision = &records[0];
    assert_eq!(decision.kind, EvidenceKind::Guard);
    assert_eq!(decision.decision, Some(Decision::Allow));
    assert_eq!(decision.status.as_deref(), Some("allowed"));
    assert_eq!(decision.policy_id.as_deref(), Some("refunds.small"));
    assert_eq!(
        decision.reason.as_deref(),
        Some("refunds up to 100.00 are routine")
    );
    assert_eq!(decision.agent_id.as_deref(), Some("billing-agent"));
    assert_eq!(decision.action.as_deref(), Some("refund.create"));
    assert_eq!(decision.resource_refs, vec!["order:1042".to_owned()]);
    assert!(decision.decision_latency_us.is_some());
    assert_eq!(decision.proof_status, Some(ProofStatus::Verified));
    assert_eq!(decision.redaction_status.as_deref(), Some("redacted"));
    assert_eq!(decision.redacted_fields, vec!["card_last4".to_owned()]);
    assert_eq!(decision.at, common::MONDAY_10AM);
    let outcome = &records[1];
    assert_eq!(outcome.kind, EvidenceKind::Outcome);
    assert_eq!(outcome.outcome, Some(Outcome::Success));
    assert_eq!(outcome.body_latency_us, Some(1234));
    assert_eq!(outcome.resource_refs, vec!["refund:re_9".to_owned()]);
    assert_eq!(outcome.policy_id.as_deref(), Some("refunds.small"));
    assert_eq!(outcome.seq, decision.seq + 1);
}

#[test]
fn error_texts_are_truncated_in_the_ledger() {
    let env = env();
    env.authority
        .guard(TENANT, guard_refund(100, "refund:long"))
        .wait()
        .unwrap();
    let report = OutcomeReport::new("refund:long", Outcome::Error).error("x".repeat(10_000));
    let seq = env
        .authority
        .report(TENANT, report)
        .wait()
        .unwrap()
        .ledger_seq;
    let record = env
        .authority
        .evidence(
            TENANT,
            &EvidenceQuery {
                after_seq: Some(seq - 1),
                ..Default::default()
            },
        )
        .unwrap()
        .remove(0);
    assert_eq!(
        record.error.unwrap().chars().count(),
        haltstate_authority::MAX_ERROR_TEXT + 1
    );
}

#[test]
fn evidence_queries_filter_by_action_agent_and_time_within_the_tenant() {
    let env = env();
    env.authority
        .guard(TENANT, guard_refund(100, "refund:q1"))
        .wait()
        .unwrap();
    env.clock.advance(std::time::Duration::from_secs(60));
    let later = env.authority.now();
    let mut export = guard_refund(100, "export:q2");
    export.action.action = "data.export".into();
    export.action.agent_id = "exporter".into();
    env.authority.guard(TENANT, export).wait().unwrap();
    env.authority
        .guard("globex", guard_refund(100, "refund:q3"))
        .wait()
        .unwrap();

    let query = |q: EvidenceQuery| env.authority.evidence(TENANT, &q).unwrap().len();
    assert_eq!(query(EvidenceQuery::default()), 2);
    assert_eq!(
        query(EvidenceQuery {
            action: Some("data.export".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        query(EvidenceQuery {
            agent_id: Some("billing-agent".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        query(EvidenceQuery {
            from: Some(later),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        query(EvidenceQuery {
            to: Some(later),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        query(EvidenceQuery {
            limit: Some(1),
            ..Default::default()
        }),
        1
    );
}

#[test]
fn verify_reports_count_and_head_and_the_head_matches() {
    let env = env();
    assert_eq!(
        env.authority.tenant_head(TENANT).unwrap().hash,
        GENESIS_HASH
    );
    assert!(env.authority.verify_ledger().unwrap().chains.is_empty());
    for i in 0..5 {
        env.authority
            .guard(TENANT, guard_refund(100, &format!("refund:v{i}")))
            .wait()
            .unwrap();
    }
    let report = env.authority.verify_ledger().unwrap();
    let head = env.authority.tenant_head(TENANT).unwrap();
    assert_eq!(report.records, 5);
    assert_eq!(report.chains.len(), 1);
    assert_eq!(report.chains[0].tenant, TENANT);
    assert_eq!(report.chains[0].head, head);
    assert_eq!(head.seq, 5);
}

#[test]
fn two_handles_on_one_file_keep_one_chain() {
    // The app and the operator CLI each open the file; their appends interleave on one chain.
    let env = env();
    let cli = env.second_handle();
    for i in 0..10 {
        env.authority
            .guard(TENANT, guard_refund(100, &format!("refund:mp{i}")))
            .wait()
            .unwrap();
        let state = if i % 2 == 0 {
            KillState::Pause
        } else {
            KillState::Run
        };
        cli.set_kill_switch(KillScope::Tenant("globex".into()), state, "cli")
            .wait()
            .unwrap();
    }
    assert_eq!(env.authority.verify_ledger().unwrap().records, 20);
    assert_eq!(cli.verify_ledger().unwrap().records, 20);
}

#[test]
fn state_survives_reopening_the_file() {
    let env = sqlite_env();
    let id = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:persist"))
        .wait()
        .unwrap()
        .approval_id
        .unwrap();
    let path = env.db_path();
    drop(env.authority);
    let reopened = Authority::builder(&path)
        .clock(env.clock.clone())
        .open()
        .unwrap();
    assert_eq!(
        reopened.approval(TENANT, &id).unwrap().status,
        haltstate_authority::ApprovalStatus::Pending
    );
    reopened.approve(TENANT, &id, "alice", None).wait().unwrap();
    assert_eq!(reopened.verify_ledger().unwrap().records, 2);
}

fn page_size(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .unwrap()
}

/// A new file has 2 KiB pages (a commit writes each page it changed whole); a file SQLite made with its default
/// 4 KiB keeps them, and its ledger grows, reopens and verifies as before.
#[test]
fn a_new_file_has_2_kib_pages_and_a_4_kib_file_keeps_its_own() {
    let env = sqlite_env();
    env.authority
        .guard(TENANT, guard_refund(100, "refund:new"))
        .wait()
        .unwrap();
    assert_eq!(page_size(&env.db_path()), 2048);

    let older = env.dir.path().join("older.db");
    Connection::open(&older)
        .unwrap()
        .execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;")
        .unwrap();
    assert_eq!(page_size(&older), 4096, "the file is made with 4 KiB pages");
    let open = || {
        Authority::builder(&older)
            .clock(env.clock.clone())
            .policy_file(common::sample_policy_path())
            .open()
            .unwrap()
    };
    let authority = open();
    for i in 0..200 {
        completed(&authority, &format!("refund:old:{i}"));
    }
    drop(authority);
    let reopened = open();
    assert_eq!(reopened.verify_ledger().unwrap().records, 400);
    assert_eq!(page_size(&older), 4096);
}

/// Schema 19 drops the ledger's generated `action` and `agent_id` columns (computed on every insert); a file
/// that had them loses them, and queries filter on the records' action and agent as before.
#[test]
fn a_file_with_the_generated_ledger_columns_loses_them_and_filters_as_before() {
    let env = sqlite_env();
    let mut export = guard_refund(100, "export:1");
    export.action.action = "data.export".into();
    export.action.agent_id = "exporter".into();
    env.authority.guard(TENANT, export).wait().unwrap();
    env.authority
        .guard(TENANT, guard_refund(100, "refund:1"))
        .wait()
        .unwrap();
    let path = env.db_path();
    drop(env.authority);
    let columns = |conn: &Connection| -> Vec<String> {
        conn.prepare("SELECT name FROM pragma_table_xinfo('ledger')")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "ALTER TABLE ledger ADD COLUMN action TEXT \
                 GENERATED ALWAYS AS (json_extract(body, '$.action')) VIRTUAL;
             ALTER TABLE ledger ADD COLUMN agent_id TEXT \
                 GENERATED ALWAYS AS (json_extract(body, '$.agent_id')) VIRTUAL;
             PRAGMA user_version = 18;",
        )
        .unwrap();
        assert!(columns(&conn).contains(&"action".to_owned()));
    }
    let reopened = Authority::builder(&path)
        .clock(env.clock.clone())
        .policy_file(common::sample_policy_path())
        .open()
        .unwrap();
    let left = columns(&Connection::open(&path).unwrap());
    assert!(
        !left.iter().any(|c| c == "action" || c == "agent_id"),
        "{left:?}"
    );
    reopened
        .guard(TENANT, guard_refund(100, "refund:2"))
        .wait()
        .unwrap();
    let keys = |query: EvidenceQuery| -> Vec<String> {
        reopened
            .evidence(TENANT, &query)
            .unwrap()
            .into_iter()
            .filter_map(|r| r.idempotency_key)
            .collect()
    };
    assert_eq!(
        keys(EvidenceQuery {
            action: Some("data.export".into()),
            ..Default::default()
        }),
        ["export:1"]
    );
    assert_eq!(
        keys(EvidenceQuery {
            agent_id: Some("billing-agent".into()),
            ..Default::default()
        }),
        ["refund:1", "refund:2"]
    );
    assert_eq!(reopened.verify_ledger().unwrap().records, 3);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let error = Authority::builder(&path).open().unwrap_err();
    assert!(
        matches!(error, AuthorityError::SchemaTooNew { found: 999, .. }),
        "{error}"
    );
}

#[derive(Debug, Clone)]
enum Tamper {
    Edit {
        index: usize,
        byte: usize,
    },
    Rewrite {
        index: usize,
    },
    Delete {
        index: usize,
    },
    Swap {
        a: usize,
        b: usize,
    },
    Insert {
        index: usize,
        recompute_hash: bool,
    },
    /// Moves a record to another tenant or key in the indexed columns only, leaving the hashed body alone.
    Reindex {
        index: usize,
        column: usize,
    },
}

/// Builds a ledger of `n` records through the authority (not by hand), closes it, and returns its file.
fn ledger_of(n: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let env = sqlite_env();
    for i in 0..n {
        if i % 3 == 2 {
            let state = if i % 2 == 0 {
                KillState::Pause
            } else {
                KillState::Run
            };
            env.authority
                .set_kill_switch(KillScope::Tenant(TENANT.into()), state, "ops")
                .wait()
                .unwrap();
        } else {
            env.authority
                .guard(
                    TENANT,
                    guard_refund(100 + i as i64, &format!("refund:t{i}")),
                )
                .wait()
                .unwrap();
        }
    }
    let path = env.db_path();
    drop(env.authority);
    (env.dir, path)
}

/// Applies the tampering and answers the sequence number verify must name.
fn tamper(conn: &Connection, n: usize, how: &Tamper) -> u64 {
    let row = |seq: usize| -> (String, String, Vec<u8>) {
        conn.query_row(
            "SELECT prev_hash, hash, body FROM ledger WHERE seq = ?1",
            [seq as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    match *how {
        Tamper::Edit { index, byte } => {
            // A forger keeps the body valid JSON (queries parse it): here, backdating one digit of the
            // timestamp.
            let seq = index % n + 1;
            let (_, _, mut body) = row(seq);
            let start = body.windows(6).position(|w| w == b"\"at\":\"").unwrap() + 6;
            let digits: Vec<usize> = (start..start + 26)
                .filter(|&i| body[i].is_ascii_digit())
                .collect();
            let at = digits[byte % digits.len()];
            body[at] = if body[at] == b'1' { b'2' } else { b'1' };
            conn.execute(
                "UPDATE ledger SET body = ?1 WHERE seq = ?2",
                params![body, seq as i64],
            )
            .unwrap();
            seq as u64
        }
        Tamper::Rewrite { index } => {
            let seq = index % n + 1;
            let (_, _, body) = row(seq);
            let mut value: serde_json::Value = serde_json::from_slice(&body).unwrap();
            value["reason"] = serde_json::json!("nothing to see here");
            let forged = haltstate_authority::canonical::to_canonical_bytes(&value).unwrap();
            conn.execute(
                "UPDATE ledger SET body = ?1 WHERE seq = ?2",
                params![forged, seq as i64],
            )
            .unwrap();
            seq as u64
        }
        Tamper::Delete { index } => {
            let seq = index % n + 1;
            conn.execute("DELETE FROM ledger WHERE seq = ?1", [seq as i64])
                .unwrap();
            seq as u64
        }
        Tamper::Swap { a, b } => {
            let (a, b) = (a % n + 1, b % n + 1);
            let (low, high) = (a.min(b), a.max(b).max(a.min(b) + 1).min(n));
            if low == high {
                // One-record ledger: reorder against a forged twin is the same as an edit.
                conn.execute(
                    "UPDATE ledger SET prev_hash = hash WHERE seq = ?1",
                    [low as i64],
                )
                .unwrap();
                return low as u64;
            }
            let (lo_row, hi_row) = (row(low), row(high));
            let put = |seq: usize, r: &(String, String, Vec<u8>)| {
                conn.execute(
                    "UPDATE ledger SET prev_hash = ?1, hash = ?2, body = ?3 WHERE seq = ?4",
                    params![r.0, r.1, r.2, seq as i64],
                )
                .unwrap();
            };
            put(low, &hi_row);
            put(high, &lo_row);
            low as u64
        }
        Tamper::Insert {
            index,
            recompute_hash,
        } => {
            let seq = index % n + 1;
            conn.execute(
                "UPDATE ledger SET seq = seq + 1000000 WHERE seq >= ?1",
                [seq as i64],
            )
            .unwrap();
            conn.execute(
                "UPDATE ledger SET seq = seq - 1000000 + 1 WHERE seq >= 1000000",
                [],
            )
            .unwrap();
            let prev = if seq == 1 {
                GENESIS_HASH.to_owned()
            } else {
                row(seq - 1).1
            };
            let body = format!(
                r#"{{"at":"2026-01-05T10:00:00.000000Z","kind":"guard","seq":{seq},"status":"allowed","tenant":"{TENANT}"}}"#
            )
            .into_bytes();
            let hash = if recompute_hash {
                record_hash(&prev, &body)
            } else {
                "f".repeat(64)
            };
            conn.execute(
                "INSERT INTO ledger (seq, prev_hash, hash, body, tenant, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, '2026-01-05T10:00:00.000000Z')",
                params![seq as i64, prev, hash, body, TENANT],
            )
            .unwrap();
            // A forger who recomputes the hash is caught where the next record no longer links to it.
            if recompute_hash {
                seq as u64 + 1
            } else {
                seq as u64
            }
        }
        Tamper::Reindex { index, column } => {
            let seq = index % n + 1;
            let sql = [
                "UPDATE ledger SET tenant = 'globex' WHERE seq = ?1",
                "UPDATE ledger SET at = '2020-01-01T00:00:00.000000Z' WHERE seq = ?1",
                "UPDATE ledger SET idempotency_key = 'elsewhere' WHERE seq = ?1",
            ][column];
            assert_eq!(conn.execute(sql, [seq as i64]).unwrap(), 1);
            seq as u64
        }
    }
}

fn tamper_strategy() -> impl Strategy<Value = Tamper> {
    let reindex =
        (any::<usize>(), 0usize..3).prop_map(|(index, column)| Tamper::Reindex { index, column });
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(index, byte)| Tamper::Edit { index, byte }),
        any::<usize>().prop_map(|index| Tamper::Rewrite { index }),
        any::<usize>().prop_map(|index| Tamper::Delete { index }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Tamper::Swap { a, b }),
        (any::<usize>(), any::<bool>()).prop_map(|(index, recompute_hash)| Tamper::Insert {
            index,
            recompute_hash
        }),
        reindex,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_edit_deletion_insertion_or_reordering_is_found_by_verify(n in 2usize..12, how in tamper_strategy()) {
        let (_dir, path) = ledger_of(n);
        let expected = {
            let conn = Connection::open(&path).unwrap();
            tamper(&conn, n, &how)
        };
        let authority = Authority::builder(&path).open().unwrap();
        match authority.verify_ledger() {
            Err(AuthorityError::LedgerBroken { seq, problem, .. }) => {
                prop_assert_eq!(seq, expected, "{:?}: {}", how, problem);
            }
            other => prop_assert!(false, "{:?} went unnoticed: {:?}", how, other),
        }
    }
}

/// Guards `request`, which policy allows, and answers its claim's token.
fn claimed(authority: &Authority, request: GuardRequest) -> String {
    authority
        .guard(TENANT, request)
        .wait()
        .unwrap()
        .claim
        .unwrap()
        .token
}

/// Guards `key` (a small refund, allowed) and reports it completed.
fn completed(authority: &Authority, key: &str) {
    let token = claimed(authority, guard_refund(100, key));
    authority
        .report(
            TENANT,
            OutcomeReport::new(key, Outcome::Success).claim_token(token),
        )
        .wait()
        .unwrap();
}

/// Every record of `key` in the tenant's ledger, oldest first.
fn evidence_of_key(authority: &Authority, key: &str) -> Vec<haltstate_authority::EvidenceRecord> {
    authority
        .evidence(
            TENANT,
            &EvidenceQuery {
                idempotency_key: Some(key.into()),
                ..Default::default()
            },
        )
        .unwrap()
}

fn unverified(id: &str) -> haltstate_authority::UnverifiedOutcome {
    haltstate_authority::UnverifiedOutcome {
        evidence_id: id.into(),
        agent_id: "billing-agent".into(),
        action: "refund.create".into(),
        idempotency_key: format!("refund:{id}"),
        outcome: Outcome::Success,
        reason: Some("fail-open: connection refused".into()),
        error: None,
        body_latency: Some(std::time::Duration::from_millis(3)),
        resource_refs: vec!["order:1".into()],
        redacted_fields: vec![],
        occurred_at: common::MONDAY_10AM,
    }
}

#[test]
fn unverified_evidence_is_recorded_once_per_evidence_id() {
    let env = env();
    let (seq, duplicate) = env
        .authority
        .record_unverified(TENANT, unverified("ev-1"))
        .wait()
        .unwrap();
    assert!(!duplicate);
    let (again, duplicate) = env
        .authority
        .record_unverified(TENANT, unverified("ev-1"))
        .wait()
        .unwrap();
    assert_eq!((again, duplicate), (seq, true));
    // Another tenant's evidence id space is its own.
    assert!(
        !env.authority
            .record_unverified("globex", unverified("ev-1"))
            .wait()
            .unwrap()
            .1
    );
    let records = env
        .authority
        .evidence(TENANT, &EvidenceQuery::default())
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].proof_status, Some(ProofStatus::Unverified));
    assert_eq!(records[0].evidence_id.as_deref(), Some("ev-1"));
    assert_eq!(records[0].occurred_at, Some(common::MONDAY_10AM));
    env.authority.verify_ledger().unwrap();
}

#[test]
fn a_version_1_database_is_migrated_in_place() {
    let env = sqlite_env();
    env.authority
        .guard(TENANT, guard_refund(100, "refund:old"))
        .wait()
        .unwrap();
    let path = env.db_path();
    drop(env.authority);
    common::downgrade_to_schema_5(&path);
    {
        let conn = Connection::open(&path).unwrap();
        // The shape version 1 had: no import table, every filter column generated from the body, and the two
        // indexes version 3 drops.
        conn.execute_batch(
            "DROP TABLE unverified_imports;
             DROP INDEX api_keys_live_name;
             ALTER TABLE api_keys DROP COLUMN agents;
             ALTER TABLE api_keys DROP COLUMN rate_limit;
             ALTER TABLE idempotency DROP COLUMN claimed_by;
             ALTER TABLE idempotency DROP COLUMN client_token;
             DROP TABLE check_requests;
             CREATE TABLE ledger_v1 (
                 seq INTEGER PRIMARY KEY, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, body BLOB NOT NULL,
                 tenant TEXT GENERATED ALWAYS AS (json_extract(body, '$.tenant')) VIRTUAL,
                 at TEXT GENERATED ALWAYS AS (json_extract(body, '$.at')) VIRTUAL,
                 action TEXT GENERATED ALWAYS AS (json_extract(body, '$.action')) VIRTUAL,
                 agent_id TEXT GENERATED ALWAYS AS (json_extract(body, '$.agent_id')) VIRTUAL,
                 idempotency_key TEXT GENERATED ALWAYS AS (json_extract(body, '$.idempotency_key')) VIRTUAL);
             INSERT INTO ledger_v1 (seq, prev_hash, hash, body) SELECT seq, prev_hash, hash, body FROM ledger;
             DROP TABLE ledger;
             ALTER TABLE ledger_v1 RENAME TO ledger;
             DROP INDEX IF EXISTS ledger_tenant_key;
             DROP INDEX IF EXISTS ledger_tenant_at;
             CREATE INDEX ledger_tenant_key ON ledger (tenant, idempotency_key);
             CREATE INDEX ledger_tenant_action ON ledger (tenant, action, seq);
             CREATE INDEX ledger_tenant_agent ON ledger (tenant, agent_id, seq);
             CREATE INDEX ledger_tenant_at ON ledger (tenant, at);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let reopened = Authority::builder(&path)
        .clock(env.clock.clone())
        .open()
        .unwrap();
    assert!(
        !reopened
            .record_unverified(TENANT, unverified("ev-2"))
            .wait()
            .unwrap()
            .1
    );
    assert_eq!(reopened.verify_ledger().unwrap().records, 2);
    // The record written before the migration is still found through the (now stored) key column.
    assert_eq!(evidence_of_key(&reopened, "refund:old").len(), 1);
    let version: i64 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 25, "migrated to the current schema");
}

/// Since schema 22 a query by key finds a key's records through the key's first record (`key_first`). A record
/// filed under another key's head, or under none, or a key given a second head, would hide records from their
/// key's evidence: `verify` names the record.
#[test]
fn a_record_filed_under_the_wrong_key_head_is_caught_by_verify() {
    let env = sqlite_env();
    for key in ["refund:a", "refund:b"] {
        completed(&env.authority, key);
    }
    // Records 1 and 2 are refund:a's guard and outcome, 3 and 4 refund:b's.
    assert_eq!(evidence_of_key(&env.authority, "refund:a").len(), 2);
    let path = env.db_path();
    let tampered = |sql: &str| {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(sql).unwrap();
        let result = env.authority.verify_ledger();
        // The tenant's own check (the console's, a window at a time) finds the same.
        let tenant_check = env.authority.verify_tenant_ledger(TENANT);
        assert_eq!(format!("{tenant_check:?}"), format!("{result:?}"), "{sql}");
        conn.execute_batch(
            "UPDATE ledger SET key_first = NULL;
             UPDATE ledger SET key_first = 1 WHERE seq IN (1, 2);
             UPDATE ledger SET key_first = 3 WHERE seq IN (3, 4);
             CREATE UNIQUE INDEX IF NOT EXISTS ledger_key_head ON ledger (tenant, idempotency_key)
                 WHERE key_first = seq;",
        )
        .unwrap();
        assert_eq!(env.authority.verify_ledger().unwrap().records, 4);
        result
    };
    for (sql, seq) in [
        // refund:a's outcome filed under refund:b: a query for refund:a would miss it.
        ("UPDATE ledger SET key_first = 3 WHERE seq = 2", 2),
        ("UPDATE ledger SET key_first = NULL WHERE seq = 4", 4),
        ("UPDATE ledger SET key_first = 99 WHERE seq = 4", 4),
        // refund:b's head moved to its outcome, the guard filed under it: both still one key, one head, but the
        // head is no longer the key's first record.
        (
            "UPDATE ledger SET key_first = NULL WHERE seq IN (3, 4);
             UPDATE ledger SET key_first = 4 WHERE seq IN (3, 4)",
            3,
        ),
        // A second head for refund:a (possible once the unique index is gone).
        (
            "DROP INDEX ledger_key_head; UPDATE ledger SET key_first = 2 WHERE seq = 2",
            2,
        ),
    ] {
        match tampered(sql) {
            Err(AuthorityError::LedgerBroken {
                seq: at, problem, ..
            }) => {
                assert_eq!(at, seq, "{sql}: {problem}");
                assert!(problem.contains("idempotency key"), "{sql}: {problem}");
            }
            other => panic!("{sql} went unnoticed: {other:?}"),
        }
    }
}

/// Schema 21 stores key rows in the order they were made (a table with row ids and a key index) instead of by key.
/// A schema-20 file keeps its rows through the copy: a completed key stays completed, a held claim can still be
/// reported, and a new key is claimed as before; schema 22 files its records under their keys' first records.
#[test]
fn key_rows_of_a_schema_20_file_survive_the_move_to_rows_in_order() {
    let env = sqlite_env();
    completed(&env.authority, "refund:done");
    let held = claimed(&env.authority, guard_refund(100, "refund:held"));
    let path = env.db_path();
    drop(env.authority);
    {
        let conn = Connection::open(&path).unwrap();
        // Schema 20's table: the same columns, ordered by key.
        conn.execute_batch(
            "CREATE TABLE idempotency_20 (
                 tenant TEXT NOT NULL, agent_id TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,
                 action TEXT NOT NULL, state TEXT NOT NULL, approval_id TEXT, policy_id TEXT,
                 reason TEXT NOT NULL DEFAULT '', claim_token TEXT, lease_until_us INTEGER, outcome_seq INTEGER,
                 created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL, claimed_by TEXT,
                 client_token INTEGER NOT NULL DEFAULT 0, usage_us INTEGER, usage TEXT,
                 attempts INTEGER NOT NULL DEFAULT 0, retry_digest TEXT,
                 lifetime TEXT NOT NULL DEFAULT 'once' CHECK (lifetime IN ('once', 'operation')),
                 generation INTEGER NOT NULL DEFAULT 1 CHECK (generation >= 1),
                 PRIMARY KEY (tenant, key, agent_id)) WITHOUT ROWID;
             INSERT INTO idempotency_20 SELECT tenant, agent_id, key, fingerprint, action, state, approval_id,
                 policy_id, reason, claim_token, lease_until_us, outcome_seq, created_us, updated_us, claimed_by,
                 client_token, usage_us, usage, attempts, retry_digest, lifetime, generation FROM idempotency;
             DROP TABLE idempotency;
             ALTER TABLE idempotency_20 RENAME TO idempotency;
             PRAGMA user_version = 20;",
        )
        .unwrap();
    }
    let reopened = Authority::builder(&path)
        .clock(env.clock.clone())
        .policy_file(common::sample_policy_path())
        .open()
        .unwrap();
    let again = reopened
        .guard(TENANT, guard_refund(100, "refund:done"))
        .wait()
        .unwrap();
    assert_eq!(again.status, GuardStatus::Completed);
    let ack = reopened
        .report(
            TENANT,
            OutcomeReport::new("refund:held", Outcome::Success).claim_token(held),
        )
        .wait()
        .unwrap();
    assert!(!ack.duplicate);
    let fresh = reopened
        .guard(TENANT, guard_refund(100, "refund:new"))
        .wait()
        .unwrap();
    assert_eq!(fresh.status, GuardStatus::Allowed);
    let conn = Connection::open(&path).unwrap();
    let (rows, without_rowid): (i64, bool) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM idempotency), \
                    (SELECT wr FROM pragma_table_list WHERE name = 'idempotency')",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, without_rowid), (3, false));
    assert_eq!(reopened.verify_ledger().unwrap().records, 6);
    // Schema 22 filed the records already there under their keys' first records: each key's evidence is whole.
    assert_eq!(evidence_of_key(&reopened, "refund:done").len(), 3);
    assert_eq!(evidence_of_key(&reopened, "refund:held").len(), 2);
}

/// Schema 23 files key rows under their key's first ledger record. A schema-22 file's rows, two agents' under one
/// key among them, are filed so and found as before. A row whose key has no record (the authority records a guard
/// before it stores the key's row, so it was written outside it) is refused, and the file left as it was: no query
/// could find that row, so its key would run again.
#[test]
fn key_rows_of_a_schema_22_file_are_filed_under_their_keys_first_records() {
    let env = sqlite_env();
    completed(&env.authority, "refund:shared");
    let mut other = guard_refund(100, "refund:shared");
    other.action.agent_id = "bot-2".into();
    let held = claimed(&env.authority, other.clone());
    let path = env.db_path();
    drop(env.authority);
    let conn = Connection::open(&path).unwrap();
    // Schema 22's key rows: no `key_head`, found through their own key index; and one row no record backs.
    conn.execute_batch(
        "DROP INDEX idempotency_head;
         ALTER TABLE idempotency DROP COLUMN key_head;
         CREATE UNIQUE INDEX idempotency_key ON idempotency (tenant, key, agent_id);
         PRAGMA user_version = 22;",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO idempotency (tenant, key, fingerprint, agent_id, action, state, created_us, updated_us) \
         VALUES (?1, 'refund:ghost', 'f', 'bot', 'refund.create', 'completed', 0, 0)",
        [TENANT],
    )
    .unwrap();
    let open = || {
        Authority::builder(&path)
            .clock(env.clock.clone())
            .policy_file(common::sample_policy_path())
            .open()
    };
    match open() {
        Err(AuthorityError::Corrupt(why)) => assert!(why.contains("refund:ghost"), "{why}"),
        other => panic!(
            "a row no record backs was migrated: {:?}",
            other.map(|_| ())
        ),
    }
    let version = || -> i64 {
        conn.query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap()
    };
    assert_eq!(version(), 22, "the refused file is left as it was");
    conn.execute("DELETE FROM idempotency WHERE key = 'refund:ghost'", [])
        .unwrap();
    let reopened = open().unwrap();
    assert_eq!(version(), 25);
    let again = reopened
        .guard(TENANT, guard_refund(100, "refund:shared"))
        .wait()
        .unwrap();
    assert_eq!(again.status, GuardStatus::Completed);
    let ack = reopened
        .report(
            TENANT,
            OutcomeReport::new("refund:shared", Outcome::Success)
                .agent("bot-2")
                .claim_token(held),
        )
        .wait()
        .unwrap();
    assert!(!ack.duplicate);
    assert_eq!(
        reopened.guard(TENANT, other).wait().unwrap().status,
        GuardStatus::Completed
    );
    let fresh = reopened
        .guard(TENANT, guard_refund(100, "refund:new"))
        .wait()
        .unwrap();
    assert_eq!(fresh.status, GuardStatus::Allowed);
    assert_eq!(reopened.verify_state(&Default::default()).unwrap(), 3);
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM pragma_index_list('idempotency') ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(indexes, ["idempotency_head"]);
}

#[test]
fn checkpoint_pages_decides_when_the_wal_is_copied_into_the_database() {
    let db_size_after_100_guards = |pages: Option<u32>| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hs.db");
        let mut builder = Authority::builder(&path).policy_file(common::sample_policy_path());
        if let Some(pages) = pages {
            builder = builder.checkpoint_pages(pages);
        }
        let authority = builder.open().unwrap();
        for i in 0..100 {
            let key = format!("refund:ckpt{i}");
            authority
                .guard(TENANT, guard_refund(100, &key))
                .wait()
                .unwrap();
        }
        let size = std::fs::metadata(&path).unwrap().len();
        drop(authority);
        size
    };
    // With the default, 100 guards stay in the WAL; with a 4-page limit they are copied as they commit.
    let default = db_size_after_100_guards(None);
    let eager = db_size_after_100_guards(Some(4));
    assert!(
        eager > default,
        "eager {eager} bytes, default {default} bytes"
    );
}

#[test]
fn a_head_with_a_negative_sequence_number_is_a_broken_ledger_not_a_storage_error() {
    let (_dir, path) = ledger_of(3);
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE ledger_heads SET seq = -5", [])
        .unwrap();
    match Authority::verify_ledger_file(&path) {
        Err(AuthorityError::LedgerBroken { problem, .. }) => {
            assert!(problem.contains("-5"), "{problem}");
        }
        other => panic!("a tampered head went unnoticed: {other:?}"),
    }
}

#[test]
fn a_schema_5_ledger_is_rechained_per_tenant_in_place() {
    let env = sqlite_env();
    let path = env.db_path();
    // Interleaved tenants, a completed key and a fail-open delivery: rows that point into the chain.
    for i in 0..4 {
        for tenant in [TENANT, "globex"] {
            let key = format!("refund:m{i}");
            env.authority
                .guard(tenant, guard_refund(100, &key))
                .wait()
                .unwrap();
            env.authority
                .report(
                    tenant,
                    haltstate_authority::OutcomeReport::new(
                        &key,
                        haltstate_authority::Outcome::Success,
                    ),
                )
                .wait()
                .unwrap();
        }
    }
    let (delivered, _) = env
        .authority
        .record_unverified("globex", unverified("ev-m"))
        .wait()
        .unwrap();
    drop(env.authority);
    common::downgrade_to_schema_5(&path);

    let authority = Authority::builder(&path).open().unwrap();
    let report = authority.verify_ledger().unwrap();
    assert_eq!(report.records, 17);
    let chains: Vec<(&str, u64)> = report
        .chains
        .iter()
        .map(|c| (c.tenant.as_str(), c.head.seq))
        .collect();
    assert_eq!(chains, [(TENANT, 8), ("globex", 9)]);
    // The completed keys still point at their outcome records: a repeat is refused as completed.
    let again = authority
        .guard("globex", guard_refund(100, "refund:m3"))
        .wait()
        .unwrap();
    assert_eq!(again.status, haltstate_authority::GuardStatus::Completed);
    // The fail-open delivery still points at its record, now numbered in globex's chain.
    let (repeat, was_repeat) = authority
        .record_unverified("globex", unverified("ev-m"))
        .wait()
        .unwrap();
    assert!(was_repeat);
    assert_eq!(repeat, 9);
    assert_ne!(repeat, delivered + 100, "sanity");
    let globex = authority
        .evidence("globex", &EvidenceQuery::default())
        .unwrap();
    assert_eq!(
        globex.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
}

#[test]
fn a_tampered_schema_5_ledger_is_not_migrated() {
    let env = sqlite_env();
    let path = env.db_path();
    for i in 0..3 {
        env.authority
            .guard(TENANT, guard_refund(100, &format!("refund:x{i}")))
            .wait()
            .unwrap();
    }
    drop(env.authority);
    common::downgrade_to_schema_5(&path);
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE ledger SET hash = upper(hash) WHERE seq = 2", [])
        .unwrap();
    match Authority::builder(&path).open() {
        Err(AuthorityError::Corrupt(why)) => assert!(why.contains("record 2"), "{why}"),
        other => panic!("a tampered ledger was migrated: {other:?}"),
    }
    // Left as it was: still schema 5.
    let version: i64 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 5);
}

/// A forger with write access to the database, who recomputes every hash and the head after a change: the chain
/// verifies, but no longer agrees with the signed checkpoints kept outside the database.
mod signed {
    use super::*;
    use haltstate_authority::SigningKey;
    use haltstate_authority::proof::SignedCheckpoint;

    /// `n` records, each followed by a signed checkpoint (so the first record that disagrees is named exactly).
    fn checkpointed_ledger(
        n: usize,
        key: &SigningKey,
    ) -> (tempfile::TempDir, std::path::PathBuf, Vec<SignedCheckpoint>) {
        let env = sqlite_env();
        let mut checkpoints = Vec::new();
        for i in 0..n {
            let answer = env
                .authority
                .guard(
                    TENANT,
                    guard_refund(100 + i as i64, &format!("refund:s{i}")),
                )
                .wait()
                .unwrap();
            if i % 2 == 0 {
                // Every other refund completes: the ledger then fixes its row's state.
                env.authority
                    .report(
                        TENANT,
                        OutcomeReport::new(format!("refund:s{i}"), Outcome::Success)
                            .claim_token(answer.claim.unwrap().token),
                    )
                    .wait()
                    .unwrap();
            }
            checkpoints.extend(env.authority.checkpoint(key).unwrap());
        }
        assert_eq!(checkpoints.len(), n);
        assert!(
            env.authority.checkpoint(key).unwrap().is_empty(),
            "an unmoved head is not signed again"
        );
        let path = env.db_path();
        drop(env.authority);
        (env.dir, path, checkpoints)
    }

    #[derive(Debug, Clone)]
    enum Forgery {
        /// A completed key's row set back to `failed` (its side effect could run again).
        RowSetBack {
            index: usize,
        },
        /// A key's row deleted.
        RowDeleted {
            index: usize,
        },
        Edit {
            index: usize,
        },
        Delete {
            index: usize,
        },
        Insert {
            index: usize,
        },
        Swap {
            a: usize,
            b: usize,
        },
        Truncate {
            keep: usize,
        },
    }

    fn rows(conn: &Connection) -> Vec<(i64, Vec<u8>)> {
        let mut statement = conn
            .prepare("SELECT seq, body FROM ledger WHERE tenant = ?1 ORDER BY seq")
            .unwrap();
        statement
            .query_map([TENANT], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Rewrites the tenant's chain as `bodies` (renumbered from 1, every hash recomputed, the head moved).
    fn rewrite(conn: &Connection, bodies: Vec<Vec<u8>>) {
        conn.execute("DELETE FROM ledger WHERE tenant = ?1", [TENANT])
            .unwrap();
        let mut prev = GENESIS_HASH.to_owned();
        // A perfect forger also files each record under its key's first record (schema 22).
        let mut heads = std::collections::HashMap::new();
        for (index, body) in bodies.iter().enumerate() {
            let seq = index as i64 + 1;
            let mut value: serde_json::Value = serde_json::from_slice(body).unwrap();
            value["seq"] = serde_json::json!(seq);
            let body = haltstate_authority::canonical::to_canonical_bytes(&value).unwrap();
            let hash = record_hash(&prev, &body);
            let at = value["at"].as_str().unwrap().to_owned();
            let key = value["idempotency_key"].as_str();
            let key_first = key.map(|key| *heads.entry(key.to_owned()).or_insert(seq));
            conn.execute(
                "INSERT INTO ledger (tenant, seq, prev_hash, hash, body, at, idempotency_key, key_first) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![TENANT, seq, prev, hash, body, at, key, key_first],
            )
            .unwrap();
            prev = hash;
        }
        conn.execute(
            "UPDATE ledger_heads SET seq = ?2, hash = ?3 WHERE tenant = ?1",
            params![TENANT, bodies.len() as i64, prev],
        )
        .unwrap();
    }

    /// Applies the forgery; answers the first record that no longer agrees with its checkpoint (0 for a state
    /// row: the chain and the checkpoints still agree, the state check must catch it).
    fn forge(conn: &Connection, n: usize, how: &Forgery) -> u64 {
        let mut bodies: Vec<Vec<u8>> = rows(conn).into_iter().map(|(_, b)| b).collect();
        let first = match *how {
            Forgery::RowSetBack { index } => {
                let key = format!("refund:s{}", (index % n) / 2 * 2);
                conn.execute(
                    "UPDATE idempotency SET state = 'failed' WHERE tenant = ?1 AND key = ?2",
                    params![TENANT, key],
                )
                .unwrap();
                return 0;
            }
            Forgery::RowDeleted { index } => {
                conn.execute(
                    "DELETE FROM idempotency WHERE tenant = ?1 AND key = ?2",
                    params![TENANT, format!("refund:s{}", index % n)],
                )
                .unwrap();
                return 0;
            }
            Forgery::Edit { index } => {
                let at = index % n;
                let mut value: serde_json::Value = serde_json::from_slice(&bodies[at]).unwrap();
                value["status"] = serde_json::json!("denied");
                value["reason"] = serde_json::json!("nothing happened here");
                bodies[at] = serde_json::to_vec(&value).unwrap();
                at
            }
            Forgery::Delete { index } => {
                let at = index % n;
                bodies.remove(at);
                at
            }
            Forgery::Insert { index } => {
                let at = index % n;
                let mut value: serde_json::Value = serde_json::from_slice(&bodies[at]).unwrap();
                value["idempotency_key"] = serde_json::json!("refund:invented");
                bodies.insert(at, serde_json::to_vec(&value).unwrap());
                at
            }
            Forgery::Swap { a, b } => {
                let (a, b) = (a % n, b % n);
                // Two different places (n >= 2): the same index twice swaps with its neighbour.
                let (low, high) = match (a.min(b), a.max(b)) {
                    (low, high) if low != high => (low, high),
                    (0, _) => (0, 1),
                    (same, _) => (same - 1, same),
                };
                bodies.swap(low, high);
                low
            }
            Forgery::Truncate { keep } => {
                let keep = keep % n;
                bodies.truncate(keep);
                keep
            }
        };
        rewrite(conn, bodies);
        first as u64 + 1
    }

    fn forgery() -> impl Strategy<Value = Forgery> {
        prop_oneof![
            any::<usize>().prop_map(|index| Forgery::RowSetBack { index }),
            any::<usize>().prop_map(|index| Forgery::RowDeleted { index }),
            any::<usize>().prop_map(|index| Forgery::Edit { index }),
            any::<usize>().prop_map(|index| Forgery::Delete { index }),
            any::<usize>().prop_map(|index| Forgery::Insert { index }),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Forgery::Swap { a, b }),
            any::<usize>().prop_map(|keep| Forgery::Truncate { keep }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn a_forgery_with_every_hash_and_the_head_recomputed_is_caught_by_the_checkpoints(
            n in 2usize..8,
            how in forgery(),
        ) {
            let key = SigningKey::generate();
            let (_dir, path, checkpoints) = checkpointed_ledger(n, &key);
            let expected = forge(&Connection::open(&path).unwrap(), n, &how);
            let authority = Authority::builder(&path).open().unwrap();
            // The forgery is a perfect one: the chain alone verifies.
            prop_assert!(authority.verify_ledger().is_ok(), "{:?}", how);
            if expected == 0 {
                // A state row: the chain and its checkpoints are untouched; the rows no longer agree with them.
                prop_assert!(authority.verify_checkpoints(&checkpoints, &key.public()).is_ok());
                prop_assert!(
                    matches!(authority.verify_state(&Default::default()), Err(AuthorityError::StateMismatch { .. })),
                    "{:?} went unnoticed: {:?}", how, authority.verify_state(&Default::default())
                );
                return Ok(());
            }
            // The first checkpoint at or after the first changed record is the first that disagrees.
            let named = checkpoints
                .iter()
                .map(|c| c.checkpoint.seq)
                .filter(|&seq| seq >= expected)
                .min()
                .unwrap();
            match authority.verify_checkpoints(&checkpoints, &key.public()) {
                Err(AuthorityError::CheckpointMismatch { seq, problem, .. }) => {
                    prop_assert_eq!(seq, named, "{:?}: {}", how, problem);
                }
                other => prop_assert!(false, "{:?} went unnoticed: {:?}", how, other),
            }
        }
    }

    #[test]
    fn checkpoints_of_an_untouched_chain_verify_and_another_key_is_refused() {
        let key = SigningKey::generate();
        let (_dir, path, checkpoints) = checkpointed_ledger(3, &key);
        let authority = Authority::builder(&path).open().unwrap();
        assert_eq!(
            authority
                .verify_checkpoints(&checkpoints, &key.public())
                .unwrap(),
            3
        );
        let other = SigningKey::generate();
        let refused = authority
            .verify_checkpoints(&checkpoints, &other.public())
            .unwrap_err();
        assert!(refused.to_string().contains("does not verify"), "{refused}");
        // A checkpoint whose hash was changed after signing is refused for its signature.
        let mut forged = checkpoints.clone();
        forged[1].checkpoint.hash = "0".repeat(64);
        let signed_seq = forged[1].checkpoint.seq;
        match authority.verify_checkpoints(&forged, &key.public()) {
            Err(AuthorityError::CheckpointMismatch { seq, .. }) => assert_eq!(seq, signed_seq),
            other => panic!("a forged checkpoint was accepted: {other:?}"),
        }
    }
}

/// Proof packs: the records of a key, the chain to a signed checkpoint and the checkpoint, verified with the public
/// key alone.
mod packs {
    use super::*;
    use haltstate_authority::proof::{ProofError, ProofPack, TreeCheckpointError, verify};
    use haltstate_authority::{ProofSelection, SigningKey};

    fn pack_of_key(authority: &Authority, key: &str) -> ProofPack {
        authority
            .proof_pack(
                TENANT,
                &ProofSelection {
                    key: Some(key.into()),
                    ..ProofSelection::default()
                },
            )
            .unwrap()
    }

    /// A refund's guard, a large one's approval, and records of other keys between them.
    fn history(authority: &Authority) {
        let guard = |cents: i64, key: &str| {
            authority
                .guard(TENANT, guard_refund(cents, key))
                .wait()
                .unwrap()
        };
        let first = guard(500, "refund:p1");
        guard(700, "refund:other");
        authority
            .report(
                TENANT,
                OutcomeReport::new("refund:p1", Outcome::Success)
                    .claim_token(first.claim.unwrap().token),
            )
            .wait()
            .unwrap();
        let id = guard(90_000, "refund:p2").approval_id.unwrap();
        authority
            .approve(TENANT, &id, "alice", None)
            .wait()
            .unwrap();
        guard(90_000, "refund:p2");
    }

    #[test]
    fn a_keys_pack_verifies_offline_after_its_server_is_gone() {
        let key = SigningKey::generate();
        let public = key.public();
        let pack_text = {
            let env = common::env();
            history(&env.authority);
            // Untouched state agrees with the ledger (on either backend).
            assert_eq!(env.authority.verify_state(&Default::default()).unwrap(), 4);
            // Before a checkpoint covers the records, there is no pack to make.
            assert!(matches!(
                env.authority.proof_pack(
                    TENANT,
                    &ProofSelection {
                        key: Some("refund:p2".into()),
                        ..ProofSelection::default()
                    }
                ),
                Err(AuthorityError::NotCheckpointed { .. })
            ));
            env.authority.checkpoint(&key).unwrap();
            serde_json::to_string(&pack_of_key(&env.authority, "refund:p2")).unwrap()
            // The authority and its database go away here.
        };
        let pack: ProofPack = serde_json::from_str(&pack_text).unwrap();
        let summary = verify(&pack, &public).unwrap();
        assert_eq!(summary.records, 3, "guard, approval, approved guard");
        let kinds: Vec<&str> = pack
            .records
            .iter()
            .map(|r| r.record.kind.as_str())
            .collect();
        assert_eq!(kinds, ["guard", "approval", "guard"]);
        let approval = &pack.records[1].record;
        assert_eq!(approval.approval_state.as_deref(), Some("approved"));
        assert_eq!(approval.approver.as_deref(), Some("alice"));
        assert_eq!(
            pack.records[0].record.decision.as_deref(),
            Some("APPROVAL_REQUIRED")
        );
        assert_eq!(pack.records[0].record.signature_status, "signed");
        assert!(
            pack.records
                .iter()
                .all(|r| r.record.proof_id.starts_with("prf_"))
        );
        // Nothing of the other keys' records between them.
        assert!(!pack_text.contains("refund:p1") && !pack_text.contains("refund:other"));
    }

    /// The first pack format (the whole chain between the records and a checkpoint) is still written on request
    /// and still verified; it carries the records between, which the tree pack does not.
    #[test]
    fn a_chain_pack_still_verifies_and_carries_what_lies_between() {
        use haltstate_authority::proof::{CHAIN_PACK_FORMAT, ChainPack, verify_chain_pack};
        let key = SigningKey::generate();
        let env = common::env();
        history(&env.authority);
        env.authority.checkpoint(&key).unwrap();
        let selection = ProofSelection {
            key: Some("refund:p1".into()),
            ..ProofSelection::default()
        };
        let pack = env.authority.chain_proof_pack(TENANT, &selection).unwrap();
        assert_eq!(pack.format, CHAIN_PACK_FORMAT);
        let text = serde_json::to_string(&pack).unwrap();
        assert!(text.contains("refund:other"));
        let read: ChainPack = serde_json::from_str(&text).unwrap();
        assert_eq!(verify_chain_pack(&read, &key.public()).unwrap().records, 2);
        let edited: ChainPack =
            serde_json::from_str(&text.replacen("\"allowed\"", "\"denied\"", 1)).unwrap();
        assert!(verify_chain_pack(&edited, &key.public()).is_err());
        let tree = pack_of_key(&env.authority, "refund:p1");
        assert!(
            !serde_json::to_string(&tree)
                .unwrap()
                .contains("refund:other")
        );
    }

    #[test]
    fn a_pack_edited_in_any_field_fails_to_verify() {
        let key = SigningKey::generate();
        let env = common::env();
        history(&env.authority);
        env.authority.checkpoint(&key).unwrap();
        let pack = pack_of_key(&env.authority, "refund:p1");
        assert!(verify(&pack, &key.public()).is_ok());
        let original = serde_json::to_value(&pack).unwrap();
        // Every leaf of the document, changed in turn.
        let mut paths = Vec::new();
        leaves(&original, String::new(), &mut paths);
        assert!(paths.len() > 40, "{}", paths.len());
        for path in paths {
            let mut edited = original.clone();
            let leaf = edited.pointer_mut(&path).unwrap();
            *leaf = match &*leaf {
                // A digit changed keeps dates and hashes well-formed (a forger's edit); otherwise a letter added.
                serde_json::Value::String(s) => serde_json::Value::String(
                    match s.char_indices().find(|(_, c)| c.is_ascii_digit()) {
                        Some((i, c)) => {
                            let mut changed = s.clone();
                            changed.replace_range(i..=i, if c == '1' { "2" } else { "1" });
                            changed
                        }
                        None => format!("{s}x"),
                    },
                ),
                serde_json::Value::Number(n) => serde_json::json!(n.as_u64().unwrap_or(0) + 1),
                serde_json::Value::Null => serde_json::json!("forged"),
                serde_json::Value::Bool(b) => serde_json::json!(!*b),
                other => other.clone(),
            };
            let verdict = serde_json::from_value::<ProofPack>(edited)
                .map_err(|e| ProofError::Format(e.to_string()))
                .and_then(|p| verify(&p, &key.public()));
            assert!(verdict.is_err(), "an edit of {path} went unnoticed");
        }
    }

    fn leaves(value: &serde_json::Value, at: String, into: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(fields) => {
                for (name, v) in fields {
                    leaves(v, format!("{at}/{name}"), into);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    leaves(v, format!("{at}/{i}"), into);
                }
            }
            _ => into.push(at),
        }
    }

    #[test]
    fn after_a_key_rotation_old_packs_verify_with_the_old_public_key() {
        let (old, new) = (SigningKey::generate(), SigningKey::generate());
        let env = common::env();
        history(&env.authority);
        env.authority.checkpoint(&old).unwrap();
        env.authority
            .guard(TENANT, guard_refund(300, "refund:later"))
            .wait()
            .unwrap();
        env.authority.checkpoint(&new).unwrap();
        let early = pack_of_key(&env.authority, "refund:p1");
        let later = pack_of_key(&env.authority, "refund:later");
        assert!(verify(&early, &old.public()).is_ok());
        assert!(matches!(
            verify(&early, &new.public()),
            Err(ProofError::TreeHead(TreeCheckpointError::Signature(_)))
        ));
        assert!(verify(&later, &new.public()).is_ok());
        assert!(verify(&later, &old.public()).is_err());
    }
}

/// State rows changed behind the authority's back: `verify_state` names them, and a guard never trusts a row the
/// ledger contradicts.
mod state {
    use super::*;

    /// A completed refund, an approved and a rejected approval, a killed agent; the file, closed.
    fn history() -> (tempfile::TempDir, std::path::PathBuf, String) {
        let env = sqlite_env();
        let a = &env.authority;
        let done = a
            .guard(TENANT, guard_refund(500, "refund:done"))
            .wait()
            .unwrap();
        a.report(
            TENANT,
            OutcomeReport::new("refund:done", Outcome::Success)
                .claim_token(done.claim.unwrap().token),
        )
        .wait()
        .unwrap();
        let approved = a
            .guard(TENANT, guard_refund(90_000, "refund:big"))
            .wait()
            .unwrap()
            .approval_id
            .unwrap();
        a.approve(TENANT, &approved, "alice", None).wait().unwrap();
        a.set_kill_switch(
            KillScope::Agent {
                tenant: TENANT.into(),
                agent_id: "exporter".into(),
            },
            KillState::Kill,
            "oncall",
        )
        .wait()
        .unwrap();
        assert_eq!(
            a.verify_state(&Default::default()).unwrap(),
            4,
            "two keys, an approval, a kill switch"
        );
        let path = env.db_path();
        drop(env.authority);
        (env.dir, path, approved)
    }

    fn mismatch_after(sql: &str) -> String {
        let (_dir, path, approved) = history();
        Connection::open(&path)
            .unwrap()
            .execute(&sql.replace("{approval}", &approved), [])
            .unwrap();
        let authority = Authority::builder(&path).open().unwrap();
        assert!(
            authority.verify_ledger().is_ok(),
            "the chain itself is untouched"
        );
        match authority.verify_state(&Default::default()) {
            Err(AuthorityError::StateMismatch { problem, .. }) => problem,
            other => panic!("{sql} went unnoticed: {other:?}"),
        }
    }

    #[test]
    fn every_state_row_the_ledger_contradicts_is_named() {
        let said =
            mismatch_after("UPDATE idempotency SET state = 'failed' WHERE key = 'refund:done'");
        assert!(
            said.contains("key \"refund:done\": record 2 completed it, but its row says failed"),
            "{said}"
        );
        let said = mismatch_after("DELETE FROM idempotency WHERE key = 'refund:big'");
        assert!(
            said.contains("key \"refund:big\": the ledger holds its guard but its row is missing"),
            "{said}"
        );
        // Since schema 23 a row is found through its key's first record: a row filed under another record is as
        // good as gone, and named so.
        let said = mismatch_after(
            "UPDATE idempotency SET key_head = key_head + 1 WHERE key = 'refund:big'",
        );
        assert!(
            said.contains("key \"refund:big\": the ledger holds its guard but its row is missing"),
            "{said}"
        );
        let said =
            mismatch_after("UPDATE approvals SET status = 'rejected' WHERE id = '{approval}'");
        assert!(
            said.contains("says approved, its row says rejected"),
            "{said}"
        );
        let said =
            mismatch_after("UPDATE kill_switch SET state = 'RUN' WHERE agent_id = 'exporter'");
        assert!(said.contains("kill switch of agent exporter"), "{said}");
    }

    /// [`history`] with its completed key's row set back to `failed` behind the authority's back.
    fn completed_key_set_back_to_failed() -> (tempfile::TempDir, std::path::PathBuf) {
        let (dir, path, _) = history();
        Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE idempotency SET state = 'failed' WHERE key = 'refund:done'",
                [],
            )
            .unwrap();
        (dir, path)
    }

    /// What `serve` checks before it listens: each tenant's newest records of the last day, so that its start
    /// takes a bounded time however many records the tenant's agents wrote.
    #[test]
    fn the_recent_state_check_reads_each_tenants_newest_records_only() {
        let (_dir, path) = completed_key_set_back_to_failed();
        let authority = Authority::builder(&path).open().unwrap();
        let head = authority.verify_ledger().unwrap().chains[0].head.seq;
        let day_before = common::MONDAY_10AM - time::Duration::days(1);
        // Record 2 completed the key: among the newest `head - 1` records, not among the newest `head - 2`.
        match authority.verify_recent_state(day_before, head - 1) {
            Err(AuthorityError::StateMismatch { problem, .. }) => {
                assert!(problem.contains("record 2 completed it"), "{problem}");
            }
            other => panic!("the tampered row went unnoticed: {other:?}"),
        }
        let checked = authority.verify_recent_state(day_before, head - 2).unwrap();
        assert_eq!(
            checked, 3,
            "the other key, the approval and the kill switch"
        );
        // Nothing newer than the records: nothing to check.
        let after = common::MONDAY_10AM + time::Duration::days(1);
        assert_eq!(authority.verify_recent_state(after, head).unwrap(), 0);
    }

    #[test]
    fn a_completed_key_set_back_to_failed_is_refused_not_run_again() {
        let (_dir, path) = completed_key_set_back_to_failed();
        // On the suite's clock: the sample policy freezes refunds at night, whatever the wall clock says.
        let authority = Authority::builder(&path)
            .policy_file(common::sample_policy_path())
            .clock(std::sync::Arc::new(haltstate_authority::ManualClock::at(
                common::MONDAY_10AM,
            )))
            .open()
            .unwrap();
        let answer = authority
            .guard(TENANT, guard_refund(500, "refund:done"))
            .wait()
            .unwrap();
        assert_eq!(answer.status, haltstate_authority::GuardStatus::Denied);
        assert!(answer.claim.is_none());
        assert!(
            answer.reason.contains("ledger record 2 completed this key"),
            "{}",
            answer.reason
        );
    }

    fn fail_open(key: &str, agent: &str, id: &str) -> haltstate_authority::UnverifiedOutcome {
        serde_json::from_value(serde_json::json!({
            "evidence_id": id, "agent_id": agent, "action": "refund.create", "idempotency_key": key,
            "outcome": "success", "occurred_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    /// Hostile (issue 21): fail-open evidence is what a caller says it did. Sent for another agent's live claim
    /// and for a key no guard ever saw, it must neither make the verified state look tampered with (which kept
    /// `serve` from starting) nor refuse the real holder's retry as a forgery.
    #[test]
    fn fail_open_evidence_cannot_make_verified_state_look_broken() {
        let env = env();
        let a = &env.authority;
        let victim = a
            .guard(TENANT, guard_refund(500, "refund:victim"))
            .wait()
            .unwrap();
        a.record_unverified(TENANT, fail_open("refund:victim", "mallory", "ev-1"))
            .wait()
            .unwrap();
        a.record_unverified(TENANT, fail_open("refund:never-guarded", "mallory", "ev-2"))
            .wait()
            .unwrap();
        assert_eq!(
            a.verify_state(&Default::default()).unwrap(),
            1,
            "only the guarded key is checked"
        );
        // The victim's body fails; its retry is a retry, not a tamper alarm.
        a.report(
            TENANT,
            OutcomeReport::new("refund:victim", Outcome::Error)
                .claim_token(victim.claim.unwrap().token),
        )
        .wait()
        .unwrap();
        let retry = a
            .guard(TENANT, guard_refund(500, "refund:victim"))
            .wait()
            .unwrap();
        assert!(retry.claim.is_some(), "{retry:?}");
        a.verify_state(&Default::default()).unwrap();
    }
}

/// Free text an agent sends (param values and names, a report's error, why evidence ran fail-open) may hold any
/// character, NUL included, which PostgreSQL's text columns refuse: it is stored as sent on both backends, and
/// never fails the transaction it shares with other operations.
#[test]
fn agent_text_with_a_nul_is_stored_as_sent() {
    let env = env();
    let mut request = guard_refund(100, "refund:nul");
    request
        .action
        .params
        .insert("note".into(), serde_json::json!("a\u{0}b"));
    request
        .action
        .params
        .insert("n\u{0}".into(), serde_json::json!(1));
    let answer = env.authority.guard(TENANT, request).wait().unwrap();
    assert_eq!(answer.status, GuardStatus::Allowed);
    let mut report = OutcomeReport::new("refund:nul", Outcome::Error);
    report.error = Some("boom\u{0}".into());
    env.authority.report(TENANT, report).wait().unwrap();
    let mut fail_open = unverified("ev-nul");
    fail_open.reason = Some("why\u{0}".into());
    fail_open.error = Some("err\u{0}".into());
    env.authority
        .record_unverified(TENANT, fail_open)
        .wait()
        .unwrap();

    let records = evidence_of_key(&env.authority, "refund:nul");
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[1].error.as_deref(), Some("boom\u{0}"));
    let records = evidence_of_key(&env.authority, "refund:ev-nul");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].error.as_deref(), Some("err\u{0}"));
    env.authority.verify_ledger().unwrap();
}

/// Finding records by time. A SQLite file since schema 25 has no index by time: its records' times are kept in
/// sequence order by the writer and a time range is found by bisecting the sequence numbers. A file written before
/// whose times go backwards somewhere keeps the index and is read through it.
mod times {
    use super::*;
    use std::time::Duration;
    use time::OffsetDateTime;

    fn has_time_index(path: &std::path::Path) -> bool {
        Connection::open(path)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'ledger_tenant_at'",
                [],
                |row| row.get::<_, i64>(0),
            )
            .unwrap()
            == 1
    }

    fn all(authority: &Authority, tenant: &str) -> Vec<haltstate_authority::EvidenceRecord> {
        let query = EvidenceQuery {
            limit: Some(1000),
            ..Default::default()
        };
        authority.evidence(tenant, &query).unwrap()
    }

    fn seqs(records: &[haltstate_authority::EvidenceRecord]) -> Vec<u64> {
        records.iter().map(|r| r.seq).collect()
    }

    /// Every range (bounds on, between, before and after the records' times; with a key, an action, a start
    /// after a record, a limit, the newest first) answers what filtering the whole ledger answers, on both
    /// backends.
    #[test]
    fn time_ranges_find_exactly_the_records_a_scan_finds() {
        let env = env();
        // Steps of 0 to 3 seconds: several records share a time.
        for i in 0..30u64 {
            env.clock.advance(Duration::from_secs(i * 7 % 4));
            let key = format!("refund:t{i}");
            let mut request = guard_refund(100, &key);
            if i % 5 == 0 {
                request.action.action = "data.export".into();
            }
            let answer = env.authority.guard(TENANT, request).wait().unwrap();
            if i % 4 == 0 && answer.status == GuardStatus::Allowed {
                env.clock.advance(Duration::from_secs(i % 2));
                env.authority
                    .report(TENANT, OutcomeReport::new(key, Outcome::Success))
                    .wait()
                    .unwrap();
            }
            if i % 3 == 0 {
                env.authority
                    .guard("globex", guard_refund(100, &format!("refund:g{i}")))
                    .wait()
                    .unwrap();
            }
        }
        if let haltstate_authority::Database::Sqlite(path) = &env.database {
            assert!(!has_time_index(path), "a new file has no index by time");
        }
        let everything = all(&env.authority, TENANT);
        assert!(everything.len() >= 30);
        let (first, last) = (everything[0].at, everything[everything.len() - 1].at);
        let mut times: Vec<OffsetDateTime> = vec![
            first - Duration::from_secs(1),
            last + Duration::from_secs(1),
            first + Duration::from_millis(500),
        ];
        times.extend(everything.iter().map(|r| r.at));
        times.sort();
        times.dedup();
        let bounds: Vec<Option<OffsetDateTime>> = std::iter::once(None)
            .chain(times.iter().copied().map(Some))
            .collect();
        let mut checked = 0;
        for (from, to) in bounds
            .iter()
            .step_by(2)
            .flat_map(|from| bounds.iter().step_by(3).map(move |to| (*from, *to)))
        {
            for (key, action, after_seq, limit, newest_first) in [
                (None, None, None, None, false),
                (Some("refund:t4"), None, None, None, false),
                (None, Some("data.export"), None, None, false),
                (None, None, Some(11), Some(5), false),
                (None, None, None, Some(3), true),
                (None, Some("data.export"), None, Some(2), true),
                (None, None, Some(11), Some(5), true),
            ] {
                let query = EvidenceQuery {
                    from,
                    to,
                    idempotency_key: key.map(str::to_owned),
                    action: action.map(str::to_owned),
                    after_seq,
                    limit,
                    ..Default::default()
                };
                let mut matching: Vec<u64> = everything
                    .iter()
                    .filter(|r| from.is_none_or(|from| r.at >= from))
                    .filter(|r| to.is_none_or(|to| r.at < to))
                    .filter(|r| key.is_none_or(|key| r.idempotency_key.as_deref() == Some(key)))
                    .filter(|r| action.is_none_or(|action| r.action.as_deref() == Some(action)))
                    .filter(|r| after_seq.is_none_or(|after| r.seq > after))
                    .map(|r| r.seq)
                    .collect();
                if newest_first {
                    matching.reverse();
                }
                let expected: Vec<u64> = matching
                    .into_iter()
                    .take(limit.map_or(usize::MAX, |l| l as usize))
                    .collect();
                let found = if newest_first {
                    env.authority.newest_evidence(TENANT, &query)
                } else {
                    env.authority.evidence(TENANT, &query)
                };
                assert_eq!(
                    seqs(&found.unwrap()),
                    expected,
                    "{query:?}, newest first: {newest_first}"
                );
                checked += usize::from(!expected.is_empty());
            }
        }
        assert!(checked > 100, "the ranges select records: {checked}");
        for since in &times {
            for limit in [1, 4, 1000] {
                let expected: Vec<u64> = everything
                    .iter()
                    .filter(|r| r.at >= *since)
                    .map(|r| r.seq)
                    .take(limit as usize)
                    .collect();
                let found = seqs(&env.authority.activity(TENANT, *since, limit).unwrap());
                assert_eq!(found, expected, "since {since}, at most {limit}");
            }
        }
    }

    /// When the clock steps back a little (up to a minute), a record takes its tenant's last time, not an earlier
    /// one (and not another tenant's), also when another handle (another process, another instance) writes the
    /// next one.
    #[test]
    fn a_clock_that_steps_back_a_little_does_not_move_a_record_before_its_predecessor() {
        let env = env();
        env.authority
            .guard(TENANT, guard_refund(100, "refund:c1"))
            .wait()
            .unwrap();
        let first = all(&env.authority, TENANT)[0].at;
        env.clock.set(first - Duration::from_secs(60));
        env.authority
            .guard(TENANT, guard_refund(100, "refund:c2"))
            .wait()
            .unwrap();
        env.authority
            .guard("globex", guard_refund(100, "refund:c3"))
            .wait()
            .unwrap();
        let reopened = env.second_handle();
        drop(env.authority);
        reopened
            .guard(TENANT, guard_refund(100, "refund:c4"))
            .wait()
            .unwrap();
        let times: Vec<OffsetDateTime> = all(&reopened, TENANT).iter().map(|r| r.at).collect();
        assert_eq!(times, [first, first, first]);
        assert_eq!(
            all(&reopened, "globex")[0].at,
            first - Duration::from_secs(60),
            "each tenant's own order"
        );
        let from = |at| EvidenceQuery {
            from: Some(at),
            ..Default::default()
        };
        assert_eq!(reopened.evidence(TENANT, &from(first)).unwrap().len(), 3);
        reopened.verify_ledger().unwrap();
        if let haltstate_authority::Database::Sqlite(path) = &env.database {
            assert!(!has_time_index(path), "the times are in order");
        }
    }

    /// A clock further behind (set back by hand, or back from a leap forward) gives its records their own time,
    /// out of order, rather than the last record's for as long as it takes to catch up; SQLite builds its index by
    /// time again in the same transaction, and every time range still finds exactly its records.
    #[test]
    fn a_clock_far_behind_gives_records_their_own_time_and_time_ranges_stay_exact() {
        let env = env();
        let later = common::MONDAY_10AM + Duration::from_secs(3600);
        env.clock.set(later);
        env.authority
            .guard(TENANT, guard_refund(100, "refund:f1"))
            .wait()
            .unwrap();
        env.clock.set(common::MONDAY_10AM);
        for i in 2..5 {
            env.authority
                .guard(TENANT, guard_refund(100, &format!("refund:f{i}")))
                .wait()
                .unwrap();
            env.clock.advance(Duration::from_secs(30));
        }
        let records = all(&env.authority, TENANT);
        let times: Vec<OffsetDateTime> = records.iter().map(|r| r.at).collect();
        let ten = common::MONDAY_10AM;
        assert_eq!(
            times,
            [
                later,
                ten,
                ten + Duration::from_secs(30),
                ten + Duration::from_secs(60)
            ]
        );
        if let haltstate_authority::Database::Sqlite(path) = &env.database {
            assert!(
                has_time_index(path),
                "built again: record 2 is before record 1"
            );
        }
        env.authority.verify_ledger().unwrap();
        for (from, to, expected) in [
            (Some(ten + Duration::from_secs(10)), None, vec![1, 3, 4]),
            (None, Some(ten + Duration::from_secs(45)), vec![2, 3]),
            (Some(ten), Some(later), vec![2, 3, 4]),
        ] {
            let query = EvidenceQuery {
                from,
                to,
                ..Default::default()
            };
            assert_eq!(
                seqs(&env.authority.evidence(TENANT, &query).unwrap()),
                expected,
                "{query:?}"
            );
        }
        assert_eq!(
            seqs(
                &env.authority
                    .activity(TENANT, ten + Duration::from_secs(45), 10)
                    .unwrap()
            ),
            [4, 1],
            "oldest first"
        );
    }

    /// A PostgreSQL head row keeps its chain's last time since schema 25; one from before learns it from the ledger
    /// as the database is migrated, so the first record after the migration keeps the order too.
    #[test]
    fn a_postgres_head_row_from_before_schema_25_learns_its_chains_last_time() {
        let url = haltstate_testkit::postgres::test_database();
        let clock = std::sync::Arc::new(haltstate_authority::ManualClock::at(common::MONDAY_10AM));
        let open = || {
            Authority::builder(haltstate_authority::Database::parse(&url))
                .clock(clock.clone())
                .policy_file(common::sample_policy_path())
                .open()
                .unwrap()
        };
        let first = open();
        first
            .guard(TENANT, guard_refund(100, "refund:p1"))
            .wait()
            .unwrap();
        drop(first);
        postgres::Client::connect(&url, postgres::NoTls)
            .unwrap()
            .batch_execute(
                "ALTER TABLE ledger_heads DROP COLUMN at; UPDATE haltstate_schema SET version = 18",
            )
            .unwrap();
        clock.set(common::MONDAY_10AM - Duration::from_secs(30));
        let migrated = open();
        migrated
            .guard(TENANT, guard_refund(100, "refund:p2"))
            .wait()
            .unwrap();
        let times: Vec<OffsetDateTime> = all(&migrated, TENANT).iter().map(|r| r.at).collect();
        assert_eq!(times, [common::MONDAY_10AM, common::MONDAY_10AM]);
    }

    /// A clock step: mostly forward or still, sometimes a little back (absorbed), sometimes far back.
    fn clock_step() -> impl Strategy<Value = i64> {
        prop_oneof![
            4 => 0i64..5,
            2 => -59i64..0,
            1 => -7_200i64..-61,
            1 => 61i64..7_200,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever the clock does, each time range and the activity answer what filtering every record answers
        /// (ranges in sequence order, the activity in time order), and the ledger verifies.
        #[test]
        fn time_ranges_stay_exact_whatever_the_clock_does(
            steps in proptest::collection::vec((0usize..2, clock_step()), 1..16)
        ) {
            let env = sqlite_env();
            let mut now = common::MONDAY_10AM;
            for (i, (tenant, step)) in steps.iter().enumerate() {
                let by = Duration::from_secs(step.unsigned_abs());
                now = if *step < 0 { now - by } else { now + by };
                env.clock.set(now);
                env.authority
                    .guard(["acme", "globex"][*tenant], guard_refund(100, &format!("refund:p{i}")))
                    .wait()
                    .unwrap();
            }
            env.authority.verify_ledger().unwrap();
            for tenant in ["acme", "globex"] {
                let records = all(&env.authority, tenant);
                let mut bounds: Vec<OffsetDateTime> = records.iter().map(|r| r.at).collect();
                bounds.extend(records.iter().map(|r| r.at + Duration::from_secs(1)));
                bounds.push(common::MONDAY_10AM - Duration::from_secs(86_400));
                for from in &bounds {
                    for to in [None, Some(*from + Duration::from_secs(90))] {
                        let query = EvidenceQuery { from: Some(*from), to, ..Default::default() };
                        let expected: Vec<u64> = records
                            .iter()
                            .filter(|r| r.at >= *from && to.is_none_or(|to| r.at < to))
                            .map(|r| r.seq)
                            .collect();
                        prop_assert_eq!(seqs(&env.authority.evidence(tenant, &query).unwrap()), expected);
                    }
                    let mut since: Vec<&haltstate_authority::EvidenceRecord> =
                        records.iter().filter(|r| r.at >= *from).collect();
                    since.sort_by_key(|r| (r.at, r.seq));
                    let expected: Vec<u64> = since.iter().map(|r| r.seq).collect();
                    let found = seqs(&env.authority.activity(tenant, *from, 1000).unwrap());
                    prop_assert_eq!(found, expected);
                }
            }
        }
    }

    /// Tenant `acme`'s three records at 10:00, 10:01 and 10:02 (and one of `globex`), rewritten with the second
    /// at `second` (its chain re-hashed, the trees rebuilt by the next open), the file set back to schema 16 with
    /// its index by time: a file an older version wrote while the clock stepped back (or, with `second` in
    /// order, one it wrote with a steady clock).
    fn older_file(second: OffsetDateTime) -> (common::Env, std::path::PathBuf) {
        let env = sqlite_env();
        for i in 0..3 {
            env.authority
                .guard(TENANT, guard_refund(100, &format!("refund:o{i}")))
                .wait()
                .unwrap();
            env.clock.advance(Duration::from_secs(60));
        }
        env.authority
            .guard("globex", guard_refund(100, "refund:o"))
            .wait()
            .unwrap();
        let path = env.db_path();
        let conn = Connection::open(&path).unwrap();
        haltstate_testkit::ledger::rehash_sqlite_chain(&conn, TENANT, |seq, value| {
            if seq == 2 {
                value["at"] =
                    serde_json::json!(haltstate_authority::timestamp::format_rfc3339(second));
            }
        });
        conn.execute_batch("CREATE INDEX ledger_tenant_at ON ledger (tenant, at);")
            .unwrap();
        conn.execute_batch(haltstate_testkit::ledger::SQLITE_TREES_DROPPED)
            .unwrap();
        (env, path)
    }

    fn reopen(
        path: &std::path::Path,
        clock: &std::sync::Arc<haltstate_authority::ManualClock>,
    ) -> Authority {
        Authority::builder(path)
            .clock(clock.clone())
            .policy_file(common::sample_policy_path())
            .open()
            .unwrap()
    }

    #[test]
    fn an_older_file_whose_times_go_backwards_keeps_its_index_by_time_and_is_read_through_it() {
        let nine = common::MONDAY_10AM - Duration::from_secs(3600);
        let (env, path) = older_file(nine);
        drop(env.authority);
        let reopened = reopen(&path, &env.clock);
        assert!(has_time_index(&path), "kept: record 2 is before record 1");
        assert_eq!(reopened.verify_ledger().unwrap().records, 4);
        let range = |from: Option<OffsetDateTime>, to: Option<OffsetDateTime>| {
            let query = EvidenceQuery {
                from,
                to,
                ..Default::default()
            };
            seqs(&reopened.evidence(TENANT, &query).unwrap())
        };
        let half_past_nine = nine + Duration::from_secs(1800);
        assert_eq!(range(Some(half_past_nine), None), [1, 3]);
        assert_eq!(range(None, Some(half_past_nine)), [2]);
        assert_eq!(
            seqs(&reopened.activity(TENANT, half_past_nine, 10).unwrap()),
            [1, 3]
        );
        // New records still never go before their tenant's last.
        reopened
            .guard(TENANT, guard_refund(100, "refund:o9"))
            .wait()
            .unwrap();
        drop(reopened);

        // Without the index the same file is a ledger time queries would misread: verify says where.
        Connection::open(&path)
            .unwrap()
            .execute_batch("DROP INDEX ledger_tenant_at")
            .unwrap();
        match reopen(&path, &env.clock).verify_ledger() {
            Err(AuthorityError::LedgerBroken {
                tenant,
                seq,
                problem,
            }) => {
                assert_eq!((tenant.as_str(), seq), (TENANT, 2));
                assert!(problem.contains("time is before"), "{problem}");
            }
            other => panic!("not caught: {other:?}"),
        }
    }

    #[test]
    fn an_older_file_whose_times_are_in_order_loses_its_index_by_time() {
        let (env, path) = older_file(common::MONDAY_10AM + Duration::from_secs(30));
        drop(env.authority);
        let reopened = reopen(&path, &env.clock);
        assert!(!has_time_index(&path));
        assert_eq!(reopened.verify_ledger().unwrap().records, 4);
        let query = EvidenceQuery {
            from: Some(common::MONDAY_10AM + Duration::from_secs(30)),
            to: Some(common::MONDAY_10AM + Duration::from_secs(121)),
            ..Default::default()
        };
        assert_eq!(seqs(&reopened.evidence(TENANT, &query).unwrap()), [2, 3]);
    }
}

/// A tenant's chain check (the console's Ledger page): what its operators may see verified.
mod tenant_check {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// `count` guarded refunds of [`TENANT`], from 8 threads (their commits grouped).
    pub(super) fn fill(authority: &Authority, count: usize) {
        let threads: Vec<_> = (0..8)
            .map(|thread| {
                let authority = authority.clone();
                std::thread::spawn(move || {
                    for i in (thread..count).step_by(8) {
                        authority
                            .guard(TENANT, guard_refund(100, &format!("refund:fill{i}")))
                            .wait()
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    }

    /// The check reads the head, then the records: records the agents append in between are not a broken chain
    /// (it said "record 267 is past the head (266)" under one agent's guards).
    #[test]
    fn a_tenants_chain_verifies_while_its_agents_append() {
        let env = env();
        fill(&env.authority, 200);
        let stop = Arc::new(AtomicBool::new(false));
        let guarding = {
            let (authority, stop) = (env.authority.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut made = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("refund:live{made}");
                    authority
                        .guard(TENANT, guard_refund(100, &key))
                        .wait()
                        .unwrap();
                    made += 1;
                }
                made
            })
        };
        let mut checks = 0;
        let grown = loop {
            let checked = env.authority.verify_tenant_ledger(TENANT);
            let report = checked.unwrap_or_else(|e| {
                stop.store(true, Ordering::Relaxed);
                panic!("check {checks}: {e:?}")
            });
            checks += 1;
            if report.records >= 500 && checks >= 30 {
                break report.records;
            }
        };
        stop.store(true, Ordering::Relaxed);
        let made = guarding.join().unwrap();
        assert!(grown >= 500 && made >= 300, "{grown} {made}");
    }

    /// Searches and a day's activity read past the 4,096 records one statement reads (`store/windows.rs`), oldest
    /// or newest first, and stop at their limit.
    #[test]
    fn searches_read_past_one_window_and_stop_at_their_limit() {
        let env = common::env_with(|b| {
            b.policy_file(common::sample_policy_path())
                .durability(haltstate_authority::Durability::Normal)
        });
        fill(&env.authority, 4_200);
        let refunds = |after_seq, limit| EvidenceQuery {
            action: Some("refund.create".into()),
            after_seq,
            limit: Some(limit),
            ..Default::default()
        };
        let seqs = |records: Vec<haltstate_authority::EvidenceRecord>| -> Vec<u64> {
            records.iter().map(|r| r.seq).collect()
        };
        let found = seqs(
            env.authority
                .evidence(TENANT, &refunds(Some(4_000), 1000))
                .unwrap(),
        );
        assert_eq!(found, (4_001..=4_200).collect::<Vec<_>>());
        let found = seqs(
            env.authority
                .evidence(TENANT, &refunds(Some(4_090), 10))
                .unwrap(),
        );
        assert_eq!(found, (4_091..=4_100).collect::<Vec<_>>());
        let found = seqs(
            env.authority
                .newest_evidence(TENANT, &refunds(None, 1000))
                .unwrap(),
        );
        assert_eq!(found, (3_201..=4_200).rev().collect::<Vec<_>>());
        let nothing = EvidenceQuery {
            action: Some("nothing.at.all".into()),
            ..Default::default()
        };
        assert!(env.authority.evidence(TENANT, &nothing).unwrap().is_empty());
        assert!(
            env.authority
                .newest_evidence(TENANT, &nothing)
                .unwrap()
                .is_empty()
        );
        let day = env
            .authority
            .activity(TENANT, common::MONDAY_10AM, 4_150)
            .unwrap();
        assert_eq!(seqs(day), (1..=4_150).collect::<Vec<_>>());
        let day = env
            .authority
            .activity(TENANT, common::MONDAY_10AM, 10_000)
            .unwrap();
        assert_eq!(day.len(), 4_200);
    }

    /// Past the 4,096 records one statement reads (`store/windows.rs`) the walk goes on: a record rewritten there,
    /// a record appended past the head and a head taken away are all found.
    #[test]
    fn the_check_walks_past_one_window_and_finds_tampering_there() {
        let env = common::env_on(haltstate_testkit::postgres::Backend::Sqlite, |b| {
            b.policy_file(common::sample_policy_path())
                .durability(haltstate_authority::Durability::Normal)
        });
        fill(&env.authority, 4_200);
        assert_eq!(
            env.authority.verify_tenant_ledger(TENANT).unwrap().records,
            4_200
        );
        let conn = Connection::open(env.db_path()).unwrap();
        let broken_at = |authority: &Authority| match authority.verify_tenant_ledger(TENANT) {
            Err(AuthorityError::LedgerBroken { seq, problem, .. }) => (seq, problem),
            other => panic!("not caught: {other:?}"),
        };

        let body: Vec<u8> = conn
            .query_row(
                "SELECT body FROM ledger WHERE tenant = ?1 AND seq = 4150",
                [TENANT],
                |r| r.get(0),
            )
            .unwrap();
        let mut value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        value["reason"] = serde_json::json!("nothing to see here");
        let forged = haltstate_authority::canonical::to_canonical_bytes(&value).unwrap();
        let put = |body: &[u8]| {
            conn.execute(
                "UPDATE ledger SET body = ?1 WHERE tenant = ?2 AND seq = 4150",
                params![body, TENANT],
            )
            .unwrap()
        };
        put(&forged);
        assert_eq!(broken_at(&env.authority).0, 4_150);
        put(&body);

        // A copy of the head's record one past it, with the chain's hashes made to fit.
        let columns: String = conn
            .query_row(
                "SELECT group_concat(name) FROM pragma_table_info('ledger') \
                 WHERE name NOT IN ('id', 'seq', 'prev_hash')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        conn.execute(
            &format!(
                "INSERT INTO ledger (seq, prev_hash, {columns}) \
                 SELECT seq + 1, hash, {columns} FROM ledger WHERE tenant = ?1 AND seq = 4200"
            ),
            [TENANT],
        )
        .unwrap();
        let (seq, problem) = broken_at(&env.authority);
        assert_eq!(seq, 4_201, "{problem}");
        conn.execute(
            "DELETE FROM ledger WHERE tenant = ?1 AND seq = 4201",
            [TENANT],
        )
        .unwrap();
        assert_eq!(
            env.authority.verify_tenant_ledger(TENANT).unwrap().records,
            4_200
        );

        conn.execute("DELETE FROM ledger_heads WHERE tenant = ?1", [TENANT])
            .unwrap();
        let (seq, problem) = broken_at(&env.authority);
        assert!(
            seq == 4_200 && problem.contains("head is missing"),
            "{seq} {problem}"
        );
    }
}

/// SQLite's WAL while searches of the ledger overlap one another without end and the agents keep acting.
mod wal {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// Two searches that find nothing (each reads the whole ledger), one after the other on each of two threads,
    /// so that one is nearly always running: before, the writer could never start the WAL over, and it grew by
    /// every commit (25 MB here; 1.1 GB in 40 s against a loaded server). Now it stays near its bound (1 MiB for
    /// this small `checkpoint_pages`).
    #[test]
    fn overlapping_searches_do_not_keep_the_wal_growing() {
        let env = common::env_on(haltstate_testkit::postgres::Backend::Sqlite, |b| {
            b.policy_file(common::sample_policy_path())
                .durability(haltstate_authority::Durability::Normal)
                .checkpoint_pages(64)
        });
        tenant_check::fill(&env.authority, 1_000);
        let stop = Arc::new(AtomicBool::new(false));
        let searches = Arc::new(AtomicU64::new(0));
        let searchers: Vec<_> = (0..2)
            .map(|_| {
                let (authority, stop, searches) =
                    (env.authority.clone(), stop.clone(), searches.clone());
                std::thread::spawn(move || {
                    let nothing = EvidenceQuery {
                        action: Some("nothing.at.all".into()),
                        limit: Some(10),
                        ..Default::default()
                    };
                    while !stop.load(Ordering::Relaxed) {
                        assert!(authority.evidence(TENANT, &nothing).unwrap().is_empty());
                        searches.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        while searches.load(Ordering::Relaxed) < 2 {
            std::thread::yield_now();
        }
        let mut wal = env.db_path().into_os_string();
        wal.push("-wal");
        let mut largest = 0;
        for i in 0..1_500 {
            env.authority
                .guard(TENANT, guard_refund(100, &format!("refund:wal{i}")))
                .wait()
                .unwrap();
            largest = largest.max(std::fs::metadata(&wal).unwrap().len());
        }
        let searched = searches.load(Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        for searcher in searchers {
            searcher.join().unwrap();
        }
        assert!(
            searched >= 20,
            "the searches ran beside the guards: {searched}"
        );
        assert!(largest < 6 << 20, "the WAL reached {largest} bytes");
    }
}

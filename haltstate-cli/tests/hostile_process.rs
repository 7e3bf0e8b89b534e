//! The hostile-client cases that need the real `haltstate` process: SIGTERM with a stream and a half-sent request
//! open, the files it creates, `ledger verify` on foreign files, the CLI's identity on the database, and the log
//! a burst of refusals leaves. The in-process cases are in `haltstate-server/tests/hostile.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use haltstate_authority::{Authority, EvidenceKind, EvidenceQuery, Role};
use haltstate_testkit::policies;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const TENANT: &str = "acme";
const CHECK: &str = "/api/sentinel/action/check";

const POLICIES: &str = policies::REFUNDS;

#[test]
fn sigterm_ends_streams_and_half_sent_requests_within_the_shutdown_deadline() {
    let setup = common::setup(POLICIES);
    let mut server = common::serve(
        &setup.db,
        &setup.policy,
        &[
            "--shutdown-timeout",
            "2s",
            "--header-timeout",
            "60s",
            "--idle-timeout",
            "60s",
        ],
    );
    let (base, addr) = (
        server.base_url().to_owned(),
        server.listen_addr().to_owned(),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_stream, _half) = runtime.block_on(async {
        let stream = reqwest::Client::new()
            .get(format!("{base}/api/sentinel/approvals/stream"))
            .header("X-Tenant-Id", "acme")
            .header("X-API-Key", &setup.key)
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), StatusCode::OK);
        let mut half = TcpStream::connect(&addr).await.unwrap();
        half.write_all(b"POST /api/sentinel/action/check HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        (stream, half)
    });
    let started = std::time::Instant::now();
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server ignored SIGTERM with a stream and a half-sent request open");
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[cfg(unix)]
#[test]
fn database_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let setup = common::setup(POLICIES);
    let authority = Authority::builder(&setup.db).open().unwrap();
    authority
        .create_key(TENANT, "x", Role::Agent)
        .wait()
        .unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", setup.db.display());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{path}: {mode:o}");
    }
}

#[test]
fn ledger_verify_refuses_a_file_that_is_not_ours_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
            .unwrap();
    }
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database at all").unwrap();
    for path in [&foreign, &text] {
        let before = std::fs::read(path).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_haltstate"))
            .args(["ledger", "verify", "--db", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", path.display());
        assert!(String::from_utf8_lossy(&out.stderr).contains("is not a HaltState database"));
        assert_eq!(
            std::fs::read(path).unwrap(),
            before,
            "{} was changed",
            path.display()
        );
    }
    let tables: i64 = rusqlite::Connection::open(&foreign)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);
}

#[test]
fn the_cli_on_the_database_names_its_operator_and_marks_the_evidence() {
    let setup = common::setup(POLICIES);
    let authority = Authority::builder(&setup.db)
        .policy_file(&setup.policy)
        .open()
        .unwrap();
    let id = authority
        .guard(
            TENANT,
            haltstate_authority::GuardRequest::new(
                haltstate_authority::ActionRequest::new("load", "refund.create")
                    .param("amount_cents", json!(90_000)),
                "cli:1",
            ),
        )
        .wait()
        .unwrap()
        .approval_id
        .unwrap();
    drop(authority);
    let cli = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_haltstate"))
            .args([
                "approvals",
                "approve",
                &id,
                "--db",
                setup.db.to_str().unwrap(),
                "--tenant",
                TENANT,
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let nameless = cli(&[]);
    assert_eq!(nameless.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nameless.stderr).contains("needs --as"));
    let named = cli(&["--as", "Alice"]);
    assert!(
        named.status.success(),
        "{}",
        String::from_utf8_lossy(&named.stderr)
    );
    let authority = Authority::builder(&setup.db).open().unwrap();
    let record = authority
        .evidence(
            TENANT,
            &EvidenceQuery {
                idempotency_key: Some("cli:1".into()),
                ..Default::default()
            },
        )
        .unwrap()
        .into_iter()
        .find(|r| r.kind == EvidenceKind::Approval)
        .unwrap();
    assert_eq!(record.actor.as_deref(), Some("alice"));
    assert_eq!(record.via, Some(haltstate_authority::Via::Cli));
}

#[test]
fn refusals_log_at_debug_with_one_summary_at_info() {
    let setup = common::setup(POLICIES);
    let mut server = common::serve(&setup.db, &setup.policy, &[]);
    let base = server.base_url().to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        for _ in 0..40 {
            let status = http
                .post(format!("{base}{CHECK}"))
                .header("X-Tenant-Id", TENANT)
                .header("X-API-Key", "hs_wrong")
                .json(&json!({"action": "x.y"}))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
    });
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let text = server.log();
    let summaries: Vec<_> = text
        .lines()
        .filter(|l| l.contains("requests refused since the last summary"))
        .collect();
    assert_eq!(summaries.len(), 1, "{text}");
    assert!(summaries[0].contains("401: 40"), "{text}");
    assert!(
        text.lines().count() < 10,
        "one line per refusal reached the log:\n{text}"
    );
}

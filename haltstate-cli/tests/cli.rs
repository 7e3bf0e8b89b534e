//! The `haltstate` binary: serve, keys, approvals and kill switch on `--db` while the server runs, ledger verify,
//! policy check.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use haltstate_testkit::ServeProcess;
use serde_json::{Value, json};

const POLICY: &str = haltstate_testkit::policies::REFUNDS;

fn haltstate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_haltstate"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn serve(db: &Path, policy: &Path) -> ServeProcess {
    common::serve(db, policy, &[])
}

async fn guard(base: &str, key: &str, cents: i64, idempotency_key: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{base}/api/sentinel/action/guard"))
        .header("X-Tenant-Id", "acme")
        .header("X-API-Key", key)
        // No agent_id: the key acts as its own agent.
        .json(&json!({"action": "refund.create", "params": {"amount_cents": cents}, "idempotency_key": idempotency_key}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn operator_approves_and_kills_on_the_db_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (db, policy) = (dir.path().join("hs.db"), dir.path().join("p.cedar"));
    std::fs::write(&policy, POLICY).unwrap();
    let db_arg = db.to_str().unwrap();

    let created = haltstate(&[
        "keys",
        "create",
        "--db",
        db_arg,
        "--tenant",
        "acme",
        "--name",
        "billing-agent",
        "--role",
        "agent",
    ]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let key = text(&created.stdout);
    assert_eq!(key.lines().count(), 1, "the key alone on stdout: {key:?}");
    let key = key.trim().to_owned();
    assert!(key.starts_with("hs_"));

    let server = serve(&db, &policy);
    let pending = guard(server.base_url(), &key, 90_000, "refund:cli").await;
    assert_eq!(pending["status"], "pending");
    let id = pending["approval_id"].as_str().unwrap();

    let listed = haltstate(&[
        "approvals",
        "list",
        "--db",
        db_arg,
        "--tenant",
        "acme",
        "--status",
        "pending",
    ]);
    assert!(
        text(&listed.stdout).contains(id),
        "{}",
        text(&listed.stdout)
    );
    let own = haltstate(&[
        "approvals",
        "approve",
        id,
        "--db",
        db_arg,
        "--tenant",
        "acme",
        "--as",
        "billing-agent",
    ]);
    assert!(!own.status.success());
    assert!(
        text(&own.stderr).contains("requesting agent"),
        "{}",
        text(&own.stderr)
    );
    let approved = haltstate(&[
        "approvals",
        "approve",
        id,
        "--db",
        db_arg,
        "--tenant",
        "acme",
        "--as",
        "alice",
        "--reason",
        "ok",
    ]);
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    let shown = haltstate(&["approvals", "show", id, "--db", db_arg, "--tenant", "acme"]);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(
        (shown["status"].as_str(), shown["approver"].as_str()),
        (Some("approved"), Some("alice"))
    );
    assert_eq!(
        guard(server.base_url(), &key, 90_000, "refund:cli").await["status"],
        "approved"
    );

    let paused = haltstate(&[
        "pause",
        "--db",
        db_arg,
        "--tenant",
        "acme",
        "--agent",
        "billing-agent",
        "--as",
        "oncall",
        "--reason",
        "refund storm",
    ]);
    assert!(paused.status.success(), "{}", text(&paused.stderr));
    let why = haltstate_authority::Authority::builder(&db)
        .open()
        .unwrap()
        .kill_switch_history("acme", 1)
        .unwrap();
    assert_eq!(
        (why[0].actor.as_deref(), why[0].reason.as_deref()),
        (
            Some("oncall"),
            Some("agent billing-agent set to PAUSE: refund storm")
        )
    );
    let denied = guard(server.base_url(), &key, 100, "refund:paused").await;
    assert_eq!(denied["status"], "denied");
    assert_eq!(
        denied["reason"],
        "kill switch: agent billing-agent is paused"
    );
    assert!(
        haltstate(&[
            "resume",
            "--db",
            db_arg,
            "--tenant",
            "acme",
            "--agent",
            "billing-agent",
            "--as",
            "oncall"
        ])
        .status
        .success()
    );
    assert_eq!(
        guard(server.base_url(), &key, 100, "refund:resumed").await["status"],
        "allowed"
    );

    let verified = haltstate(&["ledger", "verify", "--db", db_arg]);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    assert!(
        text(&verified.stdout).starts_with("ledger ok: "),
        "{}",
        text(&verified.stdout)
    );
}

#[tokio::test]
async fn sigterm_stops_the_server_gracefully_and_keeps_what_it_acknowledged() {
    let setup = common::setup(POLICY);
    let db_arg = setup.db.to_str().unwrap();
    let mut server = serve(&setup.db, &setup.policy);
    for i in 0..20 {
        assert_eq!(
            guard(server.base_url(), &setup.key, 100, &format!("refund:{i}")).await["status"],
            "allowed"
        );
    }
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "graceful shutdown exits 0, got {status:?}"
    );
    let verified = text(&haltstate(&["ledger", "verify", "--db", db_arg]).stdout);
    // The agent key's creation, then the twenty guards.
    assert!(verified.starts_with("ledger ok: 21 records"), "{verified}");
}

#[tokio::test]
async fn checkpoint_pages_sets_when_the_wal_is_copied_into_the_database() {
    let setup = common::setup(POLICY);
    let db_arg = setup.db.to_str().unwrap();
    let before = std::fs::metadata(&setup.db).unwrap().len();
    let server = common::serve(&setup.db, &setup.policy, &["--checkpoint-pages", "4"]);
    for i in 0..30 {
        assert_eq!(
            guard(server.base_url(), &setup.key, 100, &format!("refund:{i}")).await["status"],
            "allowed"
        );
    }
    // With the default (10,000 pages) these 30 guards would still be in the WAL only.
    let during = std::fs::metadata(&setup.db).unwrap().len();
    assert!(during > before, "database {before} -> {during} bytes");
    let refused = haltstate(&[
        "serve",
        "--db",
        db_arg,
        "--policy",
        "p.cedar",
        "--checkpoint-pages",
        "0",
    ]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("checkpoint-pages"),
        "{}",
        text(&refused.stderr)
    );
}

#[tokio::test]
async fn the_pending_approval_caps_are_set_by_serve_flags() {
    let setup = common::setup(POLICY);
    let server = common::serve(
        &setup.db,
        &setup.policy,
        &["--max-pending-approvals-per-agent", "2"],
    );
    for i in 0..2 {
        let answer = guard(
            server.base_url(),
            &setup.key,
            90_000,
            &format!("refund:big{i}"),
        )
        .await;
        assert_eq!(answer["status"], "pending", "{answer}");
    }
    // The default cap (50) would let a third wait too.
    let third = guard(server.base_url(), &setup.key, 90_000, "refund:big2").await;
    assert_eq!(third["status"], "denied", "{third}");
    assert!(third.to_string().contains("2 approvals waiting"), "{third}");
    drop(server);
    let refused = haltstate(&[
        "serve",
        "--db",
        setup.db.to_str().unwrap(),
        "--policy",
        setup.policy.to_str().unwrap(),
        "--max-pending-approvals-per-tenant",
        "0",
    ]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("max-pending-approvals-per-tenant"),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn ledger_verify_names_the_first_broken_record() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hs.db");
    let db_arg = db.to_str().unwrap();
    assert!(
        haltstate(&[
            "keys", "create", "--db", db_arg, "--tenant", "acme", "--name", "ops", "--role",
            "operator"
        ])
        .status
        .success()
    );
    for state in ["pause", "resume", "kill"] {
        assert!(
            haltstate(&[state, "--db", db_arg, "--tenant", "acme", "--as", "oncall"])
                .status
                .success()
        );
    }
    // The key's creation, then the three switches.
    assert!(
        text(&haltstate(&["ledger", "verify", "--db", db_arg]).stdout)
            .starts_with("ledger ok: 4 records")
    );

    // Someone with the file rewrites who flipped the switch in record 3.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let body: Vec<u8> = conn
        .query_row("SELECT body FROM ledger WHERE seq = 3", [], |r| r.get(0))
        .unwrap();
    let forged = String::from_utf8(body)
        .unwrap()
        .replace("\"actor\":\"oncall\"", "\"actor\":\"mallory\"");
    assert_eq!(
        conn.execute(
            "UPDATE ledger SET body = ?1 WHERE seq = 3",
            [forged.into_bytes()]
        )
        .unwrap(),
        1
    );

    let broken = haltstate(&["ledger", "verify", "--db", db_arg]);
    assert_eq!(broken.status.code(), Some(2));
    assert!(
        text(&broken.stderr).contains("BROKEN: tenant acme, record 3"),
        "{}",
        text(&broken.stderr)
    );
}

#[test]
fn commands_on_a_missing_database_refuse_instead_of_creating_one() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.db");
    let out = haltstate(&[
        "kill",
        "--db",
        missing.to_str().unwrap(),
        "--tenant",
        "acme",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no database at"),
        "{}",
        text(&out.stderr)
    );
    assert!(!missing.exists());
}

#[test]
fn policy_check_prints_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.cedar");
    std::fs::write(&bad, "@id(\"a\")\npermit(principal, actoin, resource);\n").unwrap();
    let checked = haltstate(&["policy", "check", bad.to_str().unwrap()]);
    assert_eq!(checked.status.code(), Some(1));
    assert!(
        text(&checked.stderr).contains("bad.cedar:2:19: error:"),
        "{}",
        text(&checked.stderr)
    );
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies/haltstate.cedar");
    let good = haltstate(&["policy", "check", sample.to_str().unwrap()]);
    assert!(good.status.success());
    assert!(text(&good.stdout).contains("9 policies ok"));
}

#[test]
fn every_command_has_help_with_an_example() {
    for args in [
        vec!["serve"],
        vec!["keys", "create"],
        vec!["approvals", "list"],
        vec!["approvals", "approve"],
        vec!["approvals", "reject"],
        vec!["approvals", "show"],
        vec!["kill"],
        vec!["pause"],
        vec!["resume"],
        vec!["ledger", "verify"],
        vec!["policy", "check"],
    ] {
        let mut with_help = args.clone();
        with_help.push("--help");
        let help = text(&haltstate(&with_help).stdout);
        assert!(
            help.contains("Example: haltstate"),
            "{args:?} has no example:\n{help}"
        );
    }
}

fn haltstate_with_env(args: &[&str], tenant: &str, key: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_haltstate"))
        .args(args)
        .env("HALTSTATE_TENANT_ID", tenant)
        .env("HALTSTATE_API_KEY", key)
        .output()
        .unwrap()
}

#[tokio::test]
async fn operator_commands_work_over_the_server_with_an_operator_key() {
    let dir = tempfile::tempdir().unwrap();
    let (db, policy) = (dir.path().join("hs.db"), dir.path().join("p.cedar"));
    std::fs::write(&policy, POLICY).unwrap();
    let db_arg = db.to_str().unwrap();
    let create = |name: &str, role: &str| {
        text(
            &haltstate(&[
                "keys", "create", "--db", db_arg, "--tenant", "acme", "--name", name, "--role",
                role,
            ])
            .stdout,
        )
        .trim()
        .to_owned()
    };
    let (agent, operator) = (
        create("billing-agent", "agent"),
        create("alice", "operator"),
    );
    let server = serve(&db, &policy);
    let id = guard(server.base_url(), &agent, 90_000, "refund:remote").await["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let listed = haltstate_with_env(
        &["approvals", "list", "--server", server.base_url()],
        "acme",
        &operator,
    );
    assert!(
        text(&listed.stdout).contains(&id),
        "{}{}",
        text(&listed.stdout),
        text(&listed.stderr)
    );
    let refused = haltstate_with_env(
        &["approvals", "approve", &id, "--server", server.base_url()],
        "acme",
        &agent,
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("403"),
        "{}",
        text(&refused.stderr)
    );
    let approved = haltstate_with_env(
        &[
            "approvals",
            "approve",
            &id,
            "--server",
            server.base_url(),
            "--reason",
            "ok",
        ],
        "acme",
        &operator,
    );
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    assert!(
        text(&approved.stdout).contains("by=alice"),
        "{}",
        text(&approved.stdout)
    );
    assert_eq!(
        guard(server.base_url(), &agent, 90_000, "refund:remote").await["status"],
        "approved"
    );

    let killed = haltstate_with_env(&["kill", "--server", server.base_url()], "acme", &operator);
    assert!(killed.status.success(), "{}", text(&killed.stderr));
    assert_eq!(
        guard(server.base_url(), &agent, 100, "refund:after-kill").await["status"],
        "denied"
    );
    assert!(
        haltstate_with_env(
            &["resume", "--server", server.base_url()],
            "acme",
            &operator
        )
        .status
        .success()
    );
    assert_eq!(
        guard(server.base_url(), &agent, 100, "refund:after-resume").await["status"],
        "allowed"
    );

    let no_env = haltstate(&["kill", "--server", server.base_url()]);
    assert!(
        text(&no_env.stderr).contains("HALTSTATE_TENANT_ID is not set")
            || text(&no_env.stderr).contains("HALTSTATE_API_KEY"),
        "{}",
        text(&no_env.stderr)
    );
}

async fn check_policy_id(base: &str, key: &str) -> Value {
    let answer: Value = reqwest::Client::new()
        .post(format!("{base}/api/sentinel/action/check"))
        .header("X-Tenant-Id", "acme")
        .header("X-API-Key", key)
        .json(&json!({"agent_id": "a", "action": "refund.create", "params": {"amount_cents": 1}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["policy_id"].clone()
}

#[tokio::test]
async fn sighup_reloads_the_policy_file_and_a_bad_file_keeps_the_old_set() {
    let dir = tempfile::tempdir().unwrap();
    let (db, policy) = (dir.path().join("hs.db"), dir.path().join("p.cedar"));
    std::fs::write(&policy, POLICY).unwrap();
    let key = text(
        &haltstate(&[
            "keys",
            "create",
            "--db",
            db.to_str().unwrap(),
            "--tenant",
            "acme",
            "--name",
            "a",
            "--role",
            "agent",
        ])
        .stdout,
    );
    let key = key.trim();
    let server = serve(&db, &policy);
    let health: Value = reqwest::get(format!("{}/healthz", server.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(
        check_policy_id(server.base_url(), key).await,
        "refunds.small"
    );

    let base = server.base_url().to_owned();
    std::fs::write(&policy, r#"@id("v2") permit(principal, action, resource);"#).unwrap();
    server.signal("HUP");
    server.wait_for_log("policies reloaded", 1, Duration::from_secs(10));
    assert_eq!(check_policy_id(&base, key).await, "v2");

    std::fs::write(&policy, "@id(\"v3\") permit(principal, action, resource)").unwrap(); // missing `;`
    server.signal("HUP");
    server.wait_for_log("policy reload failed", 1, Duration::from_secs(10));
    assert_eq!(
        check_policy_id(&base, key).await,
        "v2",
        "a bad file must keep the old set"
    );
}

/// The value of the sample of `name` whose labels include every one of `labels` (`key="value"`).
fn sample(scrape: &str, name: &str, labels: &[&str]) -> Option<f64> {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.split(['{', ' '])
                .next()
                .is_some_and(|metric| metric == name)
        })
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn metrics_after_a_scripted_run_carry_its_counts() {
    let setup = common::setup(POLICY);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_at = format!("127.0.0.1:{port}");
    let server = common::serve(&setup.db, &setup.policy, &["--metrics-listen", &metrics_at]);
    let base = server.base_url().to_owned();
    // The script: three small refunds (allowed), two large ones (pending a human), one of an action no policy
    // names (denied, counted as `other`), and an agent paused.
    for i in 0..3 {
        let answer = guard(&base, &setup.key, 500, &format!("m:small:{i}")).await;
        assert_eq!(answer["status"], "allowed", "{answer}");
    }
    let mut pending = Vec::new();
    for i in 0..2 {
        let answer = guard(&base, &setup.key, 50_000, &format!("m:big:{i}")).await;
        assert_eq!(answer["status"], "pending", "{answer}");
        pending.push(answer["approval_id"].as_str().unwrap().to_owned());
    }
    let unknown: Value = reqwest::Client::new()
        .post(format!("{base}/api/sentinel/action/guard"))
        .header("X-Tenant-Id", "acme")
        .header("X-API-Key", &setup.key)
        .json(&json!({"action": "made.up.action", "idempotency_key": "m:other"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unknown["status"], "denied", "{unknown}");
    // Two agents paused, one of them a name no key has: agent names never become label values (issue 21: an
    // operator made 300 series appear by pausing made-up agents).
    for agent in ["exporter", "made-up-agent-7"] {
        let paused = haltstate(&[
            "pause",
            "--db",
            setup.db.to_str().unwrap(),
            "--tenant",
            "acme",
            "--agent",
            agent,
            "--as",
            "oncall",
        ]);
        assert!(paused.status.success(), "{}", text(&paused.stderr));
    }

    let scrape = reqwest::get(format!("http://{metrics_at}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let decisions = |decision: &str, action: &str| {
        sample(
            &scrape,
            "haltstate_decisions_total",
            &[
                "tenant=\"acme\"",
                &format!("action=\"{action}\""),
                &format!("decision=\"{decision}\""),
            ],
        )
    };
    assert_eq!(decisions("allowed", "refund.create"), Some(3.0), "{scrape}");
    assert_eq!(decisions("pending", "refund.create"), Some(2.0), "{scrape}");
    assert_eq!(decisions("denied", "other"), Some(1.0), "{scrape}");
    assert!(
        !scrape.contains("made.up.action"),
        "an action no policy names became a label value"
    );
    assert_eq!(
        sample(&scrape, "haltstate_guard_duration_seconds_count", &[]),
        Some(6.0)
    );
    assert_eq!(
        sample(&scrape, "haltstate_approvals_pending", &["tenant=\"acme\""]),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &scrape,
            "haltstate_agents_stopped",
            &["tenant=\"acme\"", "state=\"pause\""]
        ),
        Some(2.0),
        "{scrape}"
    );
    assert!(
        !scrape.contains("exporter") && !scrape.contains("made-up-agent"),
        "an agent name became a label value: {scrape}"
    );
    // Six guards committed (in however many transactions), each transaction recorded with its size.
    assert_eq!(
        sample(&scrape, "haltstate_commit_batch_size_sum", &[]),
        Some(6.0),
        "{scrape}"
    );
    assert!(
        sample(&scrape, "haltstate_commit_duration_seconds_count", &[]).is_some_and(|n| n >= 1.0)
    );
    // Decided elsewhere (the CLI on the database): the gauge goes back to 0, it does not keep the old count.
    for id in &pending {
        let approved = haltstate(&[
            "approvals",
            "approve",
            id,
            "--db",
            setup.db.to_str().unwrap(),
            "--tenant",
            "acme",
            "--as",
            "oncall",
        ]);
        assert!(approved.status.success(), "{}", text(&approved.stderr));
    }
    let scrape = reqwest::get(format!("http://{metrics_at}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sample(&scrape, "haltstate_approvals_pending", &["tenant=\"acme\""]),
        Some(0.0),
        "{scrape}"
    );
    // Not on the API's address.
    let api = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(api.status().as_u16(), 404);
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}

#[test]
fn the_sample_policy_passes_its_cases_and_a_failing_or_misspelt_case_is_reported() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies");
    let policy = root.join("haltstate.cedar");
    let run = |cases: &Path| {
        Command::new(env!("CARGO_BIN_EXE_haltstate"))
            .args(["policy", "test"])
            .arg(cases)
            .arg("--policy")
            .arg(&policy)
            .output()
            .unwrap()
    };
    let sample = run(&root.join("haltstate.cases.toml"));
    assert!(
        sample.status.success(),
        "{}{}",
        text(&sample.stdout),
        text(&sample.stderr)
    );
    let summary = text(&sample.stdout);
    assert!(
        summary.trim_end().ends_with("passed, 0 failed"),
        "{summary}"
    );
    assert!(!summary.starts_with("0 passed"), "{summary}");

    let dir = tempfile::tempdir().unwrap();
    let failing = dir.path().join("failing.toml");
    std::fs::write(
        &failing,
        "[[case]]\nname = \"small refunds are denied\"\nagent = \"bot\"\naction = \"refund.create\"\n\
         params = { amount_cents = 500 }\nexpect = \"DENY\"\n\n[[case]]\nname = \"and large ones wait\"\n\
         agent = \"bot\"\naction = \"refund.create\"\nparams = { amount_cents = 50000 }\n\
         expect = \"APPROVAL_REQUIRED\"\npolicy = \"refunds.large\"\n",
    )
    .unwrap();
    let out = run(&failing);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "FAIL small refunds are denied: expected DENY, got ALLOW (policy refunds.small)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("1 passed, 1 failed"),
        "{stdout}"
    );

    let misspelt = dir.path().join("misspelt.toml");
    std::fs::write(
        &misspelt,
        "[[case]]\nname = \"x\"\nagent = \"bot\"\naction = \"refund.create\"\nexpect = \"DENY\"\n\
         usage = { week = { count = 3 } }\n",
    )
    .unwrap();
    let out = run(&misspelt);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("line 6"), "{stderr}");
    assert!(stderr.contains("unknown field `week`"), "{stderr}");
}

#[test]
fn policy_replay_prints_what_a_candidate_would_change_and_refuses_another_schema() {
    use haltstate_authority::{ActionRequest, Authority, CheckRequest, GuardRequest};

    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies");
    let live = root.join("haltstate.cedar");
    let db = dir.path().join("hs.db");
    {
        // At noon yesterday: the sample policy freezes refunds at night, whatever the wall clock says.
        let noon = (time::OffsetDateTime::now_utc() - time::Duration::days(1))
            .replace_time(time::macros::time!(12:00));
        let authority = Authority::builder(&db)
            .policy_file(&live)
            .clock(std::sync::Arc::new(haltstate_authority::ManualClock::at(
                noon,
            )))
            .open()
            .unwrap();
        let refund = |cents: i64| {
            ActionRequest::new("billing-agent", "refund.create").param("amount_cents", json!(cents))
        };
        for (i, cents) in [500, 4_000, 9_000, 90_000].into_iter().enumerate() {
            authority
                .guard(
                    "acme",
                    GuardRequest::new(refund(cents), format!("refund:{i}")),
                )
                .wait()
                .unwrap();
        }
        authority
            .check("acme", CheckRequest::new(refund(8_000)))
            .wait()
            .unwrap();
        authority
            .guard("globex", GuardRequest::new(refund(7_000), "refund:globex"))
            .wait()
            .unwrap();
    }
    // The candidate lowers the routine limit to 50.00: the 90.00 and 80.00 refunds would wait for a human.
    let source = std::fs::read_to_string(&live).unwrap();
    let candidate = dir.path().join("candidate.cedar");
    std::fs::write(
        &candidate,
        source
            .replace(
                "context.params.amount_cents <= 10000",
                "context.params.amount_cents <= 5000",
            )
            .replace(
                "context.params.amount_cents > 10000",
                "context.params.amount_cents > 5000",
            ),
    )
    .unwrap();
    let replay = |policy: &Path, extra: &[&str]| {
        let mut args = vec!["policy", "replay", "--db", db.to_str().unwrap(), "--policy"];
        args.push(policy.to_str().unwrap());
        args.extend_from_slice(extra);
        haltstate(&args)
    };
    let out = replay(&candidate, &["--since", "2d"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.last().copied(),
        Some("replayed 6 decisions: 3 would change"),
        "{stdout}"
    );
    assert!(
        lines.contains(&"acme\t3\trefund:2\trefund.create\tbilling-agent\tALLOW -> APPROVAL_REQUIRED\trefunds.large"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "globex\t1\trefund:globex\trefund.create\tbilling-agent\tALLOW -> APPROVAL_REQUIRED"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("ALLOW -> APPROVAL_REQUIRED\trefunds.large")
            && stdout.contains("\trefund.create\tbilling-agent\tALLOW"),
        "{stdout}"
    );
    // For CI: a change fails the run; the live policy itself changes nothing.
    assert_eq!(
        replay(&candidate, &["--fail-on-change"]).status.code(),
        Some(1)
    );
    let same = replay(&live, &["--fail-on-change"]);
    assert!(same.status.success());
    assert!(text(&same.stdout).ends_with("replayed 6 decisions: 0 would change\n"));
    let one_tenant = replay(&candidate, &["--tenant", "globex"]);
    assert!(text(&one_tenant.stdout).ends_with("replayed 1 decisions: 1 would change\n"));

    // A database of another schema version is refused, and left as it was.
    let newer = dir.path().join("newer.db");
    std::fs::copy(&db, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let out = haltstate(&[
        "policy",
        "replay",
        "--db",
        newer.to_str().unwrap(),
        "--policy",
        candidate.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("99"), "{}", text(&out.stderr));
    let version: i64 = rusqlite::Connection::open(&newer)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 99);
}

#[tokio::test]
async fn serve_with_a_shadow_file_records_what_it_would_decide_and_shadow_report_lists_it() {
    let setup = common::setup(POLICY);
    let shadow = setup.dir.path().join("shadow.cedar");
    std::fs::write(
        &shadow,
        format!(
            "{POLICY}\n@id(\"refunds.tiny-only\") forbid(principal, action == Action::\"refund.create\", resource) \
             when {{ context.params.amount_cents > 1000 }};"
        ),
    )
    .unwrap();
    let server = common::serve(
        &setup.db,
        &setup.policy,
        &["--shadow", shadow.to_str().unwrap()],
    );
    for (i, cents) in [500, 2_000, 3_000].into_iter().enumerate() {
        let answer = guard(server.base_url(), &setup.key, cents, &format!("sh:{i}")).await;
        assert_eq!(answer["status"], "allowed", "{answer}");
    }
    let out = haltstate(&[
        "policy",
        "shadow-report",
        "--db",
        setup.db.to_str().unwrap(),
        "--since",
        "1h",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.ends_with("compared 3 decisions: 2 disagreed\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\tsh:1\trefund.create\tload\tlive ALLOW (")
            && stdout.contains("shadow DENY (refunds.tiny-only)"),
        "{stdout}"
    );
}

/// `haltstate keys signing create --out path`: the public key it prints.
fn create_signing_key(path: &Path) -> String {
    let created = haltstate(&["keys", "signing", "create", "--out", path.to_str().unwrap()]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    text(&created.stdout).trim().to_owned()
}

#[tokio::test]
async fn signed_checkpoints_catch_a_perfect_forgery_and_proof_packs_verify_offline() {
    let setup = common::setup(POLICY);
    let dir = setup.dir.path();
    let (key_file, checkpoints) = (dir.join("signing.key"), dir.join("checkpoints.jsonl"));
    let public = create_signing_key(&key_file);
    assert!(
        public.starts_with("ed25519:") && public.len() == 8 + 64,
        "{public}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = haltstate(&[
        "keys",
        "signing",
        "create",
        "--out",
        key_file.to_str().unwrap(),
    ]);
    assert!(!again.status.success(), "a key is never overwritten");
    let shown = haltstate(&[
        "keys",
        "signing",
        "public",
        "--key",
        key_file.to_str().unwrap(),
    ]);
    assert_eq!(text(&shown.stdout).trim(), public);

    let mut server = common::serve(
        &setup.db,
        &setup.policy,
        &[
            "--signing-key",
            key_file.to_str().unwrap(),
            "--checkpoint-file",
            checkpoints.to_str().unwrap(),
            "--checkpoint-every",
            "100ms",
        ],
    );
    for i in 0..4 {
        let answer = guard(server.base_url(), &setup.key, 500, &format!("signed:{i}")).await;
        assert_eq!(answer["status"], "allowed", "{answer}");
    }
    // The key's creation and the four guards: a checkpoint of record 5.
    haltstate_testkit::eventually(
        "a checkpoint of the last record",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&checkpoints)
                .ok()
                .filter(|lines| lines.contains("\"seq\":5"))
        },
    );
    server.signal("TERM");
    assert!(
        server
            .wait_exit(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
    assert!(!server.log().contains("evidence is unsigned"));

    let db = setup.db.to_str().unwrap();
    let verify = |extra: &[&str]| {
        let mut args = vec!["ledger", "verify", "--db", db];
        args.extend_from_slice(extra);
        haltstate(&args)
    };
    let signed = [
        "--checkpoints",
        checkpoints.to_str().unwrap(),
        "--public-key",
        public.as_str(),
    ];
    let ok = verify(&signed);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("signed checkpoints agree"),
        "{}",
        text(&ok.stdout)
    );

    // A proof pack of one key, verified with the public key alone; an edited copy is refused.
    let pack = dir.join("pack.json");
    export_pack(db, "signed:1", &pack);
    let verified = haltstate(&[
        "proof",
        "verify",
        pack.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    assert!(text(&verified.stdout).starts_with("proof pack ok: tenant acme, 1 records"));
    let edited = dir.join("edited.json");
    std::fs::write(
        &edited,
        std::fs::read_to_string(&pack)
            .unwrap()
            .replacen("\"allowed\"", "\"denied\"", 1),
    )
    .unwrap();
    let refused = haltstate(&[
        "proof",
        "verify",
        edited.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).starts_with("proof pack INVALID"),
        "{}",
        text(&refused.stderr)
    );

    // The forger rewrites record 2 and recomputes every later hash and the head: the chain alone verifies...
    forge(&setup.db, 2, |record| record["status"] = json!("denied"));
    assert!(
        verify(&[]).status.success(),
        "the forgery is self-consistent"
    );
    // ... but the signed tree heads name the record whose leaf is not in the signed tree.
    let caught = verify(&signed);
    assert_eq!(caught.status.code(), Some(2));
    let said = text(&caught.stderr);
    assert!(
        said.starts_with("ledger BROKEN: tenant acme, record 2:"),
        "{said}"
    );
    assert!(said.contains("record 2 was changed"), "{said}");

    // The forger also rebuilds the stored tree from the forged records (the migration that builds trees from
    // verified chains does it): the signed heads still catch it, and say where the change lies.
    rebuild_trees(&setup.db);
    let rebuilt = haltstate(&["ledger", "tree-head", "--db", db, "--tenant", "acme"]);
    assert!(rebuilt.status.success(), "{}", text(&rebuilt.stderr));
    let signed_sizes: Vec<u64> = std::fs::read_to_string(&checkpoints)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|c| c["checkpoint"]["seq"].as_u64().unwrap())
        .collect();
    // The span between the last head before the change and the first after it.
    let before = signed_sizes
        .iter()
        .copied()
        .filter(|&s| s < 2)
        .max()
        .unwrap_or(0);
    let after = signed_sizes
        .iter()
        .copied()
        .filter(|&s| s >= 2)
        .min()
        .unwrap();
    let caught = verify(&signed);
    assert_eq!(caught.status.code(), Some(2));
    let said = text(&caught.stderr);
    assert!(
        said.starts_with(&format!(
            "ledger BROKEN: tenant acme, record {}:",
            before + 1
        )),
        "{said}"
    );
    if after > before + 1 {
        let span = format!("the change lies in records {} to {after}", before + 1);
        assert!(said.contains(&span), "{said}");
    } else {
        assert!(said.contains("record 2 was changed"), "{said}");
    }
}

/// `haltstate proof export` of acme's key `key` into `out`, which must succeed.
fn export_pack(db: &str, key: &str, out: &Path) {
    let exported = haltstate(&[
        "proof",
        "export",
        "--db",
        db,
        "--tenant",
        "acme",
        "--key",
        key,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
}

/// What a forger with the database does: `edit` record `seq` of acme's chain, recompute every later hash and the
/// head, so that the chain alone verifies.
fn forge(db: &Path, seq: i64, edit: impl Fn(&mut Value)) {
    let conn = rusqlite::Connection::open(db).unwrap();
    haltstate_testkit::ledger::rehash_sqlite_chain(&conn, "acme", |at, value| {
        if at == seq {
            edit(value);
        }
    });
}

/// The forger goes on: the stored trees are dropped so that the next open rebuilds them from the (forged) chains,
/// as the migration that builds trees does.
fn rebuild_trees(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(haltstate_testkit::ledger::SQLITE_TREES_DROPPED)
        .unwrap();
}

/// The lines of the checkpoint file: each signed checkpoint of acme that has a tree head, in file order.
fn tree_heads(checkpoints: &Path) -> Vec<(u64, String)> {
    std::fs::read_to_string(checkpoints)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|c| c["checkpoint"]["tenant"] == "acme")
        .filter_map(|c| {
            Some((
                c["checkpoint"]["seq"].as_u64()?,
                c["tree"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

#[tokio::test]
async fn a_witness_cosigns_each_tree_head_by_the_c2sp_protocol_and_refuses_a_rewritten_log() {
    let setup = common::setup(POLICY);
    let dir = setup.dir.path();
    let db = setup.db.to_str().unwrap();
    let (key_file, checkpoints) = (dir.join("signing.key"), dir.join("checkpoints.jsonl"));
    let public = create_signing_key(&key_file);
    // The log's verifier key, as `ledger tree-head` prints it for witnesses.
    let shown = haltstate(&[
        "ledger",
        "tree-head",
        "--db",
        db,
        "--tenant",
        "acme",
        "--signing-key",
        key_file.to_str().unwrap(),
    ]);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let vkey = text(&shown.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("verifier key: "))
        .unwrap()
        .to_owned();
    assert!(vkey.starts_with("haltstate/acme+"), "{vkey}");
    let witness = haltstate_testkit::Witness::start("witness.example/w1", [5; 32], &[vkey]);
    let url = witness.url();
    let args = [
        "--signing-key",
        key_file.to_str().unwrap(),
        "--checkpoint-file",
        checkpoints.to_str().unwrap(),
        "--checkpoint-every",
        "100ms",
        "--checkpoint-url",
        url.as_str(),
        "--allow-private-targets",
    ];
    let mut server = common::serve(&setup.db, &setup.policy, &args);
    // A sequence of heads, each cosigned as it extends the one before (the key's creation is record 1).
    for round in 0..3u64 {
        for i in 0..2 {
            let key = format!("w:{round}:{i}");
            let answer = guard(server.base_url(), &setup.key, 500, &key).await;
            assert_eq!(answer["status"], "allowed", "{answer}");
        }
        let size = 1 + 2 * (round + 1);
        haltstate_testkit::eventually("the witness cosigns", Duration::from_secs(10), || {
            (witness.size_of("haltstate/acme") == size).then_some(())
        });
    }
    let accepted: Vec<u64> = witness
        .submissions()
        .iter()
        .filter(|s| s.status == 200)
        .filter_map(|s| s.size)
        .collect();
    assert!(
        accepted.len() >= 3 && accepted.ends_with(&[7]),
        "{accepted:?}"
    );
    // Kept with the checkpoint: the newest head in the file carries the cosignature, and a pack made now verifies
    // with the witness required.
    let cosigned = haltstate_testkit::eventually(
        "a cosigned head in the file",
        Duration::from_secs(10),
        || {
            tree_heads(&checkpoints)
                .into_iter()
                .find(|(size, note)| *size == 7 && note.contains("— witness.example/w1 "))
        },
    );
    let pack = dir.join("pack.json");
    export_pack(db, "w:2:1", &pack);
    let verified = haltstate(&[
        "proof",
        "verify",
        pack.to_str().unwrap(),
        "--public-key",
        &public,
        "--witness",
        &witness.verifier_key(),
    ]);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    assert!(
        text(&verified.stdout).contains("cosigned by witness.example/w1"),
        "{}",
        text(&verified.stdout)
    );

    // `ledger consistency` proves the newest head extends an earlier one; given the wrong way round, it refuses.
    let (early_size, early) = tree_heads(&checkpoints)
        .into_iter()
        .find(|(size, _)| *size < 7)
        .unwrap();
    let (from, to) = (dir.join("from.checkpoint"), dir.join("to.checkpoint"));
    std::fs::write(&from, &early).unwrap();
    std::fs::write(&to, &cosigned.1).unwrap();
    let consistency = |from: &Path, to: &Path| {
        haltstate(&[
            "ledger",
            "consistency",
            "--db",
            db,
            "--public-key",
            &public,
            "--from",
            from.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ])
    };
    let proven = consistency(&from, &to);
    assert!(proven.status.success(), "{}", text(&proven.stderr));
    assert!(
        text(&proven.stderr).starts_with(&format!(
            "consistent: haltstate/acme's tree of 7 records extends its tree of {early_size}"
        )),
        "{}",
        text(&proven.stderr)
    );
    assert!(!text(&proven.stdout).trim().is_empty() || early_size == 0);
    assert!(!consistency(&to, &from).status.success());

    // The database is rewritten behind the server's back, its tree rebuilt over the forged record, and the
    // server started again: its next head does not extend what the witness cosigned, and the witness refuses it.
    server.signal("TERM");
    assert!(
        server
            .wait_exit(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
    forge(&setup.db, 3, |record| {
        record["reason"] = json!("rewritten");
    });
    rebuild_trees(&setup.db);
    let server = common::serve(&setup.db, &setup.policy, &args);
    let answer = guard(server.base_url(), &setup.key, 500, "w:after").await;
    assert_eq!(answer["status"], "allowed", "{answer}");
    haltstate_testkit::eventually(
        "the witness refuses the head",
        Duration::from_secs(10),
        || {
            witness
                .submissions()
                .iter()
                .any(|s| s.status == 422 && s.size == Some(8))
                .then_some(())
        },
    );
    // It had answered 409 with its size first (this server knew nothing of it), and kept its last cosigned head.
    assert!(
        witness
            .submissions()
            .iter()
            .any(|s| s.status == 409 && s.size == Some(8) && s.old == 0)
    );
    assert_eq!(witness.size_of("haltstate/acme"), 7);
    server.wait_for_log("a witness refused a tree head", 1, Duration::from_secs(10));
    // And `ledger consistency` from the cosigned head to the forged one says so.
    let forged = tree_heads(&checkpoints)
        .into_iter()
        .find(|(size, _)| *size == 8)
        .unwrap();
    std::fs::write(&from, &cosigned.1).unwrap();
    std::fs::write(&to, &forged.1).unwrap();
    let refused = consistency(&from, &to);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).starts_with("NOT CONSISTENT"),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn a_server_without_a_signing_key_warns_that_evidence_is_unsigned() {
    let setup = common::setup(POLICY);
    let server = serve(&setup.db, &setup.policy);
    server.wait_for_log("evidence is unsigned", 1, Duration::from_secs(5));
}

#[test]
fn ledger_verify_names_a_state_row_the_ledger_contradicts_and_serve_refuses_to_start_on_it() {
    let setup = common::setup(POLICY);
    {
        use haltstate_authority::{ActionRequest, Authority, GuardRequest, Outcome, OutcomeReport};
        let authority = Authority::builder(&setup.db)
            .policy_file(&setup.policy)
            .open()
            .unwrap();
        let refund = ActionRequest::new("load", "refund.create").param("amount_cents", json!(500));
        let answer = authority
            .guard("acme", GuardRequest::new(refund, "state:1"))
            .wait()
            .unwrap();
        authority
            .report(
                "acme",
                OutcomeReport::new("state:1", Outcome::Success)
                    .claim_token(answer.claim.unwrap().token),
            )
            .wait()
            .unwrap();
    }
    let db = setup.db.to_str().unwrap();
    assert!(
        haltstate(&["ledger", "verify", "--db", db])
            .status
            .success()
    );
    rusqlite::Connection::open(&setup.db)
        .unwrap()
        .execute(
            "UPDATE idempotency SET state = 'failed' WHERE key = 'state:1'",
            [],
        )
        .unwrap();
    let out = haltstate(&["ledger", "verify", "--db", db]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("state BROKEN: tenant acme: key \"state:1\": record 3 completed it, but its row says failed"),
        "{}",
        text(&out.stderr)
    );
    let refused = Command::new(env!("CARGO_BIN_EXE_haltstate"))
        .args([
            "serve",
            "--db",
            db,
            "--policy",
            setup.policy.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("state:1"),
        "{}",
        text(&refused.stderr)
    );
}

/// Runs `haltstate args` with stdout a pipe whose reader has already gone, as `haltstate ... | head -0` would.
fn with_stdout_closed(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_haltstate"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The only read end: every write the command makes fails with EPIPE.
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn a_reader_that_leaves_early_ends_no_command_in_a_panic_and_changes_no_exit_code() {
    let setup = common::setup(POLICY);
    let db = setup.db.to_str().unwrap();
    let verified = with_stdout_closed(&["ledger", "verify", "--db", db]);
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        text(&verified.stderr)
    );
    assert_eq!(text(&verified.stderr), "");
    let listed = with_stdout_closed(&["keys", "list", "--db", db, "--tenant", "acme"]);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    assert_eq!(text(&listed.stderr), "");
    // Cases that fail still fail with nobody reading which.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies");
    let failing = setup.dir.path().join("failing.toml");
    std::fs::write(
        &failing,
        "[[case]]\nname = \"small refunds are denied\"\nagent = \"bot\"\naction = \"refund.create\"\n\
         params = { amount_cents = 500 }\nexpect = \"DENY\"\n",
    )
    .unwrap();
    let policy = root.join("haltstate.cedar");
    let tested = with_stdout_closed(&[
        "policy",
        "test",
        failing.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(tested.status.code(), Some(1), "{}", text(&tested.stderr));
    assert!(
        !text(&tested.stderr).contains("panicked"),
        "{}",
        text(&tested.stderr)
    );
}

#[test]
fn serve_refuses_several_writers_on_sqlite_and_more_than_the_most_anywhere() {
    let setup = common::setup(POLICY);
    let fresh = setup.dir.path().join("fresh.db");
    let serve = |writers: &str| {
        Command::new(env!("CARGO_BIN_EXE_haltstate"))
            .args(["serve", "--db", fresh.to_str().unwrap()])
            .args(["--policy", setup.policy.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0", "--postgres-writers", writers])
            .output()
            .unwrap()
    };
    let refused = serve("2");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("a SQLite database has one writer"),
        "{}",
        text(&refused.stderr)
    );
    assert!(!fresh.exists(), "the refused server created its database");
    for out_of_range in ["0", "65"] {
        let refused = serve(out_of_range);
        assert_eq!(refused.status.code(), Some(2), "{out_of_range}");
        assert!(
            text(&refused.stderr).contains("--postgres-writers"),
            "{}",
            text(&refused.stderr)
        );
    }
}

/// Hostile (issue 21): `--help` of any command never prints a secret that an environment variable holds (clap
/// shows an `env` argument's value by default: `HALTSTATE_DB`'s URL carries the database password).
#[test]
fn no_help_page_prints_a_secret_from_the_environment() {
    const PASSWORD: &str = "s3cr3t-pw-from-env";
    let help = |path: &[String]| {
        let output = Command::new(env!("CARGO_BIN_EXE_haltstate"))
            .args(path)
            .arg("--help")
            .env(
                "HALTSTATE_DB",
                format!("postgres://haltstate:{PASSWORD}@127.0.0.1/haltstate"),
            )
            .env("HALTSTATE_SIGNING_KEY", format!("/keys/{PASSWORD}"))
            .env(
                "HALTSTATE_CHECKPOINT_FILE",
                format!("/keys/{PASSWORD}.jsonl"),
            )
            .env("HALTSTATE_API_KEY", PASSWORD)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{path:?}: {}",
            text(&output.stderr)
        );
        text(&output.stdout)
    };
    // Every command, found by walking the help pages' command lists.
    let mut pending = vec![Vec::<String>::new()];
    let mut pages = 0;
    while let Some(path) = pending.pop() {
        let page = help(&path);
        pages += 1;
        assert!(
            !page.contains(PASSWORD),
            "`haltstate {} --help` printed it:\n{page}",
            path.join(" ")
        );
        let commands = page
            .split_once("Commands:\n")
            .map(|(_, rest)| rest.split("\n\n").next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        for line in commands.lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            if !name.is_empty() && name != "help" {
                let mut next = path.clone();
                next.push(name.to_owned());
                pending.push(next);
            }
        }
    }
    assert!(pages > 20, "only {pages} help pages found");
}

/// `haltstate serve --print-config` with `env` set: its stdout and exit code.
fn print_config(args: &[&str], env: &[(&str, &str)]) -> (String, String, Option<i32>) {
    let output = Command::new(env!("CARGO_BIN_EXE_haltstate"))
        .arg("serve")
        .args(args)
        .arg("--print-config")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        text(&output.stdout),
        text(&output.stderr),
        output.status.code(),
    )
}

#[test]
fn serve_settings_come_from_flags_then_variables_then_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("haltstate.toml");
    std::fs::write(
        &file,
        "# the operator's file\n\
         db = \"postgres://app:file-s3cret@db.internal:5432/hs\"\n\
         policy = \"/etc/haltstate/policy.cedar\"\n\
         listen = \"0.0.0.0:8787\"\n\
         max-connections = 100\n\
         header-timeout = \"3s\"\n\
         no-console = true\n\
         checkpoint-url = \"https://witness:w-s3cret@witness.example/add\"\n\
         signing-key = \"/keys/signing\"\n\
         checkpoint-file = \"/keys/checkpoints.jsonl\"\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let (printed, stderr, code) = print_config(
        &["--config", config, "--listen", "127.0.0.1:9000"],
        &[
            ("HALTSTATE_MAX_CONNECTIONS", "200"),
            ("HALTSTATE_HEADER_TIMEOUT", "4s"),
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    for line in [
        "listen = \"127.0.0.1:9000\"  # flag",
        "max-connections = 200  # environment",
        "header-timeout = \"4s\"  # environment",
        "no-console = true  # file",
        "policy = \"/etc/haltstate/policy.cedar\"  # file",
        "db = \"postgres://app:***@db.internal:5432/hs\"  # file",
        "checkpoint-url = \"https://witness:***@witness.example/add\"  # file",
        "body-timeout = \"30s\"  # default",
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "{line:?} in:\n{printed}"
        );
    }
    assert!(!printed.contains("s3cret"), "{printed}");
    // What it printed is itself a configuration file that gives the same settings (named by HALTSTATE_CONFIG).
    let again = dir.path().join("printed.toml");
    std::fs::write(&again, &printed).unwrap();
    let (reprinted, stderr, code) =
        print_config(&[], &[("HALTSTATE_CONFIG", again.to_str().unwrap())]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        reprinted.contains("max-connections = 200  # file"),
        "{reprinted}"
    );

    // A misspelt key, a value of the wrong kind, a table: refused with the line, nothing served.
    for (contents, expected) in [
        (
            "listen = \"127.0.0.1:1\"\n\nmax-conections = 5\n",
            ":3: unknown key `max-conections`",
        ),
        ("no-console = \"yes\"\n", ":1: `no-console` is a switch"),
        (
            "[limits]\nmax-connections = 5\n",
            ":1: unknown key `limits`",
        ),
        (
            "listen = [\"a\"]\n",
            ":1: `listen`: expected a string or a number",
        ),
        ("listen = \n", ":1:"),
    ] {
        std::fs::write(&file, contents).unwrap();
        let (_, stderr, code) =
            print_config(&["--config", config, "--db", "x.db", "--policy", "p"], &[]);
        assert_eq!(code, Some(2), "{contents}: {stderr}");
        assert!(stderr.contains(expected), "{contents}: {stderr}");
    }
}

#[tokio::test]
async fn a_server_configured_by_file_applies_it_and_logs_json_lines() {
    let setup = common::setup(POLICY);
    let file = setup.dir.path().join("haltstate.toml");
    std::fs::write(&file, "no-console = true\nlog-format = \"json\"\n").unwrap();
    let server = common::serve(
        &setup.db,
        &setup.policy,
        &["--config", file.to_str().unwrap()],
    );
    // The file's `no-console`: no console pages.
    let console = reqwest::get(format!("{}/ui/login", server.base_url()))
        .await
        .unwrap();
    assert_eq!(console.status(), 404);
    assert_eq!(
        guard(server.base_url(), &setup.key, 100, "refund:json").await["status"],
        "allowed"
    );
    server.wait_for_log("evidence is unsigned", 1, Duration::from_secs(10));
    let log = server.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect();
    assert!(!lines.is_empty(), "{log}");
    for line in &lines {
        assert!(
            line["level"].is_string() && line["timestamp"].is_string(),
            "{line}"
        );
        assert!(line["message"].is_string(), "{line}");
    }
}

/// `promtool check metrics` on `scrape` (Prometheus's own linter; Debian's `prometheus` package, installed when
/// missing and allowed, else the test fails saying how).
fn promtool_check(scrape: &str) {
    use std::io::Write;
    let promtool = || {
        Command::new("promtool")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    haltstate_testkit::apt::ensure("the metrics test", &["prometheus"], promtool).unwrap();
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let checked = child.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{scrape}",
        text(&checked.stdout),
        text(&checked.stderr)
    );
}

/// Every family the server exports (the dashboards and alerts under deploy/ use them).
const FAMILIES: &[&str] = &[
    "haltstate_decisions_total",
    "haltstate_guard_duration_seconds",
    "haltstate_approval_wait_seconds",
    "haltstate_commit_batch_size",
    "haltstate_commit_duration_seconds",
    "haltstate_webhook_deliveries_total",
    "haltstate_approvals_pending",
    "haltstate_kill_switch_state",
    "haltstate_agents_stopped",
    "haltstate_approval_oldest_pending_seconds",
    "haltstate_ready",
];

/// The dashboard and alerts under `deploy/` read only metrics `scrape` announces, and the alert rules pass
/// promtool's check and their unit tests (`deploy/prometheus/alerts.test.yml`).
fn check_deploy_files(scrape: &str) {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy.join("grafana/haltstate.json")).unwrap(),
    )
    .unwrap();
    let mut read: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().unwrap().iter())
        .map(|target| target["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(read.len() >= 10, "{read:?}");
    read.push(std::fs::read_to_string(deploy.join("prometheus/alerts.yml")).unwrap());
    for text in &read {
        for name in text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| word.starts_with("haltstate_"))
        {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            assert!(
                scrape.contains(&format!("# TYPE {family} ")),
                "deploy/ reads {name}, which the server does not export"
            );
        }
    }
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ] {
        let ran = Command::new("promtool")
            .args(args)
            .current_dir(deploy.join("prometheus"))
            .output()
            .unwrap();
        assert!(
            ran.status.success(),
            "promtool {args:?}: {}{}",
            text(&ran.stdout),
            text(&ran.stderr)
        );
    }
}

#[tokio::test]
async fn metrics_pass_promtool_from_the_first_scrape_and_count_approvals_decided_in_the_console() {
    let setup = common::setup(POLICY);
    let db = setup.db.to_str().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_at = format!("127.0.0.1:{port}");
    let server = common::serve(&setup.db, &setup.policy, &["--metrics-listen", &metrics_at]);
    let base = server.base_url().to_owned();
    let scrape = || async {
        reqwest::get(format!("http://{metrics_at}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };

    // Before anything happened: every family announced, with its help text, and promtool content.
    let first = scrape().await;
    promtool_check(&first);
    for family in FAMILIES {
        assert!(
            first.contains(&format!("# HELP {family} "))
                && first.contains(&format!("# TYPE {family} ")),
            "{family} missing from the first scrape:\n{first}"
        );
    }
    assert_eq!(
        sample(&first, "haltstate_guard_duration_seconds_count", &[]),
        Some(0.0)
    );
    check_deploy_files(&first);

    // A tenant with evidence but nothing pending and no switch: zeros, not absent series.
    assert_eq!(
        guard(&base, &setup.key, 100, "p:small").await["status"],
        "allowed"
    );
    let quiet = scrape().await;
    promtool_check(&quiet);
    for (name, labels) in [
        ("haltstate_approvals_pending", vec!["tenant=\"acme\""]),
        ("haltstate_kill_switch_state", vec!["tenant=\"acme\""]),
        (
            "haltstate_agents_stopped",
            vec!["tenant=\"acme\"", "state=\"kill\""],
        ),
        (
            "haltstate_approval_wait_seconds_count",
            vec!["tenant=\"acme\""],
        ),
        (
            "haltstate_approval_oldest_pending_seconds",
            vec!["tenant=\"acme\""],
        ),
    ] {
        assert_eq!(sample(&quiet, name, &labels), Some(0.0), "{name}:\n{quiet}");
    }

    // An approval decided in the console counts its wait, as one decided through the API does.
    assert_eq!(sample(&quiet, "haltstate_ready", &[]), Some(1.0), "{quiet}");
    let pending = guard(&base, &setup.key, 50_000, "p:big").await;
    assert_eq!(pending["status"], "pending", "{pending}");
    let waiting = scrape().await;
    assert_eq!(
        sample(
            &waiting,
            "haltstate_approvals_pending",
            &["tenant=\"acme\""]
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &waiting,
            "haltstate_approval_oldest_pending_seconds",
            &["tenant=\"acme\""]
        )
        .is_some_and(|age| age >= 0.0),
        "{waiting}"
    );
    let id = pending["approval_id"].as_str().unwrap().to_owned();
    let created = haltstate(&[
        "keys", "create", "--db", db, "--tenant", "acme", "--name", "alice", "--role", "operator",
    ]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let operator_key = text(&created.stdout).trim().to_owned();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = browser
        .get(format!("{base}/ui/login"))
        .send()
        .await
        .unwrap();
    let form_cookie = form.headers()["set-cookie"].to_str().unwrap();
    let form_cookie = form_cookie.split(';').next().unwrap().to_owned();
    let csrf_of = |html: &str| {
        let start = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
        html[start..start + 64].to_owned()
    };
    let csrf = csrf_of(&form.text().await.unwrap());
    let signed_in = browser
        .post(format!("{base}/ui/login"))
        .header("cookie", form_cookie)
        .form(&[("tenant", "acme"), ("key", &operator_key), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    let session = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|h| h.starts_with("haltstate_session="))
        .expect("signed in")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let inbox = browser
        .get(format!("{base}/ui/inbox"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let decided = browser
        .post(format!("{base}/ui/approvals/{id}/decide"))
        .header("cookie", &session)
        .form(&[("verdict", "approve"), ("csrf", &csrf_of(&inbox))])
        .send()
        .await
        .unwrap();
    assert!(
        decided.status().is_success() || decided.status().is_redirection(),
        "{}",
        decided.status()
    );
    let after = scrape().await;
    promtool_check(&after);
    assert_eq!(
        sample(
            &after,
            "haltstate_approval_wait_seconds_count",
            &["tenant=\"acme\""]
        ),
        Some(1.0),
        "{after}"
    );
}

#[test]
fn the_shipped_systemd_unit_verifies_hardened_and_the_example_configuration_is_read() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    // The example configuration: every key one `serve` knows.
    let (printed, stderr, code) = print_config(
        &["--config", deploy.join("haltstate.toml").to_str().unwrap()],
        &[],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        printed.contains("log-format = \"json\"  # file"),
        "{printed}"
    );

    let present = || {
        Command::new("systemd-analyze")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    haltstate_testkit::apt::ensure("the systemd unit's test", &["systemd"], present).unwrap();
    // The unit as shipped, but running the binary under test (verify checks that ExecStart exists).
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(deploy.join("systemd/haltstate.service"))
        .unwrap()
        .replace("/usr/local/bin/haltstate", env!("CARGO_BIN_EXE_haltstate"));
    let path = dir.path().join("haltstate.service");
    std::fs::write(&path, unit).unwrap();
    let verified = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        verified.status.success() && verified.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        text(&verified.stdout),
        text(&verified.stderr)
    );
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let report = text(&security.stdout);
    let exposure: f64 = report
        .split("Overall exposure level for haltstate.service: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|level| level.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}{}", text(&security.stderr)));
    // systemd's scale: 0 (locked down) to 10 (unprotected); 2.0 and under reads "OK".
    assert!(exposure <= 2.0, "exposure {exposure}:\n{report}");
}

#[tokio::test]
async fn a_backup_taken_while_guards_commit_restores_and_verifies_against_its_checkpoints() {
    let setup = common::setup(POLICY);
    let dir = setup.dir.path();
    let (key_file, checkpoints) = (dir.join("signing.key"), dir.join("checkpoints.jsonl"));
    let public = create_signing_key(&key_file);
    let server = common::serve(
        &setup.db,
        &setup.policy,
        &[
            "--signing-key",
            key_file.to_str().unwrap(),
            "--checkpoint-file",
            checkpoints.to_str().unwrap(),
            "--checkpoint-every",
            "50ms",
        ],
    );
    // Guards committing all along, from four callers.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let callers: Vec<_> = (0..4)
        .map(|caller| {
            let (base, key) = (server.base_url().to_owned(), setup.key.clone());
            let (stop, done) = (stop.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let answer = guard(&base, &key, 500, &format!("b:{caller}:{i}")).await;
                    assert_eq!(answer["status"], "allowed", "{answer}");
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    let guards_done = |n: usize| {
        let done = done.clone();
        move || (done.load(std::sync::atomic::Ordering::Relaxed) >= n).then_some(())
    };
    haltstate_testkit::eventually_async("guards committing", Duration::from_secs(20), {
        let ready = guards_done(100);
        move || {
            let ready = ready();
            async move { ready }
        }
    })
    .await;
    haltstate_testkit::eventually("a checkpoint", Duration::from_secs(10), || {
        std::fs::read_to_string(&checkpoints)
            .ok()
            .filter(|lines| !lines.is_empty())
    });
    let copy = dir.join("backup.db");
    let (db, copy_arg, checkpoints_arg) = (
        setup.db.to_str().unwrap().to_owned(),
        copy.to_str().unwrap().to_owned(),
        checkpoints.to_str().unwrap().to_owned(),
    );
    let backed_up = tokio::task::spawn_blocking(move || {
        haltstate(&[
            "db",
            "backup",
            "--db",
            &db,
            "--out",
            &copy_arg,
            "--checkpoint-file",
            &checkpoints_arg,
        ])
    })
    .await
    .unwrap();
    let during = done.load(std::sync::atomic::Ordering::Relaxed);
    assert!(backed_up.status.success(), "{}", text(&backed_up.stderr));
    assert!(
        text(&backed_up.stdout).contains("ledger ok"),
        "{}",
        text(&backed_up.stdout)
    );
    // The guards went on while the copy was taken, and after.
    haltstate_testkit::eventually_async("guards after the backup", Duration::from_secs(20), {
        let ready = guards_done(during + 50);
        move || {
            let ready = ready();
            async move { ready }
        }
    })
    .await;
    // ... and the server signed a head past the copy's end.
    let copied: u64 = text(&backed_up.stdout)
        .split("ledger ok: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap();
    haltstate_testkit::eventually(
        "a checkpoint past the copy",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&checkpoints)
                .ok()?
                .lines()
                .find(|line| {
                    serde_json::from_str::<Value>(line).is_ok_and(|c| {
                        c["checkpoint"]["seq"]
                            .as_u64()
                            .is_some_and(|seq| seq > copied)
                    })
                })
                .map(drop)
        },
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for caller in callers {
        caller.await.unwrap();
    }
    let again = haltstate(&[
        "db",
        "backup",
        "--db",
        setup.db.to_str().unwrap(),
        "--out",
        copy.to_str().unwrap(),
    ]);
    assert!(!again.status.success(), "a backup never overwrites");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in [copy.clone(), dir.join("backup.db.checkpoints.jsonl")] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
    }
    drop(server);

    // The restore: the copy in the database's place, verified against the checkpoints saved with it.
    let restored = dir.join("restored.db");
    std::fs::copy(&copy, &restored).unwrap();
    let verified = haltstate(&[
        "ledger",
        "verify",
        "--db",
        restored.to_str().unwrap(),
        "--checkpoints",
        dir.join("backup.db.checkpoints.jsonl").to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(
        verified.status.success(),
        "{}{}",
        text(&verified.stdout),
        text(&verified.stderr)
    );
    // The server's file has since signed records the copy lacks: verified against it, the copy is a truncation.
    let against_later = haltstate(&[
        "ledger",
        "verify",
        "--db",
        restored.to_str().unwrap(),
        "--checkpoints",
        checkpoints.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(
        !against_later.status.success(),
        "{}",
        text(&against_later.stdout)
    );
    // And the restored copy serves.
    let server = common::serve(&restored, &setup.policy, &[]);
    assert_eq!(
        guard(server.base_url(), &setup.key, 500, "after-restore").await["status"],
        "allowed"
    );
}

#[tokio::test]
async fn a_postgres_authority_dumped_with_pg_dump_restores_and_verifies() {
    let pg = haltstate_testkit::postgres::PgServer::shared();
    let url = tokio::task::spawn_blocking(|| pg.create_database())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.cedar");
    std::fs::write(&policy, POLICY).unwrap();
    let created = haltstate(&[
        "keys", "create", "--db", &url, "--tenant", "acme", "--name", "bot", "--role", "agent",
    ]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let key = text(&created.stdout).trim().to_owned();
    let server = ServeProcess::start(
        Path::new(env!("CARGO_BIN_EXE_haltstate")),
        &url,
        &policy,
        &[],
    );
    for i in 0..20 {
        let answer = guard(server.base_url(), &key, 500, &format!("pg:{i}")).await;
        assert_eq!(answer["status"], "allowed", "{answer}");
    }
    // The documented path (README, "Backups"): pg_dump's custom format, while the server runs.
    let dump = dir.path().join("haltstate.dump");
    let dumped = Command::new(pg.program("pg_dump"))
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(&url)
        .output()
        .unwrap();
    assert!(dumped.status.success(), "{}", text(&dumped.stderr));
    drop(server);
    let restored = tokio::task::spawn_blocking(|| pg.create_database())
        .await
        .unwrap();
    let loaded = Command::new(pg.program("pg_restore"))
        .args(["--no-owner", "--exit-on-error", "--dbname", &restored])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{}", text(&loaded.stderr));
    let verified = haltstate(&["ledger", "verify", "--db", &restored]);
    assert!(
        verified.status.success(),
        "{}{}",
        text(&verified.stdout),
        text(&verified.stderr)
    );
    // The key's creation and 20 guards.
    assert!(
        text(&verified.stdout).contains("21 records"),
        "{}",
        text(&verified.stdout)
    );
}

/// `haltstate audit` is the audit's command line: the table and summary on stdout, `--fail-on` for CI.
#[test]
fn audit_reports_the_side_effects_no_guard_covers() {
    let shop = Path::new(env!("CARGO_MANIFEST_DIR")).join("../haltstate-audit/tests/fixtures/shop");
    let shop = shop.to_str().unwrap();
    let report = haltstate(&["audit", shop]);
    assert!(report.status.success(), "{}", text(&report.stderr));
    let table = text(&report.stdout);
    assert!(
        table.contains("src/main.rs:12")
            && table.contains("crate::main is the program's entry point"),
        "{table}"
    );
    assert!(
        table
            .trim_end()
            .ends_with("25 sinks: 10 covered, 11 uncovered, 3 unknown, 1 allowed"),
        "{table}"
    );
    let gate = haltstate(&["audit", shop, "--fail-on", "uncovered", "--format", "json"]);
    assert_eq!(gate.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&gate.stdout).unwrap();
    assert_eq!(json["summary"]["uncovered"], 11);
}

/// `ledger tree-head`: a tenant's Merkle tree head as a C2SP checkpoint, signed as a C2SP note with the signing
/// key; the note verifies with the key's public half and names the tree the authority holds.
#[test]
fn ledger_tree_head_prints_a_signed_c2sp_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hs.db");
    let authority = haltstate_authority::Authority::builder(&db)
        .policy_source(
            "p.cedar",
            r#"@id("all") permit(principal, action, resource);"#,
        )
        .open()
        .unwrap();
    for i in 0..5 {
        let request = haltstate_authority::GuardRequest::new(
            haltstate_authority::ActionRequest::new("bot", "export"),
            format!("export:{i}"),
        );
        authority.guard("acme", request).wait().unwrap();
    }
    let head = authority.tree_head("acme").unwrap();
    drop(authority);
    let key_path = dir.path().join("signing.key");
    create_signing_key(&key_path);
    let origin = "haltstate.example/acme";
    let db_arg = db.to_str().unwrap();
    let signed = haltstate(&[
        "ledger",
        "tree-head",
        "--db",
        db_arg,
        "--tenant",
        "acme",
        "--origin",
        origin,
        "--signing-key",
        key_path.to_str().unwrap(),
    ]);
    assert!(signed.status.success(), "{}", text(&signed.stderr));
    let note = text(&signed.stdout);
    assert!(note.starts_with(&format!("{origin}\n5\n")), "{note}");
    let key = haltstate_authority::SigningKey::from_file(&key_path).unwrap();
    let verified =
        haltstate_authority::tree_checkpoint::verify_tree_head(&note, origin, &key.public())
            .unwrap();
    assert_eq!(verified, head);
    assert!(text(&signed.stderr).contains(&format!("verifier key: {origin}+")));
    // Unsigned, the checkpoint's three lines; a name with a space is refused.
    let plain = haltstate(&["ledger", "tree-head", "--db", db_arg, "--tenant", "acme"]);
    assert_eq!(
        text(&plain.stdout).lines().count(),
        3,
        "{}",
        text(&plain.stdout)
    );
    assert!(text(&plain.stdout).starts_with("haltstate/acme\n5\n"));
    let bad = haltstate(&[
        "ledger",
        "tree-head",
        "--db",
        db_arg,
        "--tenant",
        "acme",
        "--origin",
        "a b",
    ]);
    assert!(!bad.status.success());
}

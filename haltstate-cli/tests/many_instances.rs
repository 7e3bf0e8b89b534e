//! Many `haltstate serve` processes on one PostgreSQL database (a real server the tests start): shared keys are
//! claimed once across instances, an approval made on one instance releases a guard waiting on another, and
//! killing an instance (`kill -9`) or restarting the database mid-load loses nothing acknowledged.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use haltstate::{Action, GuardError, HaltStateClient};
use haltstate_authority::{Authority, Database, Role};
use haltstate_testkit::postgres::PgServer;
use haltstate_testkit::{ServeProcess, eventually, outcomes};
use tempfile::TempDir;

const POLICY: &str = r#"
@id("small") permit(principal, action == Action::"refund.create", resource)
    when { context.params.amount_cents <= 1000 };
@id("big") @approval("required") permit(principal, action == Action::"refund.create", resource)
    when { context.params.amount_cents > 1000 };
"#;

/// Tenants with an agent key each: `acme`, which also has an operator key, first.
const TENANTS: [&str; 4] = ["acme", "globex", "initech", "umbrella"];

/// A database on `server`, a policy file, an agent key and an operator key of tenant `acme`, and an agent key of
/// each other tenant of [`TENANTS`].
struct Deployment {
    dir: TempDir,
    url: String,
    policy: PathBuf,
    agent: String,
    operator: String,
    /// Each tenant's agent key, in [`TENANTS`]' order.
    agents: Vec<String>,
}

fn deploy(server: &PgServer) -> Deployment {
    let dir = tempfile::tempdir().unwrap();
    let url = server.create_database();
    let policy = dir.path().join("p.cedar");
    std::fs::write(&policy, POLICY).unwrap();
    let authority = Authority::builder(Database::parse(&url)).open().unwrap();
    let agent = authority
        .create_key("acme", "load", Role::Agent)
        .wait()
        .unwrap()
        .secret;
    let operator = authority
        .create_key("acme", "alice", Role::Operator)
        .wait()
        .unwrap()
        .secret;
    let mut agents = vec![agent.clone()];
    for tenant in &TENANTS[1..] {
        let key = authority.create_key(tenant, "load", Role::Agent).wait();
        agents.push(key.unwrap().secret);
    }
    Deployment {
        dir,
        url,
        policy,
        agent,
        operator,
        agents,
    }
}

impl Deployment {
    fn serve(&self) -> ServeProcess {
        ServeProcess::start(bin(), &self.url, &self.policy, &[])
    }

    fn client(&self, instance: &ServeProcess, deadline: Duration) -> HaltStateClient {
        self.client_of(0, instance, deadline)
    }

    /// A client of [`TENANTS`]`[tenant]`.
    fn client_of(
        &self,
        tenant: usize,
        instance: &ServeProcess,
        deadline: Duration,
    ) -> HaltStateClient {
        HaltStateClient::builder()
            .base_url(instance.base_url())
            .tenant(TENANTS[tenant])
            .api_key(&self.agents[tenant])
            .agent_id("load")
            .request_timeout(Duration::from_millis(1000))
            .deadline(deadline)
            .spool_dir(self.dir.path().join("spool"))
            .build()
            .unwrap()
    }

    fn authority(&self) -> Authority {
        Authority::builder(Database::parse(&self.url))
            .open()
            .unwrap()
    }
}

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_haltstate"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn three_instances_64_workers_on_shared_keys_run_each_body_once() {
    const ROUNDS: usize = 200;
    const WORKERS: usize = 64;
    let deployment = deploy(PgServer::shared());
    let instances: Vec<ServeProcess> = (0..3).map(|_| deployment.serve()).collect();
    let clients: Vec<HaltStateClient> = instances
        .iter()
        .map(|i| deployment.client(i, Duration::from_secs(20)))
        .collect();
    let bodies: Arc<Mutex<HashMap<usize, u32>>> = Arc::default();
    let unexpected: Arc<Mutex<Vec<String>>> = Arc::default();
    let runtime = runtime();
    let tasks: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let (client, bodies, unexpected) = (
                clients[worker % 3].clone(),
                bodies.clone(),
                unexpected.clone(),
            );
            runtime.spawn(async move {
                for round in 0..ROUNDS {
                    let action = Action::new("refund.create")
                        .key(format!("round:{round}"))
                        .param("amount_cents", 100);
                    match client.guard(action).await {
                        Ok(permit) => {
                            *bodies.lock().unwrap().entry(round).or_default() += 1;
                            if let Err(error) = permit.complete().await {
                                unexpected
                                    .lock()
                                    .unwrap()
                                    .push(format!("complete: {error}"));
                            }
                        }
                        Err(
                            GuardError::InProgress { .. } | GuardError::AlreadyCompleted { .. },
                        ) => {}
                        Err(other) => unexpected
                            .lock()
                            .unwrap()
                            .push(format!("worker {worker} round {round}: {other}")),
                    }
                }
            })
        })
        .collect();
    runtime.block_on(async {
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert!(
        unexpected.lock().unwrap().is_empty(),
        "{:?}",
        unexpected.lock().unwrap()
    );
    let bodies = bodies.lock().unwrap().clone();
    let not_once: Vec<_> = (0..ROUNDS)
        .filter(|round| bodies.get(round) != Some(&1))
        .map(|round| (round, bodies.get(&round).copied().unwrap_or(0)))
        .collect();
    assert!(
        not_once.is_empty(),
        "rounds whose body did not run exactly once: {not_once:?}"
    );
    let authority = deployment.authority();
    for round in 0..ROUNDS {
        assert_eq!(
            outcomes(&authority, "acme", &format!("round:{round}")),
            [haltstate_authority::Outcome::Success],
            "round {round}"
        );
    }
    authority.verify_ledger().unwrap();
    let report = authority.verify_tenant_ledger("acme").unwrap();
    // Every guard of every worker is a record (granted or refused), every completion, and the creation of acme's
    // two keys.
    assert_eq!(report.records as usize, ROUNDS * WORKERS + ROUNDS + 2);
}

#[test]
fn an_approval_made_on_one_instance_releases_a_guard_waiting_on_another() {
    let deployment = deploy(PgServer::shared());
    let (a, c) = (deployment.serve(), deployment.serve());
    let on_c = deployment.client(&c, Duration::from_secs(10));
    let runtime = runtime();
    let big = || {
        Action::new("refund.create")
            .key("refund:big")
            .param("amount_cents", 50_000)
    };
    let approval_id = match runtime.block_on(on_c.guard(big())) {
        Err(GuardError::ApprovalPending { approval_id, .. }) => approval_id,
        other => panic!("expected an approval: {other:?}"),
    };
    // The waiter on C listens to C's stream; the decision is made on A, through its operator API (the CLI).
    let mut stream = on_c.subscribe_approvals(None);
    let approved = std::process::Command::new(bin())
        .args([
            "approvals",
            "approve",
            &approval_id,
            "--server",
            a.base_url(),
        ])
        .args(["--tenant", "acme", "--reason", "checked"])
        .env("HALTSTATE_API_KEY", &deployment.operator)
        .output()
        .unwrap();
    assert!(approved.status.success(), "{approved:?}");
    let decided = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match stream.next().await {
                    Some(Ok(decision)) if decision.request_id == approval_id => break decision,
                    Some(_) => {}
                    None => panic!("C's approvals stream ended"),
                }
            }
        })
        .await
    });
    let decided = decided.expect("C's stream did not deliver the decision made on A");
    assert_eq!(
        decided.status,
        haltstate::Lenient::Known(haltstate::ApprovalStatus::Approved),
        "{decided:?}"
    );
    // The agent's retry with the same key, on C, runs.
    let permit = runtime.block_on(on_c.guard(big())).unwrap();
    runtime.block_on(permit.complete()).unwrap();
    assert_eq!(
        outcomes(&deployment.authority(), "acme", "refund:big"),
        [haltstate_authority::Outcome::Success]
    );
}

/// (Tenant, key) -> (claims granted, completion acknowledged).
type Granted = HashMap<(usize, String), (u32, bool)>;

/// Workers drive unique keys of every tenant through every instance (each instance writing for several tenants on
/// its writer connections) while `fault` strikes once `before` completions were acknowledged; the run goes on until
/// `after` more were. Nothing acknowledged is lost, nothing granted twice.
fn load_through(
    deployment: &Deployment,
    instances: &[ServeProcess],
    deadline: Duration,
    before: usize,
    after: usize,
    fault: impl FnOnce(),
) {
    // Worker w: tenant w mod 4, instance (w / 4) mod the instances: every tenant on every instance.
    let client_of = |worker: usize| {
        let instance = &instances[(worker / TENANTS.len()) % instances.len()];
        deployment.client_of(worker % TENANTS.len(), instance, deadline)
    };
    let granted: Arc<Mutex<Granted>> = Arc::default();
    let unexpected: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let per_tenant: Arc<[AtomicUsize; TENANTS.len()]> = Arc::default();
    let runtime = runtime();
    let tasks: Vec<_> = (0..24)
        .map(|worker| {
            let tenant = worker % TENANTS.len();
            let (client, granted, unexpected, stop, acknowledged, per_tenant) = (
                client_of(worker),
                granted.clone(),
                unexpected.clone(),
                stop.clone(),
                acknowledged.clone(),
                per_tenant.clone(),
            );
            runtime.spawn(async move {
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let key = format!("w{worker}:{n}");
                    let action = Action::new("refund.create")
                        .key(&key)
                        .param("amount_cents", 100);
                    match client.guard(action).await {
                        Ok(permit) => {
                            let entry = (tenant, key.clone());
                            granted.lock().unwrap().entry(entry.clone()).or_default().0 += 1;
                            if permit.complete().await.is_ok() {
                                granted.lock().unwrap().entry(entry).or_default().1 = true;
                                acknowledged.fetch_add(1, Ordering::Relaxed);
                                per_tenant[tenant].fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        // An instance that is gone, or a database that was away past the deadline.
                        Err(GuardError::Connection(_)) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(other) => unexpected.lock().unwrap().push(format!("{key}: {other}")),
                    }
                }
            })
        })
        .collect();
    eventually(
        &format!("{before} completions before the fault"),
        Duration::from_secs(120),
        || (acknowledged.load(Ordering::Relaxed) >= before).then_some(()),
    );
    fault();
    let target = acknowledged.load(Ordering::Relaxed) + after;
    let at_fault: Vec<usize> = per_tenant
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .collect();
    eventually(
        &format!("{after} more completions after the fault"),
        Duration::from_secs(120),
        || (acknowledged.load(Ordering::Relaxed) >= target).then_some(()),
    );
    // Every tenant's writer came back, not only some.
    eventually(
        "completions of every tenant after the fault",
        Duration::from_secs(120),
        || {
            let counts = per_tenant.iter().map(|n| n.load(Ordering::Relaxed));
            counts
                .zip(&at_fault)
                .all(|(now, then)| now > *then)
                .then_some(())
        },
    );
    stop.store(true, Ordering::Relaxed);
    runtime.block_on(async {
        for task in tasks {
            task.await.unwrap();
        }
    });
    let granted = granted.lock().unwrap().clone();
    let authority = deployment.authority();
    let twice: Vec<_> = granted.iter().filter(|(_, (n, _))| *n > 1).collect();
    let lost: Vec<_> = granted
        .iter()
        .filter(|(_, (_, acked))| *acked)
        .filter(|((tenant, key), _)| outcomes(&authority, TENANTS[*tenant], key).is_empty())
        .collect();
    println!(
        "{} keys granted, {} acknowledged, {} lost, {} twice, {} unexpected",
        granted.len(),
        granted.values().filter(|(_, a)| *a).count(),
        lost.len(),
        twice.len(),
        unexpected.lock().unwrap().len()
    );
    assert!(
        lost.is_empty(),
        "acknowledged but not in the ledger: {lost:?}"
    );
    assert!(twice.is_empty(), "granted twice: {twice:?}");
    assert!(
        unexpected.lock().unwrap().is_empty(),
        "{:?}",
        unexpected.lock().unwrap()
    );
    assert_eq!(
        authority.verify_ledger().unwrap().chains.len(),
        TENANTS.len()
    );
}

#[test]
fn killing_one_instance_mid_load_loses_nothing_and_the_others_keep_serving() {
    let deployment = deploy(PgServer::shared());
    let mut instances: Vec<ServeProcess> = (0..3).map(|_| deployment.serve()).collect();
    let victim = instances[1].id();
    // The clients of the killed instance fail over to nothing (they keep failing); the others carry the load.
    load_through(
        &deployment,
        &instances,
        Duration::from_secs(2),
        300,
        600,
        || {
            std::process::Command::new("kill")
                .args(["-9", &victim.to_string()])
                .status()
                .unwrap();
        },
    );
    assert!(instances[1].wait_exit(Duration::from_secs(5)).is_some());
    instances[0].kill();
    instances[2].kill();
}

#[test]
fn restarting_the_database_mid_load_loses_nothing() {
    // A server of this test's own: stopping it must not disturb the other tests.
    let server = PgServer::start();
    let deployment = deploy(&server);
    let instances: Vec<ServeProcess> = (0..2).map(|_| deployment.serve()).collect();
    // Clients retry (503 with Retry-After, refused connections) within a deadline longer than the restart.
    load_through(
        &deployment,
        &instances,
        Duration::from_secs(30),
        300,
        300,
        || {
            server.stop();
            server.start_again();
        },
    );
}

#[test]
fn a_database_lost_while_serving_answers_503_with_retry_after_then_recovers() {
    let server = PgServer::start();
    let deployment = deploy(&server);
    let instance = deployment.serve();
    let runtime = runtime();
    let http = reqwest::Client::new();
    let guard = |key: &str| {
        runtime.block_on(async {
            let response = http
                .post(format!("{}/api/sentinel/action/guard", instance.base_url()))
                .header("X-API-Key", &deployment.agent)
                .header("X-Tenant-ID", "acme")
                .json(&serde_json::json!({
                    "agent_id": "load",
                    "action": "refund.create",
                    "idempotency_key": key,
                    "params": {"amount_cents": 100},
                }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            (status, retry_after, body)
        })
    };
    assert_eq!(guard("before").0, 200);
    server.stop();
    // Never a decision, never "unauthenticated": the authority cannot answer, and says when to retry.
    let (status, retry_after, body) = guard("during");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "unavailable", "{body}");
    assert!(retry_after.is_some(), "no Retry-After");
    server.start_again();
    let (status, _, body) = guard("during");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "allowed", "{body}");
}

#[test]
fn an_unreachable_database_at_start_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.cedar");
    std::fs::write(&policy, POLICY).unwrap();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://haltstate:hunter2secret@127.0.0.1:{closed_port}/haltstate");
    let out = std::process::Command::new(bin())
        .args(["serve", "--db", &url, "--policy"])
        .arg(&policy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "postgres://haltstate:***@127.0.0.1:{closed_port}/haltstate"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
}

#[test]
fn a_newer_schema_refuses_to_start_and_is_left_alone() {
    let server = PgServer::shared();
    let deployment = deploy(server);
    let mut client = postgres::Client::connect(&deployment.url, postgres::NoTls).unwrap();
    client
        .batch_execute("UPDATE haltstate_schema SET version = 99")
        .unwrap();
    let out = std::process::Command::new(bin())
        .args(["serve", "--db", &deployment.url, "--policy"])
        .arg(&deployment.policy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("schema version 99 is newer"), "{stderr}");
    let version: i64 = client
        .query_one("SELECT version FROM haltstate_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, 99);
    // `ledger verify` refuses it too, rather than guessing.
    let out = std::process::Command::new(bin())
        .args(["ledger", "verify", "--db", &deployment.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn db_copy_moves_a_sqlite_authority_chain_and_all_and_verify_catches_an_edit_there() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hs.db");
    let key = {
        let authority = Authority::builder(&file)
            .policy_source("p.cedar", POLICY)
            .open()
            .unwrap();
        let key = authority
            .create_key("acme", "load", Role::Agent)
            .wait()
            .unwrap()
            .secret;
        for tenant in ["acme", "globex"] {
            for i in 0..5 {
                let request = haltstate_authority::GuardRequest::new(
                    haltstate_authority::ActionRequest::new("load", "refund.create")
                        .param("amount_cents", serde_json::json!(100 * (i + 1) * (i + 1))),
                    format!("refund:{i}"),
                );
                authority.guard(tenant, request).wait().unwrap();
            }
        }
        let heads = ["acme", "globex"].map(|tenant| authority.tree_head(tenant).unwrap());
        let proof = authority.inclusion_proof("acme", 2, 6).unwrap();
        (key, heads, proof)
    };
    let (key, heads, proof) = key;
    let url = PgServer::shared().create_database();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let file_arg = file.display().to_string();
    let (code, stdout, stderr) = run(&["db", "copy", "--from", &file_arg, "--to", &url]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    // Ten guards and the key's creation.
    assert!(
        stdout.contains("ledger ok: 11 records in 2 tenant chain(s)"),
        "{stdout}"
    );
    let (code, stdout, _) = run(&["ledger", "verify", "--db", &url]);
    assert_eq!(code, Some(0));
    let (_, from_file, _) = run(&["ledger", "verify", "--db", &file_arg]);
    assert_eq!(stdout, from_file, "the copy's chains are the file's");
    // What the file held works on the copy: its key, its pending approvals, its completed keys.
    let copy = Authority::builder(Database::parse(&url)).open().unwrap();
    assert_eq!(copy.authenticate("acme", &key).unwrap().name, "load");
    // ... and its trees: SQLite keeps a record's hashes in its row, PostgreSQL one row per hash.
    assert_eq!(
        ["acme", "globex"].map(|tenant| copy.tree_head(tenant).unwrap()),
        heads
    );
    assert_eq!(copy.inclusion_proof("acme", 2, 6).unwrap(), proof);
    // ... and each chain's last time, which PostgreSQL's head rows keep (its schema 25) and SQLite's do not.
    let unset: i64 = postgres::Client::connect(&url, postgres::NoTls)
        .unwrap()
        .query_one(
            "SELECT count(*) FROM ledger_heads AS head JOIN ledger AS record \
             ON record.tenant = head.tenant AND record.seq = head.seq WHERE head.at IS DISTINCT FROM record.at",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(unset, 0, "every head row holds its last record's time");
    assert_eq!(
        copy.approvals(
            "globex",
            Some(haltstate_authority::ApprovalStatus::Pending),
            100
        )
        .unwrap()
        .len(),
        2
    );
    drop(copy);
    // A second copy into the same database is refused: it holds data now.
    let (code, _, stderr) = run(&["db", "copy", "--from", &file_arg, "--to", &url]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("already holds HaltState data"), "{stderr}");
    // An edit in PostgreSQL is caught like one in the file, naming the tenant and the record.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .batch_execute(
            "UPDATE ledger SET body = convert_to(replace(convert_from(body, 'UTF8'), 'refund:2', 'refund:9'), 'UTF8') \
             WHERE tenant = 'globex' AND seq = 3",
        )
        .unwrap();
    let (code, _, stderr) = run(&["ledger", "verify", "--db", &url]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("tenant globex, record 3: its content does not match its hash"),
        "{stderr}"
    );
}

#[test]
fn three_instances_send_each_webhook_event_once() {
    use haltstate_authority::webhooks::WebhookSpec;
    use haltstate_authority::{KillScope, KillState};

    let deployment = deploy(PgServer::shared());
    let receiver = haltstate_testkit::WebhookReceiver::start();
    let authority = deployment.authority();
    authority
        .add_webhook("acme", WebhookSpec::new(&receiver.url()).unwrap(), "oncall")
        .wait()
        .unwrap();
    let args = ["--webhook-retry-base", "50ms", "--allow-private-targets"];
    let _instances: Vec<ServeProcess> = (0..3)
        .map(|_| ServeProcess::start(bin(), &deployment.url, &deployment.policy, &args))
        .collect();
    // Some attempts fail, so retries are claimed again too, by whichever instance looks first.
    receiver.answer_next(&[500; 6]);
    const EVENTS: usize = 30;
    for i in 0..EVENTS {
        let scope = KillScope::Agent {
            tenant: "acme".into(),
            agent_id: format!("agent-{i}"),
        };
        authority
            .set_kill_switch(scope, KillState::Pause, "oncall")
            .wait()
            .unwrap();
    }
    let received = eventually("every event delivered", Duration::from_secs(30), || {
        let received = receiver.received();
        (received.iter().filter(|r| r.answered == 200).count() >= EVENTS).then_some(received)
    });
    let mut successes: HashMap<&str, usize> = HashMap::new();
    for request in received.iter().filter(|r| r.answered == 200) {
        *successes.entry(request.id.as_str()).or_default() += 1;
    }
    assert_eq!(successes.len(), EVENTS, "{successes:?}");
    assert!(successes.values().all(|&n| n == 1), "{successes:?}");
    eventually("the outbox says delivered", Duration::from_secs(30), || {
        let listed = authority.webhook_deliveries("acme", 100).unwrap();
        listed
            .iter()
            .all(|d| d.state == haltstate_authority::webhooks::DeliveryState::Delivered)
            .then_some(())
    });
    // Every attempt the instances made is one the receiver got: none was lost or doubled on the way.
    let attempts: u32 = authority
        .webhook_deliveries("acme", 100)
        .unwrap()
        .iter()
        .map(|d| d.attempts)
        .sum();
    assert_eq!(attempts as usize, receiver.received().len());
}

#[test]
fn a_usage_limit_holds_across_three_instances_under_64_concurrent_guards() {
    const LIMIT: usize = 20;
    let deployment = deploy(PgServer::shared());
    std::fs::write(
        &deployment.policy,
        format!(
            r#"@id("exports.hourly") permit(principal, action == Action::"data.export", resource)
               when {{ context.usage.hour.count < {LIMIT} }};"#
        ),
    )
    .unwrap();
    let instances: Vec<ServeProcess> = (0..3).map(|_| deployment.serve()).collect();
    let clients: Vec<HaltStateClient> = instances
        .iter()
        .map(|i| deployment.client(i, Duration::from_secs(20)))
        .collect();
    let runtime = runtime();
    let tasks: Vec<_> = (0..64)
        .map(|worker| {
            let client = clients[worker % 3].clone();
            runtime.spawn(async move {
                let action = Action::new("data.export").key(format!("export:{worker}"));
                match client.guard(action).await {
                    Ok(permit) => {
                        permit.complete().await.unwrap();
                        true
                    }
                    Err(GuardError::ActionDenied { .. }) => false,
                    Err(other) => panic!("worker {worker}: {other}"),
                }
            })
        })
        .collect();
    let allowed = runtime.block_on(async {
        let mut allowed = 0;
        for task in tasks {
            allowed += usize::from(task.await.unwrap());
        }
        allowed
    });
    assert_eq!(allowed, LIMIT, "the hourly limit admitted {allowed}");
}

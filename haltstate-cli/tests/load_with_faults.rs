//! Load with faults: our client drives guarded actions while the real server is killed (SIGKILL) and restarted on
//! the same port and file, again and again. Nothing acknowledged is lost, no key is granted twice, and every error
//! the callers see is a typed, expected one.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use haltstate::{Action, GuardError, HaltStateClient};
use haltstate_authority::{Authority, EvidenceKind, EvidenceQuery};

const POLICY: &str =
    r#"@id("small") permit(principal, action == Action::"refund.create", resource);"#;

fn serve(db: &Path, policy: &Path, port: u16) -> Child {
    common::serve(db, policy, &format!("127.0.0.1:{port}")).0
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(total: Duration, restart_every: Duration, workers: usize) {
    let common::Setup {
        dir: _dir,
        db,
        policy,
        key,
    } = common::setup(POLICY);
    let port = free_port();
    let server = Arc::new(Mutex::new(serve(&db, &policy, port)));
    let client = HaltStateClient::builder()
        .base_url(format!("http://127.0.0.1:{port}"))
        .tenant("acme")
        .api_key(&key)
        .agent_id("load")
        .request_timeout(Duration::from_millis(500))
        .deadline(Duration::from_secs(3))
        .build()
        .unwrap();

    // Per key: how many times a permit was granted, and whether its completion was acknowledged.
    let granted: Arc<Mutex<HashMap<String, (u32, bool)>>> = Arc::default();
    let unexpected: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let (client, granted, unexpected, stop) = (
                client.clone(),
                granted.clone(),
                unexpected.clone(),
                stop.clone(),
            );
            runtime.spawn(async move {
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let idempotency_key = format!("w{worker}:{n}");
                    match client
                        .guard(
                            Action::new("refund.create")
                                .key(&idempotency_key)
                                .param("amount_cents", 100),
                        )
                        .await
                    {
                        Ok(permit) => {
                            granted
                                .lock()
                                .unwrap()
                                .entry(idempotency_key.clone())
                                .or_default()
                                .0 += 1;
                            if permit.complete().await.is_ok() {
                                granted
                                    .lock()
                                    .unwrap()
                                    .entry(idempotency_key)
                                    .or_default()
                                    .1 = true;
                            }
                        }
                        // The authority was down for longer than the deadline: expected while it restarts.
                        Err(GuardError::Connection(_)) => {
                            tokio::time::sleep(Duration::from_millis(20)).await
                        }
                        Err(other) => unexpected
                            .lock()
                            .unwrap()
                            .push(format!("{idempotency_key}: {other}")),
                    }
                }
            })
        })
        .collect();

    let started = Instant::now();
    let mut restarts = 0;
    while started.elapsed() < total {
        std::thread::sleep(restart_every);
        let mut current = server.lock().unwrap();
        current.kill().unwrap(); // SIGKILL
        current.wait().unwrap();
        *current = serve(&db, &policy, port);
        restarts += 1;
    }
    stop.store(true, Ordering::Relaxed);
    runtime.block_on(async {
        for task in tasks {
            task.await.unwrap();
        }
    });

    let granted = granted.lock().unwrap().clone();
    let authority = Authority::builder(&db).open().unwrap();
    let twice: Vec<_> = granted
        .iter()
        .filter(|(_, (count, _))| *count > 1)
        .map(|(k, _)| k.clone())
        .collect();
    let lost: Vec<_> = granted
        .iter()
        .filter(|(_, (_, acknowledged))| *acknowledged)
        .filter(|(k, _)| {
            !authority
                .evidence(
                    "acme",
                    &EvidenceQuery {
                        idempotency_key: Some((*k).clone()),
                        ..Default::default()
                    },
                )
                .unwrap()
                .iter()
                .any(|r| r.kind == EvidenceKind::Outcome)
        })
        .map(|(k, _)| k.clone())
        .collect();
    let acknowledged = granted.values().filter(|(_, a)| *a).count();
    println!(
        "load with faults: {:?}, {restarts} restarts, {} keys granted, {acknowledged} completions acknowledged, {} lost, {} granted twice, {} unexpected errors",
        total,
        granted.len(),
        lost.len(),
        twice.len(),
        unexpected.lock().unwrap().len()
    );
    assert!(
        restarts >= 2 && acknowledged > 100,
        "the run did too little: {restarts} restarts, {acknowledged} acknowledged"
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
    authority.verify_ledger().unwrap();
    let mut last = server.lock().unwrap();
    last.kill().unwrap();
    last.wait().unwrap();
}

/// The short variant that runs in CI: 15 seconds, a restart every 3.
#[test]
fn restarts_under_load_lose_nothing_and_grant_nothing_twice() {
    run(Duration::from_secs(15), Duration::from_secs(3), 16);
}

/// The long variant: `cargo test -p haltstate-server --test load_with_faults -- --ignored --nocapture`.
#[test]
#[ignore = "long: ten minutes, a restart every minute"]
fn ten_minutes_with_a_restart_every_minute() {
    run(Duration::from_secs(600), Duration::from_secs(60), 64);
}

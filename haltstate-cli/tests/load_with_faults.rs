//! Load with faults: our client drives guarded actions while the real server is killed (SIGKILL) and restarted on
//! the same port and file, again and again. Nothing acknowledged is lost, no key is granted twice, and every error
//! the callers see is a typed, expected one.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use haltstate::{Action, GuardError, HaltStateClient};
use haltstate_authority::Authority;
use haltstate_testkit::{eventually, outcomes};

const POLICY: &str =
    r#"@id("small") permit(principal, action == Action::"refund.create", resource);"#;

/// Kills and restarts the server `restarts` times, each time once `between` more completions were acknowledged
/// (so every life of the server does real work, however fast or slow the machine).
fn run(restarts: usize, between: usize, workers: usize) {
    let common::Setup {
        dir: _dir,
        db,
        policy,
        key,
    } = common::setup(POLICY);
    let mut server = common::serve(&db, &policy, &[]);
    let listen = server.listen_addr().to_owned();
    let client = HaltStateClient::builder()
        .base_url(server.base_url())
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
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let (client, granted, unexpected, stop, acknowledged) = (
                client.clone(),
                granted.clone(),
                unexpected.clone(),
                stop.clone(),
                acknowledged.clone(),
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
                                acknowledged.fetch_add(1, Ordering::Relaxed);
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

    for restart in 0..restarts {
        let target = (restart + 1) * between;
        eventually(
            &format!("{target} completions acknowledged before restart {restart}"),
            Duration::from_secs(120),
            || (acknowledged.load(Ordering::Relaxed) >= target).then_some(()),
        );
        server.kill();
        server = common::serve_on(&db, &policy, &listen);
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
        .filter(|(k, _)| outcomes(&authority, "acme", k).is_empty())
        .map(|(k, _)| k.clone())
        .collect();
    let acknowledged = granted.values().filter(|(_, a)| *a).count();
    println!(
        "load with faults: {restarts} restarts, {} keys granted, {acknowledged} completions acknowledged, {} lost, {} granted twice, {} unexpected errors",
        granted.len(),
        lost.len(),
        twice.len(),
        unexpected.lock().unwrap().len()
    );
    assert!(
        acknowledged >= restarts * between,
        "{acknowledged} acknowledged"
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
    server.kill();
}

/// The short variant that runs in CI: eight restarts, 500 completions between them.
#[test]
fn restarts_under_load_lose_nothing_and_grant_nothing_twice() {
    run(8, 500, 16);
}

/// The long variant: `cargo test -p haltstate-cli --test load_with_faults -- --ignored --nocapture`.
#[test]
#[ignore = "long: sixty restarts, 5,000 completions between them"]
fn sixty_restarts_under_heavy_load() {
    run(60, 5_000, 64);
}

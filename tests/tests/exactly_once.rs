//! Exactly once, through the macro: many workers on one key run the body once; a worker that dies holding the
//! claim is replaced, after the lease, by exactly one other.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, LazyLock};
use std::time::Duration;

use haltstate::authority::{Authority, ManualClock};
use haltstate::{GuardError, HaltStateClient, haltstate_guard};

/// An authority with a stopped clock, so a lease expires when the test says and not when the machine is slow.
struct World {
    client: HaltStateClient,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at(time::OffsetDateTime::now_utc()));
    let authority = Authority::builder(dir.path().join("once.db"))
        .policy_source(
            "p.cedar",
            r#"@id("all") permit(principal, action == Action::"payout.send", resource);"#,
        )
        .lease(LEASE)
        .clock(clock.clone())
        .open()
        .unwrap();
    let client = HaltStateClient::builder()
        .authority(authority)
        .tenant("acme")
        .build()
        .unwrap();
    World {
        client,
        clock,
        _dir: dir,
    }
}

const LEASE: Duration = Duration::from_secs(60);

static WORLD: LazyLock<World> = LazyLock::new(world);

static BODIES: AtomicUsize = AtomicUsize::new(0);

#[haltstate_guard(client = WORLD.client, action = "payout.send", agent_id = "payouts", idempotency_key = |round| format!("payout:{round}"))]
fn send_payout(round: u32) -> Result<(), GuardError> {
    BODIES.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[test]
fn sixty_four_workers_on_one_key_run_the_body_once_200_rounds() {
    const WORKERS: usize = 64;
    const ROUNDS: u32 = 200;
    let before = BODIES.load(Ordering::SeqCst);
    for round in 0..ROUNDS {
        let start = Arc::new(Barrier::new(WORKERS));
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    send_payout(round)
                })
            })
            .collect();
        let results: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        let ran = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ran, 1, "round {round}: {ran} workers ran the body");
        assert!(
            results.iter().all(|r| matches!(
                r,
                Ok(()) | Err(GuardError::InProgress { .. } | GuardError::AlreadyCompleted { .. })
            )),
            "round {round}: unexpected answers"
        );
    }
    assert_eq!(
        BODIES.load(Ordering::SeqCst) - before,
        ROUNDS as usize,
        "one body per key"
    );
}

#[tokio::test]
async fn a_worker_that_dies_holding_the_claim_is_replaced_once_after_the_lease() {
    let world = world();
    let client = &world.client;
    let action = || {
        haltstate::Action::new("payout.send")
            .agent("payouts")
            .key("payout:orphaned")
    };
    // The worker claims the key and dies: no outcome is ever reported.
    let permit = client.guard(action()).await.unwrap();
    std::mem::forget(permit);
    assert!(matches!(
        client.guard(action()).await,
        Err(GuardError::InProgress { .. })
    ));

    world.clock.advance(LEASE + Duration::from_secs(1));
    let mut replacements = Vec::new();
    for _ in 0..16 {
        let client = client.clone();
        replacements.push(tokio::spawn(async move {
            client
                .guard(
                    haltstate::Action::new("payout.send")
                        .agent("payouts")
                        .key("payout:orphaned"),
                )
                .await
        }));
    }
    let mut winners = 0;
    for replacement in replacements {
        match replacement.await.unwrap() {
            Ok(permit) => {
                winners += 1;
                permit.complete().await.unwrap();
            }
            Err(GuardError::InProgress { .. } | GuardError::AlreadyCompleted { .. }) => {}
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    assert_eq!(
        winners, 1,
        "exactly one replacement re-claims after the lease"
    );
    assert!(matches!(
        client.guard(action()).await,
        Err(GuardError::AlreadyCompleted { .. })
    ));
}

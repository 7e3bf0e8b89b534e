//! Fail closed, on every path: with the authority down, hanging past the deadline, answering garbage or
//! answering 500s, no guarded body runs, whether it is called through the direct client (async or blocking)
//! or any of the four macros; a check never answers ALLOW. Fail-open runs them, marked unverified.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::proxy::{Fault, FaultProxy};
use common::{TENANT, TestServer};
use haltstate::{
    Action, FailMode, GuardError, HaltStateClient, ahaltstate_guard, guard, haltstate_guard,
    openai_guard,
};

static BODIES: AtomicUsize = AtomicUsize::new(0);

#[guard(client = client, action = "refund.create", idempotency_key = |key| key.to_owned(), params(amount_cents = 100))]
fn with_guard(client: &HaltStateClient, key: &str) -> Result<(), GuardError> {
    BODIES.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[haltstate_guard(client = client, action = "refund.create", agent_id = "a", idempotency_key = |key| key.to_owned(), params(amount_cents = 100))]
fn with_haltstate_guard(client: &HaltStateClient, key: &str) -> Result<(), GuardError> {
    BODIES.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[ahaltstate_guard(client = client, action = "refund.create", agent_id = "a", idempotency_key = |key| key.to_owned(), params(amount_cents = 100))]
async fn with_ahaltstate_guard(client: &HaltStateClient, key: &str) -> Result<(), GuardError> {
    BODIES.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[openai_guard(client = client, agent_id = "gpt", action = "refund.create", params(amount_cents = 100))]
async fn with_openai_guard(client: &HaltStateClient, _prompt: &str) -> Result<(), GuardError> {
    BODIES.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

fn client(base: &str, server: &TestServer, mode: FailMode) -> HaltStateClient {
    HaltStateClient::builder()
        .base_url(base)
        .tenant(TENANT)
        .api_key(&server.agent_key)
        .request_timeout(Duration::from_millis(300))
        .deadline(Duration::from_millis(1_200))
        .fail_mode(mode)
        .spool_dir(server.spool_dir())
        .build()
        .unwrap()
}

/// Every path once; answers how many bodies ran.
async fn every_path(client: &HaltStateClient, tag: &str) -> usize {
    let before = BODIES.load(Ordering::SeqCst);
    let action = |n: u32| {
        Action::new("refund.create")
            .key(format!("{tag}:direct:{n}"))
            .param("amount_cents", 100)
    };
    if let Ok(permit) = client.guard(action(1)).await {
        BODIES.fetch_add(1, Ordering::SeqCst);
        permit.complete().await.ok();
    }
    let blocking = {
        let client = client.clone();
        let key = format!("{tag}:blocking");
        tokio::task::spawn_blocking(move || {
            client
                .blocking()
                .guard(
                    Action::new("refund.create")
                        .key(key)
                        .param("amount_cents", 100),
                )
                .map(|permit| {
                    BODIES.fetch_add(1, Ordering::SeqCst);
                    permit.complete().ok();
                })
        })
    };
    let _ = blocking.await.unwrap();
    let sync_client = client.clone();
    let sync_tag = tag.to_owned();
    tokio::task::spawn_blocking(move || {
        let _ = with_guard(&sync_client, &format!("{sync_tag}:guard"));
        let _ = with_haltstate_guard(&sync_client, &format!("{sync_tag}:haltstate_guard"));
    })
    .await
    .unwrap();
    let _ = with_ahaltstate_guard(client, &format!("{tag}:ahaltstate_guard")).await;
    let _ = with_openai_guard(client, "prompt").await;
    BODIES.load(Ordering::SeqCst) - before
}

async fn assert_closed_then_open(base: &str, server: &TestServer, tag: &str) {
    let closed = client(base, server, FailMode::Closed);
    assert_eq!(
        every_path(&closed, &format!("{tag}:closed")).await,
        0,
        "{tag}: a body ran while failing closed"
    );
    let check = closed
        .check(Action::new("refund.create").param("amount_cents", 100))
        .await;
    assert!(
        !matches!(check, Ok(ref c) if c.allowed()),
        "{tag}: check answered ALLOW: {check:?}"
    );
    let open = client(base, server, FailMode::Open);
    assert_eq!(
        every_path(&open, &format!("{tag}:open")).await,
        6,
        "{tag}: fail-open runs every path"
    );
}

/// One test, scenarios in sequence: the body counter is shared, so they must not overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_body_runs_when_the_authority_cannot_answer_on_any_path() {
    // Down: nothing listens.
    let mut down = TestServer::start();
    let base = down.base_url();
    down.stop();
    assert_closed_then_open(&base, &down, "down").await;

    // Hanging past the deadline.
    let server = TestServer::start();
    let proxy = FaultProxy::start(&server.base_url());
    proxy.fault("action/", Fault::Hang, None);
    assert_closed_then_open(&proxy.base, &server, "hang").await;

    // 500s until the deadline.
    let server = TestServer::start();
    let proxy = FaultProxy::start(&server.base_url());
    proxy.fault("action/", Fault::Status(500, None), None);
    assert_closed_then_open(&proxy.base, &server, "500").await;

    // Garbage is not unavailability: the authority answered, wrongly, so even fail-open runs nothing.
    let server = TestServer::start();
    let proxy = FaultProxy::start(&server.base_url());
    proxy.fault(
        "action/",
        Fault::Body(200, "<html>we are down</html>"),
        None,
    );
    assert_eq!(
        every_path(&client(&proxy.base, &server, FailMode::Closed), "garbage").await,
        0
    );
    assert_eq!(
        every_path(
            &client(&proxy.base, &server, FailMode::Open),
            "garbage-open"
        )
        .await,
        0
    );
}

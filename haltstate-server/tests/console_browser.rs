//! The console as a person uses it: a real headless Chromium, driven over WebDriver, against a real server on
//! loopback. Screenshots of the inbox, a key's timeline and the kill switch are written to `target/screenshots/`,
//! and to `docs/screenshots/` with `HALTSTATE_UPDATE_SCREENSHOTS=1`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use fantoccini::{Client, Locator};
use haltstate_authority::{ActionRequest, ApprovalStatus, GuardRequest, Role};
use haltstate_server::ServeLimits;
use haltstate_testkit::browser::Browser;
use haltstate_testkit::{LoopbackServer, policies};
use serde_json::{Value, json};

const TENANT: &str = "acme";

async fn sign_in(window: &Client, base: &str, key: &str) {
    window.goto(&format!("{base}/ui/login")).await.unwrap();
    window
        .find(Locator::Css("input[name=tenant]"))
        .await
        .unwrap()
        .send_keys(TENANT)
        .await
        .unwrap();
    window
        .find(Locator::Css("input[name=key]"))
        .await
        .unwrap()
        .send_keys(key)
        .await
        .unwrap();
    window
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    window
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("h1"))
        .await
        .unwrap();
}

async fn guard(base: &str, key: &str, idempotency_key: &str, params: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{base}/api/sentinel/action/guard"))
        .header("X-Tenant-Id", TENANT)
        .header("X-API-Key", key)
        .json(&json!({"action": "refund.create", "params": params, "idempotency_key": idempotency_key}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn text_of(window: &Client, css: &str) -> String {
    window
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn screenshot(window: &Client, name: &str) {
    let png = window.screenshot().await.unwrap();
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join(name), &png).unwrap();
    if std::env::var_os("HALTSTATE_UPDATE_SCREENSHOTS").is_some() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::write(docs.join(name), &png).unwrap();
    }
}

/// Types a reason into the approval's row (an operator mid-decision: the live refresh leaves that row alone).
async fn type_reason(window: &Client, id: &str, reason: &str) {
    window
        .find(Locator::Id(&format!("approval-{id}")))
        .await
        .unwrap()
        .find(Locator::Css("input[name=reason]"))
        .await
        .unwrap()
        .send_keys(reason)
        .await
        .unwrap();
}

/// Presses the approval's approve or reject button and waits for the answer's notice about this approval (a
/// notice from an earlier decision may still be on the page until the answer replaces it).
async fn press(window: &Client, id: &str, verdict: &str) {
    window
        .find(Locator::Id(&format!("approval-{id}")))
        .await
        .unwrap()
        .find(Locator::Css(&format!("button[value={verdict}]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    haltstate_testkit::eventually_async(
        &format!("the notice about {id}"),
        Duration::from_secs(10),
        || async {
            let notice = window.find(Locator::Css("p.notice")).await.ok()?;
            notice.text().await.ok().filter(|text| text.contains(id))
        },
    )
    .await;
}

/// Decides the approval `id` in `window`'s inbox, as a person would: a reason typed, a button pressed.
async fn decide(window: &Client, id: &str, verdict: &str, reason: &str) {
    type_reason(window, id, reason).await;
    press(window, id, verdict).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_works_the_console_in_a_real_browser() {
    let server = LoopbackServer::scratch(policies::REFUNDS, ServeLimits::default());
    let authority = server.authority().clone();
    let base = server.base_url();
    let agent = authority
        .create_key(TENANT, "billing-agent", Role::Agent)
        .await
        .unwrap()
        .secret;
    let alice = authority
        .create_key(TENANT, "alice", Role::Operator)
        .await
        .unwrap()
        .secret;
    let bob = authority
        .create_key(TENANT, "bob", Role::Operator)
        .await
        .unwrap()
        .secret;
    let browser = Browser::start();
    let window = browser.window().await;

    sign_in(&window, &base, &alice).await;
    assert_eq!(text_of(&window, "h1").await, "Waiting for a decision");

    // A guard made by the agent appears in the open inbox without a reload.
    let pending = guard(
        &base,
        &agent,
        "refund:browser",
        json!({"amount_cents": 90_000, "note": "<script>document.title='owned'</script>"}),
    )
    .await;
    let id = pending["approval_id"].as_str().unwrap().to_owned();
    let row = window
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Id(&format!("approval-{id}")))
        .await
        .unwrap();
    // The param is text: shown, never run.
    assert!(
        row.text()
            .await
            .unwrap()
            .contains("<script>document.title='owned'</script>")
    );
    assert_ne!(window.title().await.unwrap(), "owned");
    screenshot(&window, "inbox.png").await;

    // A second operator has the same item open in another browser, and is typing a reason.
    let other = browser.window().await;
    sign_in(&other, &base, &bob).await;
    type_reason(&other, &id, "too late").await;

    // Approve it; the agent's retry with the same key runs.
    decide(&window, &id, "approve", "order checked").await;
    assert!(
        text_of(&window, "p.notice")
            .await
            .starts_with("Approved refund.create")
    );
    let retry = guard(
        &base,
        &agent,
        "refund:browser",
        json!({"amount_cents": 90_000, "note": "<script>document.title='owned'</script>"}),
    )
    .await;
    assert_eq!(retry["status"], "approved", "{retry}");
    // The second browser, deciding the same item, is told it was decided.
    press(&other, &id, "reject").await;
    assert!(
        text_of(&other, "p.notice")
            .await
            .contains("was already approved by alice"),
        "{}",
        text_of(&other, "p.notice").await
    );
    assert_eq!(
        authority.approval(TENANT, &id).unwrap().status,
        ApprovalStatus::Approved
    );

    // Reject another.
    let second = guard(
        &base,
        &agent,
        "refund:browser-2",
        json!({"amount_cents": 80_000}),
    )
    .await;
    let second_id = second["approval_id"].as_str().unwrap().to_owned();
    window
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Id(&format!("approval-{second_id}")))
        .await
        .unwrap();
    decide(&window, &second_id, "reject", "not this one").await;
    assert_eq!(
        authority.approval(TENANT, &second_id).unwrap().status,
        ApprovalStatus::Rejected
    );

    // A form posted without its CSRF token is refused.
    let third = guard(
        &base,
        &agent,
        "refund:browser-3",
        json!({"amount_cents": 70_000}),
    )
    .await;
    let third_id = third["approval_id"].as_str().unwrap().to_owned();
    window.goto(&format!("{base}/ui/inbox")).await.unwrap();
    window
        .execute(
            "const row = document.getElementById(arguments[0]); row.querySelector('input[name=csrf]').remove(); row.querySelector('button[value=approve]').click();",
            vec![json!(format!("approval-{third_id}"))],
        )
        .await
        .unwrap();
    window
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("p.error"))
        .await
        .unwrap();
    assert_eq!(text_of(&window, "h1").await, "Refused");
    assert_eq!(
        authority.approval(TENANT, &third_id).unwrap().status,
        ApprovalStatus::Pending
    );

    // Another tenant's approval id is not found here.
    let theirs = authority
        .guard(
            "globex",
            GuardRequest::new(
                ActionRequest::new("g", "refund.create").param("amount_cents", json!(90_000)),
                "g:1",
            ),
        )
        .await
        .unwrap()
        .approval_id
        .unwrap();
    window.goto(&format!("{base}/ui/inbox")).await.unwrap();
    window
        .execute(
            "const form = document.getElementById(arguments[0]).querySelector('form'); form.action = '/ui/approvals/' + arguments[1] + '/decide'; form.querySelector('button[value=approve]').click();",
            vec![json!(format!("approval-{third_id}")), json!(theirs)],
        )
        .await
        .unwrap();
    window
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("p.error"))
        .await
        .unwrap();
    assert_eq!(text_of(&window, "h1").await, "Not found");
    assert_eq!(
        authority.approval("globex", &theirs).unwrap().status,
        ApprovalStatus::Pending
    );

    // A key's timeline, and the kill switch, for the screenshots and a look.
    window
        .goto(&format!("{base}/ui/timeline?key=refund%3Abrowser"))
        .await
        .unwrap();
    assert!(text_of(&window, "h1").await.contains("refund:browser"));
    screenshot(&window, "timeline.png").await;
    window.goto(&format!("{base}/ui/kill")).await.unwrap();
    assert_eq!(text_of(&window, "#tenant-state").await, "RUN");
    screenshot(&window, "kill-switch.png").await;

    // Sign out ends the session: the inbox asks to sign in again.
    window
        .find(Locator::Css("form[action='/ui/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    window
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("input[name=key]"))
        .await
        .unwrap();
    window.goto(&format!("{base}/ui/inbox")).await.unwrap();
    assert_eq!(text_of(&window, "h1").await, "Sign in");

    window.close().await.unwrap();
    other.close().await.unwrap();
}

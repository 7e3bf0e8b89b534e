//! The console as a person uses it: a real headless Chromium, driven over WebDriver, against real servers on
//! loopback; at a desktop's 1280 pixels and a phone's 375. axe-core (from the npm registry, pinned) checks every
//! page for serious and critical accessibility violations. Screenshots of every page at both widths are written to
//! `target/screenshots/`, and to `docs/screenshots/` with `HALTSTATE_UPDATE_SCREENSHOTS=1`.

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
    fill_sign_in(window, key).await;
}

/// Fills the sign-in form the window shows and waits for the page signing in leads to.
async fn fill_sign_in(window: &Client, key: &str) {
    window
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("input[name=key]"))
        .await
        .unwrap();
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
    // Signed in: the page after the redirect names who is signed in.
    window
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(".who"))
        .await
        .unwrap();
}

/// A refund guarded by the agent's key over HTTP.
async fn guard(base: &str, key: &str, idempotency_key: &str, params: Value) -> Value {
    guard_action(base, key, "refund.create", idempotency_key, params).await
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

/// Types a reason into the approval's row's approve form (an operator mid-decision: the live refresh leaves that
/// row alone).
async fn type_reason(window: &Client, id: &str, reason: &str) {
    window
        .find(Locator::Id(&format!("approval-{id}")))
        .await
        .unwrap()
        .find(Locator::Css("form.decide input[name=reason]"))
        .await
        .unwrap()
        .send_keys(reason)
        .await
        .unwrap();
}

/// Opens the row's rejection and types its (required) reason.
async fn type_rejection(window: &Client, scope: &str, reason: &str) {
    let scope = window.find(Locator::Css(scope)).await.unwrap();
    let details = scope.find(Locator::Css("details.reject")).await.unwrap();
    if details.attr("open").await.unwrap().is_none() {
        details
            .find(Locator::Css("summary"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    scope
        .find(Locator::Css("details.reject input[name=reason]"))
        .await
        .unwrap()
        .send_keys(reason)
        .await
        .unwrap();
}

/// Presses the approve or reject button inside `scope` and waits for the answer's notice about approval `id` (a
/// notice from an earlier decision may still be on the page until the answer replaces it).
async fn press_in(window: &Client, scope: &str, id: &str, verdict: &str) -> String {
    window
        .find(Locator::Css(scope))
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
    .await
}

async fn press(window: &Client, id: &str, verdict: &str) -> String {
    press_in(window, &format!("#approval-{id}"), id, verdict).await
}

/// Decides the approval `id` in `window`'s inbox, as a person would: a reason typed, a button pressed.
async fn decide(window: &Client, id: &str, verdict: &str, reason: &str) -> String {
    if verdict == "reject" {
        type_rejection(window, &format!("#approval-{id}"), reason).await;
    } else {
        type_reason(window, id, reason).await;
    }
    press(window, id, verdict).await
}

/// The page's serious and critical accessibility violations must be none.
async fn accessible(window: &Client, what: &str) {
    let violations = haltstate_testkit::browser::serious_violations(window).await;
    assert!(violations.is_empty(), "{what}: {violations:#?}");
}

/// Whether the page fits the window's width (nothing to scroll sideways).
async fn fits_width(window: &Client) -> bool {
    let fits = window
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            vec![],
        )
        .await
        .unwrap();
    fits.as_bool().unwrap()
}

/// Opens `path`, checks it (accessible; on the phone, no sideways scrolling), and takes its screenshot as
/// `name.png` (desktop) or `name-phone.png`.
async fn look(window: &Client, base: &str, path: &str, name: &str, phone: bool) {
    window.goto(&format!("{base}{path}")).await.unwrap();
    window
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("h1"))
        .await
        .unwrap();
    accessible(window, path).await;
    if phone {
        assert!(
            fits_width(window).await,
            "{path} scrolls sideways on a phone"
        );
    }
    let file = if phone {
        format!("{name}-phone.png")
    } else {
        format!("{name}.png")
    };
    screenshot(window, &file).await;
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

    // A second operator has the same item open in another browser, and is typing a reason.
    let other = browser.window().await;
    sign_in(&other, &base, &bob).await;
    type_rejection(&other, &format!("#approval-{id}"), "too late").await;

    // Approve it; the agent's retry with the same key runs.
    let notice = decide(&window, &id, "approve", "order checked").await;
    assert!(
        notice.starts_with("alice approved refund.create requested by billing-agent"),
        "{notice}"
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
    let notice = press(&other, &id, "reject").await;
    assert!(notice.contains("was already approved by alice"), "{notice}");
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
    window.goto(&format!("{base}/ui/kill")).await.unwrap();
    assert_eq!(text_of(&window, "#tenant-state").await, "RUN");

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

/// Payouts need two different operators (`@approval("2")`).
const PAYOUTS: &str = r#"
@id("payouts.two") @reason("payouts need two operators") @approval("2")
permit(principal, action == Action::"payout.create", resource);
"#;

async fn guard_action(
    base: &str,
    key: &str,
    action: &str,
    idempotency_key: &str,
    params: Value,
) -> Value {
    reqwest::Client::new()
        .post(format!("{base}/api/sentinel/action/guard"))
        .header("X-Tenant-Id", TENANT)
        .header("X-API-Key", key)
        .json(&json!({"action": action, "params": params, "idempotency_key": idempotency_key}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_decides_from_a_phone_and_the_overview_counts_the_day() {
    let server = LoopbackServer::scratch(&policies::refunds_and(PAYOUTS), ServeLimits::default());
    let authority = server.authority().clone();
    let base = server.base_url();
    let key = |name: &'static str, role: Role| {
        let authority = authority.clone();
        async move { authority.create_key(TENANT, name, role).await.unwrap() }
    };
    let agent = key("billing-agent", Role::Agent).await.secret;
    let alice = key("alice", Role::Operator).await.secret;
    let bob = key("bob", Role::Operator).await.secret;
    let root = key("root", Role::Admin).await.secret;

    // A scripted hour: 4 refunds allowed, 3 denied (over the limit), 4 waiting for a human (one of them a payout
    // that needs two).
    for i in 0..4 {
        let answer = guard_action(
            &base,
            &agent,
            "refund.create",
            &format!("small:{i}"),
            json!({"amount_cents": 500}),
        )
        .await;
        assert_eq!(answer["status"], "allowed", "{answer}");
    }
    for i in 0..3 {
        let answer = guard_action(
            &base,
            &agent,
            "refund.create",
            &format!("huge:{i}"),
            json!({"amount_cents": 900_000}),
        )
        .await;
        assert_eq!(answer["status"], "denied", "{answer}");
    }
    let large = guard_action(
        &base,
        &agent,
        "refund.create",
        "refund:1042",
        json!({"amount_cents": 90_000, "order": "A-1042"}),
    )
    .await;
    let large_id = large["approval_id"].as_str().unwrap().to_owned();
    let doubtful = guard_action(
        &base,
        &agent,
        "refund.create",
        "refund:1043",
        json!({"amount_cents": 95_000}),
    )
    .await;
    let doubtful_id = doubtful["approval_id"].as_str().unwrap().to_owned();
    let by_keyboard = guard_action(
        &base,
        &agent,
        "refund.create",
        "refund:1044",
        json!({"amount_cents": 70_000}),
    )
    .await;
    let by_keyboard_id = by_keyboard["approval_id"].as_str().unwrap().to_owned();
    let payout = guard_action(
        &base,
        &agent,
        "payout.create",
        "payout:7",
        json!({"amount_cents": 2_000_000}),
    )
    .await;
    let payout_id = payout["approval_id"].as_str().unwrap().to_owned();

    let browser = Browser::start();
    let phone = browser.phone().await;
    // The sign-in page, then the notification's link: the approval's page, on a phone.
    look(&phone, &base, "/ui/login", "login", true).await;
    // The page is laid out for the phone's width (its viewport is the device's).
    let width = phone
        .execute("return window.innerWidth;", vec![])
        .await
        .unwrap();
    assert_eq!(width, json!(haltstate_testkit::browser::PHONE_WIDTH));

    // The notification's link, opened signed out: sign in, and land on the approval it names.
    let link = format!("/ui/approvals/{large_id}");
    phone.goto(&format!("{base}{link}")).await.unwrap();
    fill_sign_in(&phone, &alice).await;
    assert_eq!(phone.current_url().await.unwrap().path(), link);
    assert_eq!(
        text_of(&phone, "#pending-count").await,
        "4",
        "the count waiting, in the navigation"
    );
    look(
        &phone,
        &base,
        &format!("/ui/approvals/{large_id}"),
        "approval",
        true,
    )
    .await;
    assert_eq!(
        text_of(&phone, "h1").await,
        "refund.create by billing-agent"
    );
    let expires = text_of(&phone, "p").await;
    assert!(expires.contains("expires in"), "{expires}");
    // Approve with a reason: a redirect to the same page, whose message names who decided what.
    phone
        .find(Locator::Css("form.decide input[name=reason]"))
        .await
        .unwrap()
        .send_keys("order A-1042 checked")
        .await
        .unwrap();
    let notice = press_in(&phone, "form.decide", &large_id, "approve").await;
    assert!(
        notice.starts_with(&format!(
            "alice approved refund.create requested by billing-agent ({large_id}): “order A-1042 checked”"
        )),
        "{notice}"
    );
    let url = phone.current_url().await.unwrap();
    assert_eq!(url.path(), format!("/ui/approvals/{large_id}"));
    assert!(url.query().unwrap().contains("result=recorded"), "{url}");
    assert_eq!(text_of(&phone, "#status").await, "approved");
    // Reloading shows the page again; it posts nothing.
    phone.refresh().await.unwrap();
    assert_eq!(text_of(&phone, "#status").await, "approved");
    let decisions = authority
        .evidence(
            TENANT,
            &haltstate_authority::EvidenceQuery {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.approval_id.as_deref() == Some(large_id.as_str())
                && r.status.as_deref() == Some("approved")
        })
        .count();
    assert_eq!(decisions, 1, "one decision recorded");
    assert_eq!(
        guard_action(
            &base,
            &agent,
            "refund.create",
            "refund:1042",
            json!({"amount_cents": 90_000, "order": "A-1042"})
        )
        .await["status"],
        "approved"
    );

    // The inbox on a phone: rows as cards, the soonest to expire first; a rejection needs its reason.
    look(&phone, &base, "/ui/inbox", "inbox", true).await;
    let rejection = format!("#approval-{doubtful_id}");
    phone
        .find(Locator::Css(&format!("{rejection} details.reject summary")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    phone
        .find(Locator::Css(&format!("{rejection} button[value=reject]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The browser refuses the empty reason; nothing was posted.
    assert_eq!(
        authority.approval(TENANT, &doubtful_id).unwrap().status,
        ApprovalStatus::Pending
    );
    let notice = decide(&phone, &doubtful_id, "reject", "customer asked twice").await;
    assert!(
        notice.starts_with("alice rejected refund.create"),
        "{notice}"
    );
    assert_eq!(
        authority.approval(TENANT, &doubtful_id).unwrap().status,
        ApprovalStatus::Rejected
    );

    // A quorum: alice approves first (on her phone), bob sees "1 of 2: alice" and completes it.
    let notice = decide(&phone, &payout_id, "approve", "payee known").await;
    assert!(
        notice.contains("1 of 2 approvals; another operator must approve too"),
        "{notice}"
    );
    let desktop = browser.window().await;
    look(&desktop, &base, "/ui/login", "login", false).await;
    sign_in(&desktop, &base, &bob).await;
    look(&desktop, &base, "/ui/inbox", "inbox", false).await;
    let progress = text_of(&desktop, &format!("#approval-{payout_id} .progress")).await;
    assert_eq!(progress, "1 of 2: alice");
    look(
        &desktop,
        &base,
        &format!("/ui/approvals/{payout_id}"),
        "approval",
        false,
    )
    .await;
    assert_eq!(text_of(&desktop, "#approvals").await, "1 of 2: alice");
    look(&desktop, &base, "/ui/inbox", "inbox", false).await;
    let notice = decide(&desktop, &payout_id, "approve", "second pair of eyes").await;
    assert!(
        notice.starts_with("alice and bob approved payout.create"),
        "{notice}"
    );

    // Keyboard only: the skip link first, then Tab to the reason, type, Tab to Approve, Enter.
    desktop
        .goto(&format!("{base}/ui/approvals/{by_keyboard_id}"))
        .await
        .unwrap();
    let tab = "\u{E004}";
    let body = desktop.find(Locator::Css("body")).await.unwrap();
    body.send_keys(tab).await.unwrap();
    let first = desktop.active_element().await.unwrap();
    assert_eq!(first.text().await.unwrap(), "Skip to the content");
    let mut reached = false;
    for _ in 0..40 {
        desktop
            .active_element()
            .await
            .unwrap()
            .send_keys(tab)
            .await
            .unwrap();
        let focused = desktop.active_element().await.unwrap();
        if focused.attr("name").await.unwrap().as_deref() == Some("reason") {
            reached = true;
            break;
        }
    }
    assert!(reached, "the reason field is not reachable with Tab");
    let reason = desktop.active_element().await.unwrap();
    reason.send_keys("typed, never clicked").await.unwrap();
    reason.send_keys(tab).await.unwrap();
    let button = desktop.active_element().await.unwrap();
    assert_eq!(
        button.attr("value").await.unwrap().as_deref(),
        Some("approve")
    );
    button.send_keys("\u{E007}").await.unwrap();
    let notice = haltstate_testkit::eventually_async(
        "the keyboard's decision",
        Duration::from_secs(10),
        || async {
            let text = desktop
                .find(Locator::Css("p.notice"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.contains(&by_keyboard_id).then_some(text)
        },
    )
    .await;
    assert!(notice.starts_with("bob approved refund.create"), "{notice}");

    // The overview counts the scripted hour.
    for (window, phone_sized) in [(&desktop, false), (&phone, true)] {
        look(window, &base, "/ui/overview", "overview", phone_sized).await;
        for (id, expected) in [
            ("#hour-allowed", "4"),
            ("#hour-denied", "3"),
            ("#hour-approval", "4"),
            ("#day-allowed", "4"),
            ("#day-denied", "3"),
            ("#day-approval", "4"),
            ("#pending-now", "0"),
            ("#decided-day", "4"),
            ("#kill-state", "RUN"),
        ] {
            assert_eq!(text_of(window, id).await, expected, "{id}");
        }
        // What the picture says to a screen reader (an SVG `desc` is not rendered, so not WebDriver's text).
        let denied = window
            .execute(
                "return document.getElementById('chart-denied-actions-desc').textContent;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(denied, json!("refund.create 3"));
    }

    // The other pages, at both widths: readable, accessible, screenshotted.
    for (window, phone_sized) in [(&desktop, false), (&phone, true)] {
        look(window, &base, "/ui/history", "history", phone_sized).await;
        look(
            window,
            &base,
            "/ui/timeline?key=refund%3A1042",
            "timeline",
            phone_sized,
        )
        .await;
        look(window, &base, "/ui/ledger", "ledger", phone_sized).await;
        look(window, &base, "/ui/webhooks", "webhooks", phone_sized).await;
        look(window, &base, "/ui/shadow", "shadow", phone_sized).await;
    }

    // The kill switch asks to confirm, and its history says who, when and why.
    look(&desktop, &base, "/ui/kill", "kill-switch", false).await;
    desktop
        .find(Locator::Css("input[name=state][value=pause]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    desktop
        .find(Locator::Css("input[name=reason]"))
        .await
        .unwrap()
        .send_keys("refund storm")
        .await
        .unwrap();
    desktop
        .find(Locator::Css("form[action='/ui/kill'] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    desktop
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("button.danger"))
        .await
        .unwrap();
    assert_eq!(
        authority.kill_switch(TENANT, None).unwrap().state,
        haltstate_authority::KillState::Run
    );
    accessible(&desktop, "the kill switch's confirmation").await;
    screenshot(&desktop, "kill-switch-confirm.png").await;
    desktop
        .find(Locator::Css("button.danger"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    desktop
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("kill-history"))
        .await
        .unwrap();
    assert_eq!(
        authority.kill_switch(TENANT, None).unwrap().state,
        haltstate_authority::KillState::Pause
    );
    let history = text_of(&desktop, "#kill-history tbody tr").await;
    assert!(
        history.contains("bob") && history.contains("tenant acme set to PAUSE: refund storm"),
        "{history}"
    );
    look(&phone, &base, "/ui/kill", "kill-switch", true).await;

    // Keys: an admin revokes one only after confirming, with a reason the key's history keeps.
    let admin = browser.window().await;
    sign_in(&admin, &base, &root).await;
    look(&admin, &base, "/ui/keys", "keys", false).await;
    let bob_id = authority.authenticate(TENANT, &bob).unwrap().key_id;
    admin
        .find(Locator::Css(&format!("#key-{bob_id} button")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    admin
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("button.danger"))
        .await
        .unwrap();
    assert_eq!(text_of(&admin, "h1").await, "Revoke bob?");
    assert!(
        authority.authenticate(TENANT, &bob).is_ok(),
        "revoked before the confirmation"
    );
    accessible(&admin, "the revocation's confirmation").await;
    screenshot(&admin, "keys-revoke-confirm.png").await;
    admin
        .find(Locator::Css("input[name=reason]"))
        .await
        .unwrap()
        .send_keys("left the team")
        .await
        .unwrap();
    admin
        .find(Locator::Css("button.danger"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let notice = haltstate_testkit::eventually_async(
        "the revocation's notice",
        Duration::from_secs(10),
        || async {
            admin
                .find(Locator::Css("p.notice"))
                .await
                .ok()?
                .text()
                .await
                .ok()
        },
    )
    .await;
    assert_eq!(
        notice,
        format!("Key {bob_id} revoked: left the team by root.")
    );
    assert!(authority.authenticate(TENANT, &bob).is_err());
    // Bob's console session ended with his key.
    desktop.goto(&format!("{base}/ui/inbox")).await.unwrap();
    assert_eq!(text_of(&desktop, "h1").await, "Sign in");
    let admin_phone = browser.phone().await;
    sign_in(&admin_phone, &base, &root).await;
    look(&admin_phone, &base, "/ui/keys", "keys", true).await;

    for window in [phone, desktop, admin, admin_phone] {
        window.close().await.unwrap();
    }
}

/// Two instances on one PostgreSQL database, behind no session affinity: a session started on one is known to the
/// other, a form from one is accepted by the other, and signing out on one ends it on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgresql_share_one_console_session() {
    let url = tokio::task::spawn_blocking(haltstate_testkit::postgres::test_database)
        .await
        .unwrap();
    let open = |url: String| {
        tokio::task::spawn_blocking(move || {
            haltstate_authority::Authority::builder(haltstate_authority::Database::parse(&url))
                .policy_source("test.cedar", policies::REFUNDS)
                .open()
                .unwrap()
        })
    };
    let first = LoopbackServer::start(open(url.clone()).await.unwrap());
    let second = LoopbackServer::start(open(url).await.unwrap());
    let authority = first.authority().clone();
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
    let pending = guard(
        &first.base_url(),
        &agent,
        "refund:shared",
        json!({"amount_cents": 90_000}),
    )
    .await;
    let id = pending["approval_id"].as_str().unwrap().to_owned();

    let browser = Browser::start();
    let window = browser.window().await;
    // Signed in on the first instance ...
    sign_in(&window, &first.base_url(), &alice).await;
    assert_eq!(text_of(&window, "h1").await, "Waiting for a decision");
    // ... the second knows the session (the cookie is the host's, whatever the port), and takes its form.
    window
        .goto(&format!("{}/ui/inbox", second.base_url()))
        .await
        .unwrap();
    assert_eq!(text_of(&window, "h1").await, "Waiting for a decision");
    assert!(text_of(&window, ".who").await.starts_with("alice"));
    let notice = decide(&window, &id, "approve", "checked on the second instance").await;
    assert!(
        notice.starts_with("alice approved refund.create"),
        "{notice}"
    );
    assert_eq!(
        authority.approval(TENANT, &id).unwrap().status,
        ApprovalStatus::Approved
    );
    // Signing out on the second ends it on the first.
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
    window
        .goto(&format!("{}/ui/inbox", first.base_url()))
        .await
        .unwrap();
    assert_eq!(text_of(&window, "h1").await, "Sign in");
    window.close().await.unwrap();
}

//! The guard macros on real compiled code against a real embedded authority: the body runs only on allow, the
//! outcome is reported exactly once, keys bind by name.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use haltstate::authority::{Authority, EvidenceKind, EvidenceQuery, KillScope, KillState};
use haltstate::{
    GuardError, HaltStateClient, ahaltstate_guard, guard, haltstate_guard, openai_guard,
};

/// The test kit's refunds, and what the other bodies here do.
static POLICIES: LazyLock<String> = LazyLock::new(|| {
    haltstate_testkit::policies::refunds_and(
        r#"
@id("exports") permit(principal == Agent::"exporter", action == Action::"data.export", resource);
@id("llm") @approval("required") permit(principal, action == Action::"llm.ask", resource);
@id("chat") permit(principal, action == Action::"chat.complete", resource);
@id("generic") permit(principal, action == Action::"thing.touch", resource);
"#,
    )
});

struct World {
    authority: Authority,
    _dir: tempfile::TempDir,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::builder(dir.path().join("hs.db"))
        .policy_source("p.cedar", POLICIES.as_str())
        .open()
        .unwrap();
    World {
        authority,
        _dir: dir,
    }
});

static CLIENT: LazyLock<HaltStateClient> = LazyLock::new(|| {
    HaltStateClient::builder()
        .authority(WORLD.authority.clone())
        .tenant("acme")
        .agent_id("billing-agent")
        .build()
        .unwrap()
});

fn outcomes(key: &str) -> Vec<haltstate::authority::Outcome> {
    haltstate_testkit::outcomes(&WORLD.authority, "acme", key)
}

fn eventually_outcomes(key: &str) -> Vec<haltstate::authority::Outcome> {
    haltstate_testkit::eventually(
        &format!("an outcome for {key}"),
        Duration::from_secs(5),
        || Some(outcomes(key)).filter(|found| !found.is_empty()),
    )
}

#[derive(Debug, thiserror::Error)]
enum RefundError {
    #[error(transparent)]
    Guard(#[from] GuardError),
    #[error("the gateway refused")]
    Gateway,
}

struct Order {
    id: u32,
    amount_cents: u32,
}

/// How many times each body ran, by body and key: the tests run in parallel, so one shared count would see
/// the others' bodies.
static RUNS: LazyLock<Mutex<HashMap<String, usize>>> = LazyLock::new(Mutex::default);

fn ran(body: &str) {
    *RUNS.lock().unwrap().entry(body.to_owned()).or_default() += 1;
}

fn runs(body: &str) -> usize {
    RUNS.lock().unwrap().get(body).copied().unwrap_or(0)
}

/// The key a guard derives for `action` by `agent` from these arguments, as the macros compute it.
fn derived_key(action: &str, agent: &str, arguments: &[(&str, &dyn erased::Arg)]) -> String {
    use haltstate::__private::{ArgDigest, action as build, derived_key};
    let mut digest = ArgDigest::new();
    for (name, value) in arguments {
        value.add_to(&mut digest, name);
    }
    derived_key(&build(action, Some(agent), None), &CLIENT, digest).unwrap()
}

/// Where the key stands in the authority: (state, generation).
fn key_status(agent: &str, key: &str) -> (haltstate::authority::KeyState, u64) {
    let status = WORLD
        .authority
        .idempotency_status("acme", agent, key)
        .unwrap()
        .unwrap();
    (status.state, status.generation)
}

mod erased {
    /// A key argument of any type, for [`derived_key`](super::derived_key).
    pub(super) trait Arg {
        fn add_to(&self, digest: &mut haltstate::__private::ArgDigest, name: &str);
    }

    impl<T: serde::Serialize> Arg for T {
        fn add_to(&self, digest: &mut haltstate::__private::ArgDigest, name: &str) {
            digest.add(name, self);
        }
    }
}

#[haltstate_guard(
    client = CLIENT,
    action = "refund.create",
    agent_id = "billing-agent",
    idempotency_key = |order| format!("refund:{}", order.id),
    params(amount_cents = order.amount_cents),
    resource = format!("order:{}", order.id)
)]
fn issue_refund(order: &Order) -> Result<u32, RefundError> {
    ran(&format!("refund:{}", order.id));
    if order.amount_cents == 13 {
        return Err(RefundError::Gateway);
    }
    Ok(order.amount_cents)
}

#[test]
fn sync_fn_runs_on_allow_reports_once_and_never_runs_twice() {
    let order = Order {
        id: 1,
        amount_cents: 4_500,
    };
    assert_eq!(issue_refund(&order).unwrap(), 4_500);
    assert_eq!(
        outcomes("refund:1"),
        vec![haltstate::authority::Outcome::Success]
    );
    let again = issue_refund(&order).unwrap_err();
    assert!(
        matches!(
            again,
            RefundError::Guard(GuardError::AlreadyCompleted { .. })
        ),
        "{again}"
    );
    assert_eq!(runs("refund:1"), 1, "the body ran once");
}

#[test]
fn the_body_never_runs_while_approval_is_pending() {
    let error = issue_refund(&Order {
        id: 2,
        amount_cents: 90_000,
    })
    .unwrap_err();
    assert!(
        matches!(
            error,
            RefundError::Guard(GuardError::ApprovalPending { .. })
        ),
        "{error}"
    );
    assert_eq!(runs("refund:2"), 0, "the body waits for the approval");
    let denied = issue_refund(&Order {
        id: 3,
        amount_cents: 0,
    })
    .unwrap_err();
    assert!(
        matches!(denied, RefundError::Guard(GuardError::ActionDenied { .. })),
        "no policy allows a refund of nothing: {denied}"
    );
    assert_eq!(runs("refund:3"), 0);
}

#[test]
fn an_error_from_the_body_is_reported_and_releases_the_key() {
    let error = issue_refund(&Order {
        id: 4,
        amount_cents: 13,
    })
    .unwrap_err();
    assert!(matches!(error, RefundError::Gateway));
    assert_eq!(
        outcomes("refund:4"),
        vec![haltstate::authority::Outcome::Error]
    );
    let record = WORLD
        .authority
        .evidence(
            "acme",
            &EvidenceQuery {
                idempotency_key: Some("refund:4".into()),
                ..Default::default()
            },
        )
        .unwrap()
        .into_iter()
        .find(|r| r.kind == EvidenceKind::Outcome)
        .unwrap();
    assert!(
        record.error.unwrap().contains("RefundError"),
        "the error's type, never its text"
    );
    // Released: the retry runs (and fails again).
    assert!(matches!(
        issue_refund(&Order {
            id: 4,
            amount_cents: 13
        }),
        Err(RefundError::Gateway)
    ));
}

#[haltstate_guard(client = CLIENT, action = "refund.create", agent_id = "billing-agent",
    idempotency_key = |second| format!("refund:{}", second.id), params(amount_cents = second.amount_cents))]
fn refund_second(first: &Order, second: &Order) -> Result<u32, RefundError> {
    Ok(first.id * 1000 + second.id)
}

#[test]
fn the_key_binds_by_name_not_by_position() {
    let (a, b) = (
        Order {
            id: 5,
            amount_cents: 1,
        },
        Order {
            id: 6,
            amount_cents: 1,
        },
    );
    refund_second(&a, &b).unwrap();
    assert_eq!(outcomes("refund:6").len(), 1);
    assert!(outcomes("refund:5").is_empty());
}

#[haltstate_guard(client = CLIENT, action = "refund.create", agent_id = "billing-agent",
    idempotency_key = |order| format!("refund:{}", order.id), params(amount_cents = order.amount_cents))]
fn refund_that_panics(order: &Order) -> Result<(), RefundError> {
    panic!("the body blew up for {}", order.id);
}

#[test]
fn a_panic_is_reported_as_panicked_and_keeps_unwinding() {
    let caught = std::panic::catch_unwind(|| {
        refund_that_panics(&Order {
            id: 7,
            amount_cents: 1,
        })
    });
    assert!(caught.is_err(), "the panic continues");
    assert_eq!(
        eventually_outcomes("refund:7"),
        vec![haltstate::authority::Outcome::Panicked]
    );
}

#[ahaltstate_guard(client = CLIENT, action = "chat.complete", agent_id = "llm",
    idempotency_key = |conversation| format!("chat:{conversation}"))]
async fn call_llm(conversation: u32, prompt: &str) -> Result<String, GuardError> {
    tokio::time::sleep(Duration::from_millis(if prompt == "slow" {
        5_000
    } else {
        1
    }))
    .await;
    Ok(format!("echo: {prompt}"))
}

#[tokio::test]
async fn async_fn_runs_and_a_dropped_future_is_reported_cancelled() {
    assert_eq!(call_llm(1, "hi").await.unwrap(), "echo: hi");
    assert_eq!(
        outcomes("chat:1"),
        vec![haltstate::authority::Outcome::Success]
    );
    let timed_out = tokio::time::timeout(Duration::from_millis(100), call_llm(2, "slow")).await;
    assert!(timed_out.is_err());
    assert_eq!(
        eventually_outcomes("chat:2"),
        vec![haltstate::authority::Outcome::Cancelled]
    );
}

fn assert_send<T: Send>(_: &T) {}

#[tokio::test]
async fn guarded_futures_are_send() {
    let future = call_llm(3, "hi");
    assert_send(&future);
    future.await.unwrap();
}

struct Exporter {
    client: HaltStateClient,
    exported: u32,
    batch: u32,
}

impl Exporter {
    #[haltstate_guard(client = self.client, action = "data.export", agent_id = "exporter",
        idempotency_key = format!("export:{}", self.batch), params(count = count))]
    fn export(&mut self, count: u32) -> Result<&mut u32, GuardError> {
        self.exported += count;
        Ok(&mut self.exported)
    }
}

#[test]
fn a_mut_self_method_can_return_a_borrow_of_self() {
    let mut exporter = Exporter {
        client: CLIENT.clone(),
        exported: 0,
        batch: 1,
    };
    *exporter.export(10).unwrap() += 1;
    assert_eq!(exporter.exported, 11);
    assert!(matches!(
        exporter.export(10),
        Err(GuardError::AlreadyCompleted { .. })
    ));
    exporter.batch = 2;
    assert!(exporter.export(5).is_ok());
}

#[haltstate_guard(client = CLIENT, action = "thing.touch", agent_id = "toucher", idempotency_key = |id| format!("touch:{id}"))]
fn touch<T>(id: u32, thing: T) -> Result<String, GuardError>
where
    T: std::fmt::Display + Clone + Send,
{
    Ok(format!("{id}:{thing}"))
}

#[test]
fn generic_fns_work() {
    assert_eq!(touch(1, "x").unwrap(), "1:x");
    assert_eq!(touch(2, 7u8).unwrap(), "2:7");
}

#[async_trait::async_trait]
trait Refunds {
    async fn refund(&self, order: &Order) -> Result<u32, RefundError>;
}

struct Gateway;

#[async_trait::async_trait]
impl Refunds for Gateway {
    #[ahaltstate_guard(client = CLIENT, action = "refund.create", agent_id = "billing-agent",
        idempotency_key = |order| format!("refund:{}", order.id), params(amount_cents = order.amount_cents))]
    async fn refund(&self, order: &Order) -> Result<u32, RefundError> {
        ran(&format!("gateway:{}", order.id));
        Ok(order.amount_cents)
    }
}

#[tokio::test]
async fn async_trait_methods_are_guarded_inside_the_future() {
    let gateway = Gateway;
    assert_eq!(
        Refunds::refund(
            &gateway,
            &Order {
                id: 8,
                amount_cents: 100
            }
        )
        .await
        .unwrap(),
        100
    );
    assert_eq!(
        outcomes("refund:8"),
        vec![haltstate::authority::Outcome::Success]
    );
    let pending = Refunds::refund(
        &gateway,
        &Order {
            id: 9,
            amount_cents: 90_000,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(
        pending,
        RefundError::Guard(GuardError::ApprovalPending { .. })
    ));
}

trait NativeRefunds {
    async fn refund(&self, order: &Order) -> Result<u32, RefundError>;
}

impl NativeRefunds for Gateway {
    #[ahaltstate_guard(client = CLIENT, action = "refund.create", agent_id = "billing-agent",
        idempotency_key = |order| format!("refund:{}", order.id), params(amount_cents = order.amount_cents))]
    async fn refund(&self, order: &Order) -> Result<u32, RefundError> {
        Ok(order.amount_cents + 1)
    }
}

#[tokio::test]
async fn native_async_trait_methods_work() {
    assert_eq!(
        NativeRefunds::refund(
            &Gateway,
            &Order {
                id: 10,
                amount_cents: 1
            }
        )
        .await
        .unwrap(),
        2
    );
}

#[haltstate_guard(client = CLIENT, action = "data.export", agent_id = "exporter", params(count = count))]
fn export_derived(count: u32) -> Result<u32, GuardError> {
    Ok(count)
}

/// The same, `once`: one run for the same arguments, ever.
#[haltstate_guard(client = CLIENT, action = "data.export", agent_id = "exporter", once, params(count = count))]
fn export_derived_once(count: u32) -> Result<u32, GuardError> {
    Ok(count)
}

#[test]
fn haltstate_guard_derives_a_deterministic_key_from_action_agent_and_params() {
    assert_eq!(export_derived_once(41).unwrap(), 41);
    assert!(
        matches!(export_derived_once(41), Err(GuardError::AlreadyCompleted { ref idempotency_key }) if idempotency_key.starts_with("hs:data.export:"))
    );
    assert_eq!(export_derived_once(42).unwrap(), 42);
    // Without `once` the same arguments are one operation until it completes, then the next one.
    // (41 is `once` above: a key first used as one operation forever stays so.)
    assert_eq!(export_derived(43).unwrap(), 43);
    assert_eq!(export_derived(43).unwrap(), 43);
    assert!(matches!(
        export_derived(41),
        Err(GuardError::AlreadyCompleted { .. })
    ));
}

/// The seed's own shape: no `params(..)`, no key. Every argument's value is part of the derived key.
#[haltstate_guard(client = CLIENT, action = "data.export", agent_id = "exporter")]
fn export_records(count: u32) -> Result<u32, GuardError> {
    Ok(count)
}

#[test]
fn different_arguments_are_different_operations_and_the_same_ones_the_same() {
    // A daily export runs every day: the first run completed, so the same arguments are the next operation.
    assert_eq!(export_records(10).unwrap(), 10);
    assert_eq!(export_records(3).unwrap(), 3);
    assert_eq!(export_records(10).unwrap(), 10);
    let ten = derived_key("data.export", "exporter", &[("count", &10u32)]);
    let three = derived_key("data.export", "exporter", &[("count", &3u32)]);
    assert_ne!(ten, three);
    use haltstate::authority::KeyState::Completed;
    assert_eq!(
        key_status("exporter", &ten),
        (Completed, 2),
        "two operations under one key"
    );
    assert_eq!(key_status("exporter", &three), (Completed, 1));
}

#[derive(serde::Serialize)]
struct Batch {
    region: &'static str,
    rows: Vec<u32>,
}

/// Structured arguments are digested whole; `skip` leaves one out of the key.
#[haltstate_guard(client = CLIENT, action = "data.export", agent_id = "exporter", skip(attempt))]
fn export_batch(batch: &Batch, attempt: u32) -> Result<usize, GuardError> {
    let _ = attempt;
    Ok(batch.rows.len())
}

#[test]
fn a_derived_key_digests_structured_arguments_and_skips_what_it_is_told() {
    let eu = Batch {
        region: "eu",
        rows: vec![1, 2, 3],
    };
    let us = Batch {
        region: "us",
        rows: vec![1, 2, 3],
    };
    assert_eq!(export_batch(&eu, 1).unwrap(), 3);
    assert_eq!(export_batch(&us, 1).unwrap(), 3);
    // Another attempt at the same batch is the same key (`attempt` is skipped): its operation ended, so this is
    // the key's next one.
    assert_eq!(export_batch(&eu, 2).unwrap(), 3);
    let eu_key = derived_key("data.export", "exporter", &[("batch", &eu)]);
    let us_key = derived_key("data.export", "exporter", &[("batch", &us)]);
    use haltstate::authority::KeyState::Completed;
    assert_eq!(key_status("exporter", &eu_key), (Completed, 2));
    assert_eq!(key_status("exporter", &us_key), (Completed, 1));
}

#[openai_guard(client = CLIENT, agent_id = "gpt")]
async fn ask(model: &str, prompt: &str) -> Result<String, GuardError> {
    Ok(format!("{model}: {prompt}"))
}

#[tokio::test]
async fn openai_guard_names_the_action_after_the_fn_and_never_sends_the_prompt() {
    let GuardError::ApprovalPending {
        approval_id,
        action,
        ..
    } = ask("gpt-4o-mini", "tell me the card number 4111")
        .await
        .unwrap_err()
    else {
        panic!("llm.ask needs approval in these policies");
    };
    assert_eq!(action, "llm.ask");
    let approval = WORLD.authority.approval("acme", &approval_id).unwrap();
    assert_eq!(approval.params["model"], "gpt-4o-mini");
    assert_eq!(
        approval.params["arguments"],
        serde_json::json!(["model", "prompt"])
    );
    assert!(
        !serde_json::to_string(&approval.params)
            .unwrap()
            .contains("4111")
    );
}

#[ahaltstate_guard(client = CLIENT, action = "refund.create", agent_id = "billing-agent",
    idempotency_key = |order| format!("refund:{}", order.id), params(amount_cents = order.amount_cents),
    on_approval = wait(timeout_s = 10))]
async fn refund_waiting(order: &Order) -> Result<u32, RefundError> {
    Ok(order.amount_cents)
}

#[tokio::test]
async fn on_approval_wait_runs_the_body_once_a_human_approves() {
    let approver = tokio::spawn(async {
        let approval = haltstate_testkit::eventually_async(
            "the approval for refund:11",
            Duration::from_secs(10),
            || async {
                WORLD
                    .authority
                    .approvals(
                        "acme",
                        Some(haltstate::authority::ApprovalStatus::Pending),
                        100,
                    )
                    .unwrap()
                    .into_iter()
                    .find(|a| a.idempotency_key.as_deref() == Some("refund:11"))
            },
        )
        .await;
        WORLD
            .authority
            .approve("acme", &approval.id, "alice", None)
            .await
            .unwrap();
    });
    assert_eq!(
        refund_waiting(&Order {
            id: 11,
            amount_cents: 90_000
        })
        .await
        .unwrap(),
        90_000
    );
    approver.await.unwrap();
}

#[haltstate_guard(client = CLIENT, action = "thing.touch", agent_id = "kill-test", idempotency_key = |id| format!("kill:{id}"))]
fn touch_as_kill_test(id: u32) -> Result<u32, GuardError> {
    ran(&format!("kill:{id}"));
    Ok(id)
}

#[tokio::test]
async fn the_kill_switch_stops_the_body() {
    WORLD
        .authority
        .set_kill_switch(
            KillScope::new("acme", Some("kill-test")),
            KillState::Kill,
            "ops",
        )
        .await
        .unwrap();
    let error = touch_as_kill_test(1).unwrap_err();
    assert!(
        matches!(
            error,
            GuardError::KillSwitchTriggered {
                state: haltstate::KillState::Kill,
                ..
            }
        ),
        "{error}"
    );
    WORLD
        .authority
        .set_kill_switch(
            KillScope::new("acme", Some("kill-test")),
            KillState::Run,
            "ops",
        )
        .await
        .unwrap();
    assert_eq!(touch_as_kill_test(1).unwrap(), 1);
}

#[guard(action = "refund.create", idempotency_key = |order| format!("refund:{}", order.id), params(amount_cents = order.amount_cents))]
fn refund_with_global_client(order: &Order) -> Result<u32, RefundError> {
    Ok(order.amount_cents)
}

#[test]
fn guard_without_a_client_uses_the_global_one() {
    haltstate::init(CLIENT.clone());
    assert_eq!(
        refund_with_global_client(&Order {
            id: 12,
            amount_cents: 5
        })
        .unwrap(),
        5
    );
    assert_eq!(
        outcomes("refund:12"),
        vec![haltstate::authority::Outcome::Success]
    );
}

struct Completion {
    model: String,
    text: String,
}

impl haltstate::openai::Usage for Completion {
    fn llm_usage(&self) -> Option<haltstate::openai::LlmUsage> {
        Some(haltstate::openai::LlmUsage {
            model: self.model.clone(),
            prompt_tokens: 7,
            completion_tokens: 5,
            total_tokens: 12,
        })
    }
}

#[openai_guard(client = CLIENT, agent_id = "gpt", action = "chat.complete", idempotency_key = |conversation| conversation.to_string())]
async fn complete(conversation: &str, model: &str, prompt: &str) -> Result<Completion, GuardError> {
    Ok(Completion {
        model: model.to_owned(),
        text: prompt.chars().rev().collect(),
    })
}

#[tokio::test]
async fn openai_guard_records_model_and_token_counts_when_the_response_has_them() {
    let completion = complete("conv-usage", "gpt-4o-mini", "abc").await.unwrap();
    assert_eq!(completion.text, "cba");
    let record = WORLD
        .authority
        .evidence(
            "acme",
            &EvidenceQuery {
                idempotency_key: Some("conv-usage".into()),
                ..Default::default()
            },
        )
        .unwrap()
        .into_iter()
        .find(|r| r.kind == EvidenceKind::Outcome)
        .unwrap();
    let usage = record.usage.unwrap();
    assert_eq!(
        (
            usage.model.as_str(),
            usage.prompt_tokens,
            usage.total_tokens
        ),
        ("gpt-4o-mini", 7, 12)
    );
}

#[tokio::test]
async fn openai_guard_without_a_key_treats_each_call_as_its_own_operation() {
    let first = ask("gpt-4o-mini", "first question").await.unwrap_err();
    let second = ask("gpt-4o-mini", "second question").await.unwrap_err();
    let (
        GuardError::ApprovalPending { approval_id: a, .. },
        GuardError::ApprovalPending { approval_id: b, .. },
    ) = (first, second)
    else {
        panic!("both calls wait for approval under these policies");
    };
    assert_ne!(a, b, "a second question is not a replay of the first");
}

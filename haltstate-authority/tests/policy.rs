//! Policies: the pinned mapping, fail-closed defaults, annotations, load errors and atomic reload.

#![allow(clippy::unwrap_used)]

mod common;

use common::{MONDAY_10AM, TENANT, env, refund, sample_policy_path};
use haltstate_authority::{ActionRequest, Decision, NO_POLICY_PERMITS, PolicyEngine, PolicyError};
use serde_json::json;
use time::macros::datetime;

fn engine(source: &str) -> PolicyEngine {
    PolicyEngine::from_source("test.cedar", source).unwrap()
}

fn load_error(source: &str) -> PolicyError {
    PolicyEngine::from_source("bad.cedar", source).unwrap_err()
}

#[test]
fn fail_closed_default_denies_when_no_policy_permits() {
    let empty = PolicyEngine::empty();
    let decision = empty.decide(TENANT, &refund(100), MONDAY_10AM);
    assert_eq!(decision.decision, Decision::Deny);
    assert_eq!(decision.reason, NO_POLICY_PERMITS);
    assert_eq!(decision.policy_id, None);

    let unrelated =
        engine(r#"@id("other") permit(principal, action == Action::"data.export", resource);"#);
    let decision = unrelated.decide(TENANT, &refund(100), MONDAY_10AM);
    assert_eq!(
        (decision.decision, decision.reason.as_str()),
        (Decision::Deny, NO_POLICY_PERMITS)
    );
}

#[test]
fn permit_allows_with_its_id_and_reason() {
    let e = engine(
        r#"@id("refunds.all") @reason("all refunds are fine") permit(principal, action, resource);"#,
    );
    let decision = e.decide(TENANT, &refund(100), MONDAY_10AM);
    assert_eq!(decision.decision, Decision::Allow);
    assert_eq!(decision.policy_id.as_deref(), Some("refunds.all"));
    assert_eq!(decision.reason, "all refunds are fine");
}

#[test]
fn forbid_overrides_permit() {
    let e = engine(
        r#"
        @id("allow-all") permit(principal, action, resource);
        @id("no-big-refunds") @reason("too big")
        forbid(principal, action == Action::"refund.create", resource) when { context.params.amount_cents > 1000 };
        "#,
    );
    let decision = e.decide(TENANT, &refund(5000), MONDAY_10AM);
    assert_eq!(decision.decision, Decision::Deny);
    assert_eq!(decision.policy_id.as_deref(), Some("no-big-refunds"));
    assert_eq!(decision.reason, "too big");
    assert_eq!(
        e.decide(TENANT, &refund(500), MONDAY_10AM).decision,
        Decision::Allow
    );
}

#[test]
fn approval_annotation_requires_approval_even_when_a_broader_permit_matches() {
    let e = engine(
        r#"
        @id("broad") permit(principal, action, resource);
        @id("big-needs-human") @reason("big refund") @approval("required")
        permit(principal, action == Action::"refund.create", resource) when { context.params.amount_cents > 1000 };
        "#,
    );
    let decision = e.decide(TENANT, &refund(5000), MONDAY_10AM);
    assert_eq!(decision.decision, Decision::ApprovalRequired);
    assert_eq!(decision.policy_id.as_deref(), Some("big-needs-human"));
    assert_eq!(
        e.decide(TENANT, &refund(10), MONDAY_10AM)
            .policy_id
            .as_deref(),
        Some("broad")
    );
}

#[test]
fn schedule_window_on_context_hour_forbids_inside_the_window_only() {
    let e = PolicyEngine::from_file(sample_policy_path()).unwrap();
    let inside = e.decide(TENANT, &refund(100), datetime!(2026-01-05 02:30 UTC));
    assert_eq!(inside.decision, Decision::Deny);
    assert_eq!(
        inside.policy_id.as_deref(),
        Some("freeze.settlement-window")
    );
    let edge = e.decide(TENANT, &refund(100), datetime!(2026-01-05 04:00 UTC));
    assert_eq!(edge.decision, Decision::Allow);
    // The hour is UTC whatever offset the clock reading carries.
    let offset = e.decide(TENANT, &refund(100), datetime!(2026-01-05 03:30 +01:00));
    assert_eq!(offset.decision, Decision::Deny);
}

#[test]
fn weekday_is_zero_on_monday() {
    let e = engine(
        r#"@id("weekdays") permit(principal, action, resource) when { context.weekday <= 4 };"#,
    );
    let request = ActionRequest::new("a", "x.y");
    assert_eq!(
        e.decide(TENANT, &request, datetime!(2026-01-05 10:00 UTC))
            .decision,
        Decision::Allow
    ); // Monday
    assert_eq!(
        e.decide(TENANT, &request, datetime!(2026-01-10 10:00 UTC))
            .decision,
        Decision::Deny
    ); // Saturday
}

#[test]
fn request_mapping_is_the_pinned_one() {
    let e = engine(
        r#"@id("exact") permit(
            principal == Agent::"exporter",
            action == Action::"data.export",
            resource == Resource::"bucket:reports"
        ) when { context.tenant == "acme" && context.risk == "pii" && context.params.count == 3 };
        @id("no-resource") permit(principal, action == Action::"ping", resource == Resource::"none");"#,
    );
    let exact = ActionRequest::new("exporter", "data.export")
        .resource("bucket:reports")
        .risk("pii")
        .param("count", json!(3));
    assert_eq!(
        e.decide("acme", &exact, MONDAY_10AM).decision,
        Decision::Allow
    );
    assert_eq!(
        e.decide("globex", &exact, MONDAY_10AM).decision,
        Decision::Deny
    );
    assert_eq!(
        e.decide("acme", &exact.clone().risk("money"), MONDAY_10AM)
            .decision,
        Decision::Deny
    );
    assert_eq!(
        e.decide("acme", &ActionRequest::new("any", "ping"), MONDAY_10AM)
            .decision,
        Decision::Allow
    );
}

#[test]
fn erroring_forbid_denies_instead_of_failing_open() {
    // Without `has`, a call that omits the param makes the forbid error; Cedar would skip it.
    let e = engine(
        r#"
        @id("allow-all") permit(principal, action, resource);
        @id("careless-forbid") forbid(principal, action, resource) when { context.params.amount_cents > 1000 };
        "#,
    );
    let decision = e.decide(
        TENANT,
        &ActionRequest::new("a", "refund.create"),
        MONDAY_10AM,
    );
    assert_eq!(decision.decision, Decision::Deny);
    assert_eq!(decision.policy_id.as_deref(), Some("careless-forbid"));
    assert!(
        decision.reason.contains("failed to evaluate"),
        "{}",
        decision.reason
    );
}

#[test]
fn params_cannot_smuggle_entities_or_extension_values() {
    let e = engine(
        r#"@id("admins-only") permit(principal, action, resource) when {
            context.params has who && context.params.who == Agent::"admin" };"#,
    );
    let sneaky = ActionRequest::new("mallory", "x.y")
        .param("who", json!({"__entity": {"type": "Agent", "id": "admin"}}));
    assert_eq!(
        e.decide(TENANT, &sneaky, MONDAY_10AM).decision,
        Decision::Deny
    );
}

#[test]
fn fractional_amounts_become_decimals_and_unrepresentable_ones_deny() {
    let e = engine(
        r#"@id("cheap") permit(principal, action, resource) when {
            context.params.price.lessThanOrEqual(decimal("10.5")) };"#,
    );
    let at = |price: serde_json::Value| {
        e.decide(
            TENANT,
            &ActionRequest::new("a", "x.y").param("price", price),
            MONDAY_10AM,
        )
    };
    assert_eq!(at(json!(10.25)).decision, Decision::Allow);
    assert_eq!(at(json!(10.75)).decision, Decision::Deny);
    let odd = at(json!(0.123456789));
    assert_eq!(odd.decision, Decision::Deny);
    assert!(odd.reason.contains("minor units"), "{}", odd.reason);
}

#[test]
fn context_attributes_no_policy_reads_change_nothing() {
    // The action's slice reads only `hour`; `risk`, `tenant` and `params` are left out of Cedar's context, which
    // must not change any answer, including the refusal of a param Cedar cannot hold.
    let e = engine(
        r#"@id("office-hours") permit(principal, action == Action::"report.send", resource)
           when { context.hour >= 9 && context.hour < 17 };
           @id("whole-context") permit(principal, action == Action::"audit.read", resource)
           when { context == { "tenant": "acme", "params": {}, "risk": "", "hour": 10, "weekday": 0 } };"#,
    );
    let send = ActionRequest::new("a", "report.send").risk("pii");
    assert_eq!(
        e.decide(TENANT, &send, MONDAY_10AM).decision,
        Decision::Allow
    );
    let at_night = MONDAY_10AM.replace_hour(22).unwrap();
    assert_eq!(e.decide(TENANT, &send, at_night).decision, Decision::Deny);
    let odd = e.decide(
        TENANT,
        &send.param("price", json!(0.123456789)),
        MONDAY_10AM,
    );
    assert_eq!(odd.decision, Decision::Deny);
    assert!(odd.reason.contains("minor units"), "{}", odd.reason);
    // A policy comparing the whole record sees every attribute.
    let audit = ActionRequest::new("a", "audit.read");
    assert_eq!(
        e.decide(TENANT, &audit, MONDAY_10AM).decision,
        Decision::Allow
    );
    assert_eq!(
        e.decide("globex", &audit, MONDAY_10AM).decision,
        Decision::Deny
    );
}

#[test]
fn policy_typo_is_rejected_with_file_line_and_column() {
    let error = load_error(
        "@id(\"ok\")\npermit(principal, action, resource);\n\n@id(\"typo\")\npermt(principal, action, resource);\n",
    );
    let text = error.to_string();
    assert!(text.starts_with("bad.cedar:5:1: error:"), "{text}");
    assert!(
        text.contains("permt(principal, action, resource);"),
        "{text}"
    );
    let d = &error.diagnostics()[0];
    assert_eq!((d.line, d.column), (5, 1));
}

#[test]
fn unknown_annotation_fails_the_load_at_its_position() {
    let error =
        load_error("@id(\"big\")\n  @aproval(\"required\")\npermit(principal, action, resource);");
    let d = &error.diagnostics()[0];
    assert_eq!((d.line, d.column), (2, 3), "{error}");
    assert!(
        d.message.contains("unknown annotation `@aproval`"),
        "{error}"
    );
}

#[test]
fn missing_or_duplicate_ids_and_misused_approval_fail_the_load() {
    assert!(
        load_error("permit(principal, action, resource);")
            .to_string()
            .contains("has no `@id`")
    );
    let dup = load_error(
        "@id(\"a\") permit(principal, action, resource);\n@id(\"a\") forbid(principal, action, resource);",
    );
    assert!(dup.to_string().contains("duplicate policy id \"a\""));
    assert_eq!(dup.diagnostics()[0].line, 2);
    let on_forbid =
        load_error("@id(\"f\") @approval(\"required\") forbid(principal, action, resource);");
    assert!(on_forbid.to_string().contains("only applies to `permit`"));
    let bad_value =
        load_error("@id(\"p\") @approval(\"maybe\") permit(principal, action, resource);");
    assert!(bad_value.to_string().contains("is not understood"));
    let template = load_error("@id(\"t\") permit(principal == ?principal, action, resource);");
    assert!(template.to_string().contains("templates"));
}

#[test]
fn unreadable_file_names_the_path() {
    let error = PolicyEngine::from_file("/nonexistent/policy.cedar").unwrap_err();
    assert!(matches!(error, PolicyError::Read { .. }));
    assert!(error.to_string().contains("/nonexistent/policy.cedar"));
}

#[test]
fn policy_reload_keeps_the_old_set_on_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.cedar");
    std::fs::write(&path, r#"@id("v1") permit(principal, action, resource);"#).unwrap();
    let e = PolicyEngine::from_file(&path).unwrap();
    assert_eq!(
        e.decide(TENANT, &refund(1), MONDAY_10AM)
            .policy_id
            .as_deref(),
        Some("v1")
    );

    std::fs::write(&path, "@id(\"v2\") permit(principal, action, resource)").unwrap(); // missing `;`
    let error = e.reload_file(&path).unwrap_err();
    assert!(error.to_string().contains("p.cedar:1:"), "{error}");
    assert_eq!(
        e.decide(TENANT, &refund(1), MONDAY_10AM)
            .policy_id
            .as_deref(),
        Some("v1")
    );

    // Hostile (issue 21): an emptied file (comments only, or nothing) would deny everything; refused.
    for empty in ["", "// nothing here\n"] {
        std::fs::write(&path, empty).unwrap();
        let error = e.reload_file(&path).unwrap_err();
        assert!(
            matches!(error, PolicyError::Empty { current: 1 }),
            "{error}"
        );
        assert!(error.to_string().contains("kill switch"), "{error}");
        assert_eq!(
            e.decide(TENANT, &refund(1), MONDAY_10AM).decision,
            Decision::Allow
        );
    }

    std::fs::write(&path, r#"@id("v2") forbid(principal, action, resource);"#).unwrap();
    assert_eq!(e.reload_file(&path).unwrap(), 1);
    assert_eq!(
        e.decide(TENANT, &refund(1), MONDAY_10AM).decision,
        Decision::Deny
    );
}

#[test]
fn reload_during_decisions_never_fails_one() {
    let e = std::sync::Arc::new(engine(r#"@id("v1") permit(principal, action, resource);"#));
    let deciders: Vec<_> = (0..4)
        .map(|_| {
            let e = e.clone();
            std::thread::spawn(move || {
                for _ in 0..2_000 {
                    let d = e.decide(TENANT, &refund(1), MONDAY_10AM);
                    assert_eq!(d.decision, Decision::Allow, "{d:?}");
                }
            })
        })
        .collect();
    for i in 0..200 {
        let source = format!(r#"@id("v{i}") permit(principal, action, resource);"#);
        e.reload_source("live.cedar", &source).unwrap();
        assert!(e.reload_source("live.cedar", "permit(").is_err());
    }
    for d in deciders {
        d.join().unwrap();
    }
}

#[test]
fn sample_policies_load_and_decide_as_documented() {
    let env = env();
    // Exports and LLM calls have usage limits: decided as a guard would, with no usage yet.
    let no_usage = haltstate_authority::Usage::default();
    let decide = |request: &ActionRequest| {
        env.authority
            .policies()
            .decide_with_usage(TENANT, request, MONDAY_10AM, Some(&no_usage))
    };
    assert_eq!(decide(&refund(4_500)).decision, Decision::Allow);
    assert_eq!(decide(&refund(90_000)).decision, Decision::ApprovalRequired);
    assert_eq!(decide(&refund(900_000)).decision, Decision::Deny);
    assert_eq!(
        decide(&ActionRequest::new("billing-agent", "refund.create")).decision,
        Decision::Deny
    );
    let export = |agent: &str, count: i64| {
        ActionRequest::new(agent, "data.export").param("count", json!(count))
    };
    assert_eq!(decide(&export("exporter", 100)).decision, Decision::Allow);
    assert_eq!(decide(&export("intern", 100)).decision, Decision::Deny);
    assert_eq!(
        decide(&export("intern", 100).risk("pii")).decision,
        Decision::ApprovalRequired
    );
    let llm = |model: &str| ActionRequest::new("gpt", "llm.ask").param("model", json!(model));
    assert_eq!(decide(&llm("gpt-4o-mini")).decision, Decision::Allow);
    assert_eq!(decide(&llm("unvetted-model")).decision, Decision::Deny);
    assert_eq!(env.authority.policies().current().len(), 9);
}

#[test]
fn the_sample_policy_refuses_negative_zero_and_non_integer_amounts() {
    let env = env();
    let amount = |value: serde_json::Value| {
        env.authority
            .decide(
                TENANT,
                &ActionRequest::new("billing-agent", "refund.create").param("amount_cents", value),
            )
            .decision
    };
    assert_eq!(amount(json!(1)), Decision::Allow);
    for refused in [
        json!(-500),
        json!(-900_000),
        json!(0),
        json!(12.5),
        json!("100"),
        json!(true),
        json!([100]),
    ] {
        assert_eq!(amount(refused.clone()), Decision::Deny, "{refused}");
    }
}

#[test]
fn an_agent_literal_that_is_not_a_canonical_name_is_a_load_error() {
    let error = load_error(
        "@id(\"ok\") permit(principal == Agent::\"exporter\", action, resource);\n\
         @id(\"never\") forbid(principal == Agent::\"Exporter\", action, resource);\n\
         @id(\"in-body\") forbid(principal, action, resource) when { principal == Agent::\"bo t\" };",
    );
    let shown = error.to_string();
    assert!(shown.contains("bad.cedar:2:"), "{shown}");
    assert!(
        shown.contains("`Agent::\"Exporter\"` can never match"),
        "{shown}"
    );
    assert!(shown.contains("write `Agent::\"exporter\"`"), "{shown}");
    assert!(shown.contains("bad.cedar:3:"), "{shown}");
    // Another entity type of the same name is not an agent.
    assert!(
        PolicyEngine::from_source(
            "ok.cedar",
            "@id(\"x\") permit(principal, action, resource) when { resource == MyAgent::\"X\" };"
        )
        .is_ok()
    );
}

mod usage {
    use std::time::Duration;

    use super::*;
    use common::env_with;
    use haltstate_authority::{
        CheckRequest, GuardRequest, GuardStatus, LlmUsage, Outcome, OutcomeReport,
    };

    const BUDGET: &str = r#"
        @id("refunds.budget")
        permit(principal, action == Action::"refund.create", resource)
        when { context.usage.day.sum.amount_cents + context.params.amount_cents <= 10000 };
        @id("exports.rate")
        permit(principal, action == Action::"data.export", resource)
        when { context.usage.minute.count < 3 };
        @id("llm.tokens")
        permit(principal, action == Action::"llm.ask", resource)
        when { context.usage.day.tokens < 100 };
    "#;

    fn budget_env() -> common::Env {
        env_with(|b| b.policy_source("budget.cedar", BUDGET))
    }

    fn guard(env: &common::Env, action: ActionRequest, key: &str) -> GuardStatus {
        env.authority
            .guard(TENANT, GuardRequest::new(action, key))
            .wait()
            .unwrap()
            .status
    }

    fn export() -> ActionRequest {
        ActionRequest::new("exporter", "data.export")
    }

    #[test]
    fn a_budget_admits_exactly_what_it_allows_under_64_concurrent_guards() {
        let env = budget_env();
        // 64 refunds of 1,000 queued at once, decided in however many batches: 10 fit the 10,000 budget.
        let pending: Vec<_> = (0..64)
            .map(|i| {
                env.authority.guard(
                    TENANT,
                    GuardRequest::new(refund(1000), format!("budget:{i}")),
                )
            })
            .collect();
        let statuses: Vec<GuardStatus> = pending
            .into_iter()
            .map(|p| p.wait().unwrap().status)
            .collect();
        let allowed = statuses
            .iter()
            .filter(|s| **s == GuardStatus::Allowed)
            .count();
        assert_eq!(allowed, 10, "{statuses:?}");
        assert!(
            statuses
                .iter()
                .all(|s| matches!(s, GuardStatus::Allowed | GuardStatus::Denied))
        );
        // Another agent has a budget of its own.
        let other =
            ActionRequest::new("other-agent", "refund.create").param("amount_cents", json!(1000));
        assert_eq!(guard(&env, other, "budget:other"), GuardStatus::Allowed);
    }

    #[test]
    fn a_policy_using_the_usage_record_whole_sees_every_window() {
        // A decision builds only the windows its policies name; one that compares the record whole names them all.
        let env = env_with(|b| {
            b.policy_source(
                "whole.cedar",
                r#"@id("whole") permit(principal, action == Action::"data.export", resource)
                   when { context.usage.day.count < 5 && context.usage != {"day": context.usage.day} };"#,
            )
        });
        for i in 0..5 {
            assert_eq!(
                guard(&env, export(), &format!("whole:{i}")),
                GuardStatus::Allowed
            );
        }
        assert_eq!(guard(&env, export(), "whole:5"), GuardStatus::Denied);
    }

    #[test]
    fn a_rate_limit_rolls_with_its_window() {
        let env = budget_env();
        for i in 0..3 {
            assert_eq!(
                guard(&env, export(), &format!("rate:{i}")),
                GuardStatus::Allowed
            );
        }
        assert_eq!(guard(&env, export(), "rate:3"), GuardStatus::Denied);
        // A check sees the limit too, and charges nothing.
        let checked = env
            .authority
            .check(TENANT, CheckRequest::new(export()))
            .wait()
            .unwrap();
        assert_eq!(checked.decision, Decision::Deny);
        env.clock.advance(Duration::from_secs(61));
        assert_eq!(guard(&env, export(), "rate:4"), GuardStatus::Allowed);
    }

    /// Hostile (issue 21): an agent that acts and reports `error` is still counted; the key keeps its charge, so
    /// its retries (and a lapsed claim re-claimed) are charged once.
    #[test]
    fn an_error_keeps_its_usage_and_a_retry_or_a_lapsed_claim_is_charged_once() {
        let env = budget_env();
        let claim = |key: &str| {
            env.authority
                .guard(TENANT, GuardRequest::new(refund(6000), key))
                .wait()
                .unwrap()
        };
        let first = claim("refund:a");
        assert_eq!(first.status, GuardStatus::Allowed);
        // 6,000 used: another 6,000 does not fit.
        assert_eq!(claim("refund:b").status, GuardStatus::Denied);
        // The agent says the body failed: the 6,000 stays counted (it may have acted).
        env.authority
            .report(
                TENANT,
                OutcomeReport::new("refund:a", Outcome::Error)
                    .claim_token(first.claim.unwrap().token),
            )
            .wait()
            .unwrap();
        assert_eq!(claim("refund:c").status, GuardStatus::Denied);
        // The same key's retry is not charged again.
        let retry = claim("refund:a");
        assert_eq!(retry.status, GuardStatus::Allowed, "{}", retry.reason);
        // Its lease lapses and the key is claimed again: still one charge (the budget holds 4,000 more).
        env.clock.advance(Duration::from_secs(6 * 60));
        let again = claim("refund:a");
        assert_eq!(again.status, GuardStatus::Allowed, "{}", again.reason);
        let small =
            ActionRequest::new("billing-agent", "refund.create").param("amount_cents", json!(4000));
        assert_eq!(guard(&env, small.clone(), "refund:d"), GuardStatus::Allowed);
        // Completed actions keep their usage.
        env.authority
            .report(
                TENANT,
                OutcomeReport::new("refund:a", Outcome::Success)
                    .claim_token(again.claim.unwrap().token),
            )
            .wait()
            .unwrap();
        let one =
            ActionRequest::new("billing-agent", "refund.create").param("amount_cents", json!(1));
        assert_eq!(guard(&env, one, "refund:e"), GuardStatus::Denied);
        // A day later the budget is whole again.
        env.clock.advance(Duration::from_secs(25 * 60 * 60));
        assert_eq!(guard(&env, small, "refund:f"), GuardStatus::Allowed);
    }

    /// The looser behaviour, chosen explicitly: an error gives its usage back, and the retry is charged again.
    #[test]
    fn refunding_usage_on_error_is_an_explicit_option() {
        let env = env_with(|b| {
            b.policy_source("budget.cedar", BUDGET)
                .refund_usage_on_error(true)
        });
        let claim = |key: &str| {
            env.authority
                .guard(TENANT, GuardRequest::new(refund(6000), key))
                .wait()
                .unwrap()
        };
        let first = claim("refund:a");
        assert_eq!(first.status, GuardStatus::Allowed);
        env.authority
            .report(
                TENANT,
                OutcomeReport::new("refund:a", Outcome::Error)
                    .claim_token(first.claim.unwrap().token),
            )
            .wait()
            .unwrap();
        assert_eq!(claim("refund:b").status, GuardStatus::Allowed);
        assert_eq!(claim("refund:a").status, GuardStatus::Denied);
    }

    /// Schema 20 rebuilt SQLite's bucket table to check the span with `=`s (an `IN` list of three made SQLite
    /// build an ephemeral table at every bucket write): the buckets stored before still count, the span is still
    /// checked, and a write builds no such table.
    #[test]
    fn usage_stored_under_schema_19_still_counts_after_the_rebuild() {
        use haltstate_testkit::postgres::Backend;
        use rusqlite::Connection;
        let env = common::env_on(Backend::Sqlite, |b| b.policy_source("budget.cedar", BUDGET));
        assert_eq!(guard(&env, refund(9000), "old:a"), GuardStatus::Allowed);
        let path = env.db_path();
        drop(env.authority);
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE usage_buckets_19 (
                    tenant TEXT NOT NULL, agent_id TEXT NOT NULL, action TEXT NOT NULL,
                    span TEXT NOT NULL CHECK (span IN ('s', 'm', 'h')), start_us INTEGER NOT NULL,
                    count INTEGER NOT NULL, tokens INTEGER NOT NULL, sums TEXT NOT NULL,
                    PRIMARY KEY (tenant, agent_id, action, span, start_us)) WITHOUT ROWID;
                 INSERT INTO usage_buckets_19 SELECT * FROM usage_buckets;
                 DROP TABLE usage_buckets;
                 ALTER TABLE usage_buckets_19 RENAME TO usage_buckets;
                 PRAGMA user_version = 19;",
            )
            .unwrap();
        let reopened = haltstate_authority::Authority::builder(&path)
            .clock(env.clock.clone())
            .policy_source("budget.cedar", BUDGET)
            .open()
            .unwrap();
        let guard = |cents: i64, key: &str| {
            reopened
                .guard(TENANT, GuardRequest::new(refund(cents), key))
                .wait()
                .unwrap()
                .status
        };
        // 9,000 of the day's 10,000 were charged before the rebuild.
        assert_eq!(guard(1001, "old:b"), GuardStatus::Denied);
        assert_eq!(guard(1000, "old:c"), GuardStatus::Allowed);
        let conn = Connection::open(&path).unwrap();
        let write = "INSERT INTO usage_buckets (tenant, agent_id, action, span, start_us, count, tokens, sums) \
                     VALUES ('t', 'a', 'x', ?1, 0, 1, 0, '{}') ON CONFLICT (tenant, agent_id, action, span, start_us) \
                     DO UPDATE SET count = excluded.count";
        assert!(conn.execute(write, ["d"]).is_err(), "a span that is none");
        let opcodes: Vec<String> = conn
            .prepare(&format!("EXPLAIN {write}"))
            .unwrap()
            .query_map(["s"], |row| row.get(1))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(opcodes.iter().any(|op| op == "OpenWrite"), "{opcodes:?}");
        assert!(
            !opcodes.iter().any(|op| op == "OpenEphemeral"),
            "{opcodes:?}"
        );
    }

    /// A charge given back after its second has left the minute's window comes out of the minute and hour
    /// buckets that still count it, and only those (the write then holds two buckets, not three).
    #[test]
    fn usage_given_back_later_leaves_the_buckets_still_counting_it() {
        let env = env_with(|b| {
            b.policy_source("budget.cedar", BUDGET)
                .refund_usage_on_error(true)
        });
        let first = env
            .authority
            .guard(TENANT, GuardRequest::new(refund(6000), "late:a"))
            .wait()
            .unwrap();
        assert_eq!(first.status, GuardStatus::Allowed);
        env.clock.advance(Duration::from_secs(2 * 60));
        assert_eq!(guard(&env, refund(6000), "late:b"), GuardStatus::Denied);
        env.authority
            .report(
                TENANT,
                OutcomeReport::new("late:a", Outcome::Error)
                    .claim_token(first.claim.unwrap().token),
            )
            .wait()
            .unwrap();
        // The day's sum is back to zero: the whole budget fits, and one cent more does not.
        assert_eq!(guard(&env, refund(10000), "late:c"), GuardStatus::Allowed);
        assert_eq!(guard(&env, refund(1), "late:d"), GuardStatus::Denied);
    }

    #[test]
    fn reported_tokens_count_against_a_token_budget() {
        let env = budget_env();
        let ask = || ActionRequest::new("gpt", "llm.ask");
        let first = env
            .authority
            .guard(TENANT, GuardRequest::new(ask(), "ask:1"))
            .wait()
            .unwrap();
        assert_eq!(first.status, GuardStatus::Allowed);
        let mut report =
            OutcomeReport::new("ask:1", Outcome::Success).claim_token(first.claim.unwrap().token);
        report.usage = Some(LlmUsage {
            completion_tokens: 60,
            model: "gpt-x".into(),
            prompt_tokens: 60,
            total_tokens: 120,
        });
        env.authority.report(TENANT, report).wait().unwrap();
        assert_eq!(guard(&env, ask(), "ask:2"), GuardStatus::Denied);
    }

    #[test]
    fn unknown_usage_names_are_load_errors_with_their_position() {
        let error = load_error(
            "@id(\"a\")\npermit(principal, action, resource)\n  when { context.usage.week.count < 3 };",
        );
        let text = error.to_string();
        assert!(text.contains("bad.cedar:3:"), "{text}");
        assert!(
            text.contains("`context.usage.week` is not a usage window"),
            "{text}"
        );
        let error = load_error(
            "@id(\"a\")\nforbid(principal, action, resource)\n  when { context.usage.day.cuont > 3 };",
        );
        assert!(
            error
                .to_string()
                .contains("`context.usage.day.cuont` is not a usage figure"),
            "{error}"
        );
    }

    #[test]
    fn a_policy_reading_usage_without_usage_loaded_denies() {
        // `decide` is policy alone: with no usage loaded, a usage rule cannot be satisfied (fail closed).
        let decided = engine(BUDGET).decide(TENANT, &refund(1), MONDAY_10AM);
        assert_eq!(decided.decision, Decision::Deny);
    }
}

mod shadow {
    use super::*;
    use common::env_with;
    use haltstate_authority::{
        EvidenceKind, EvidenceQuery, GuardRequest, GuardStatus, ReplayQuery,
    };

    const LIVE_AND_SHADOW: &str = r#"
        @id("refunds.small")
        permit(principal, action == Action::"refund.create", resource)
        when { context.params.amount_cents <= 10000 };
        @id("refunds.tighter") @mode("shadow")
        forbid(principal, action == Action::"refund.create", resource)
        when { context.params.amount_cents > 5000 };
    "#;

    #[test]
    fn a_shadow_policy_is_recorded_never_enforced_and_reported_where_it_disagrees() {
        let env = env_with(|b| b.policy_source("shadow.cedar", LIVE_AND_SHADOW));
        assert_eq!(
            env.authority.policies().current().len(),
            1,
            "live: only the permit"
        );
        for (cents, key) in [(3_000, "refund:small"), (8_000, "refund:mid")] {
            let answer = env
                .authority
                .guard(TENANT, GuardRequest::new(refund(cents), key))
                .wait()
                .unwrap();
            assert_eq!(
                answer.status,
                GuardStatus::Allowed,
                "the shadow forbid is not enforced"
            );
        }
        let guards: Vec<_> = env
            .authority
            .evidence(TENANT, &EvidenceQuery::default())
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == EvidenceKind::Guard)
            .collect();
        assert_eq!(guards[0].shadow_decision, Some(Decision::Allow));
        assert_eq!(guards[1].decision, Some(Decision::Allow));
        assert_eq!(guards[1].shadow_decision, Some(Decision::Deny));
        assert_eq!(
            guards[1].shadow_policy_id.as_deref(),
            Some("refunds.tighter")
        );
        let report = env
            .authority
            .shadow_report(&ReplayQuery::default())
            .unwrap();
        assert_eq!(report.compared, 2);
        assert_eq!(report.disagreements.len(), 1);
        assert_eq!(
            report.disagreements[0].record.idempotency_key.as_deref(),
            Some("refund:mid")
        );
    }

    #[test]
    fn a_whole_candidate_file_is_decided_beside_the_live_set() {
        let dir = tempfile::tempdir().unwrap();
        let candidate = dir.path().join("candidate.cedar");
        std::fs::write(
            &candidate,
            r#"@id("refunds.none") forbid(principal, action == Action::"refund.create", resource);"#,
        )
        .unwrap();
        let env = env_with(|b| {
            b.policy_file(sample_policy_path())
                .shadow_policy_file(&candidate)
        });
        let answer = env
            .authority
            .guard(TENANT, GuardRequest::new(refund(500), "refund:cand"))
            .wait()
            .unwrap();
        assert_eq!(answer.status, GuardStatus::Allowed);
        let last = env
            .authority
            .evidence(TENANT, &EvidenceQuery::default())
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(
            (last.shadow_decision, last.shadow_policy_id.as_deref()),
            (Some(Decision::Deny), Some("refunds.none"))
        );
    }

    #[test]
    fn an_unknown_mode_is_a_load_error() {
        let error = load_error("@id(\"a\") @mode(\"shadw\")\npermit(principal, action, resource);");
        assert!(
            error
                .to_string()
                .contains("`@mode(\"shadw\")` is not understood"),
            "{error}"
        );
    }
}

#[test]
fn analysis_warns_of_permits_a_forbid_always_overrides_and_forbids_nothing_permits() {
    let source = r#"@id("refunds.small")
permit(principal, action == Action::"refund.create", resource)
when { context.params.amount_cents <= 100 };

@id("exports")
permit(principal, action == Action::"data.export", resource);

@id("freeze")
forbid(principal, action in [Action::"refund.create", Action::"payout.send"], resource);

@id("night")
forbid(principal, action == Action::"data.export", resource) when { context.hour < 6 };
"#;
    let compiled = engine(source).current();
    let warnings: Vec<String> = compiled.warnings().iter().map(|w| w.to_string()).collect();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings[0].starts_with(
            "test.cedar:1:1: warning: permit `refunds.small` can never allow: forbid `freeze`"
        ),
        "{}",
        warnings[0]
    );
    assert!(warnings[1].starts_with("test.cedar:8:1: warning: forbid `freeze` is about `payout.send`, which no permit allows"), "{}", warnings[1]);
    // A conditional forbid overrides nothing for sure, and the sample policy is clean.
    assert!(!warnings.iter().any(|w| w.contains("`exports`")));
    assert!(env().authority.policies().current().warnings().is_empty());
}

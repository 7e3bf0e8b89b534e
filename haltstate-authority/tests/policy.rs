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
    let decide = |request: &ActionRequest| env.authority.decide(TENANT, request);
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
    assert_eq!(env.authority.policies().current().len(), 7);
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

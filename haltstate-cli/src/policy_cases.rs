//! `haltstate policy test`: declarative cases run against a policy file, as CI runs a test suite.
//!
//! A case is a request (agent, action, resource, risk, params), optionally the time and the agent's usage so far,
//! and what the policies must answer (decision, and optionally the deciding policy). Unknown fields are errors
//! with their line: a misspelt `expect` must not make a case pass vacuously.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::output::out;
use haltstate_authority::{PolicyEngine, Usage, UsageWindow};
use haltstate_types::{ActionRequest, Decision};

/// When a case names no time: a Monday, 10:00 UTC (inside every business-hours rule).
const DEFAULT_AT: OffsetDateTime = datetime!(2026-01-05 10:00 UTC);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cases {
    #[serde(rename = "case", default)]
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default = "default_tenant")]
    tenant: String,
    agent: String,
    action: String,
    resource: Option<String>,
    risk: Option<String>,
    #[serde(default)]
    params: Map<String, Value>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    at: Option<OffsetDateTime>,
    #[serde(default)]
    usage: UsageCase,
    expect: Expected,
    policy: Option<String>,
}

fn default_tenant() -> String {
    "acme".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageCase {
    minute: Option<WindowCase>,
    hour: Option<WindowCase>,
    day: Option<WindowCase>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowCase {
    #[serde(default)]
    count: u64,
    #[serde(default)]
    tokens: u64,
    #[serde(default)]
    sum: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum Expected {
    #[serde(rename = "ALLOW")]
    Allow,
    #[serde(rename = "DENY")]
    Deny,
    #[serde(rename = "APPROVAL_REQUIRED")]
    ApprovalRequired,
}

impl Expected {
    fn decision(self) -> Decision {
        match self {
            Expected::Allow => Decision::Allow,
            Expected::Deny => Decision::Deny,
            Expected::ApprovalRequired => Decision::ApprovalRequired,
        }
    }
}

/// What a run found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) passed: usize,
    pub(crate) failed: usize,
}

/// Why cases could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CasesError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The file is not valid cases (the message names line and column).
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// A failure could not be written (its reader leaving is not an error: `output.rs`).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs every case of `cases` against `engine`, printing each failure; answers the counts.
pub(crate) fn run(engine: &PolicyEngine, cases: &Path) -> Result<Summary, CasesError> {
    let path = cases.display().to_string();
    let text = std::fs::read_to_string(cases).map_err(|source| CasesError::Read {
        path: path.clone(),
        source,
    })?;
    let parsed: Cases = toml::from_str(&text).map_err(|e| CasesError::Invalid {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let mut summary = Summary {
        passed: 0,
        failed: 0,
    };
    for case in parsed.cases {
        match check(engine, &case) {
            Ok(()) => summary.passed += 1,
            Err(why) => {
                summary.failed += 1;
                out!("FAIL {}: {why}", case.name);
            }
        }
    }
    Ok(summary)
}

fn check(engine: &PolicyEngine, case: &Case) -> Result<(), String> {
    let mut request = ActionRequest::new(case.agent.as_str(), case.action.as_str());
    request.resource = case.resource.clone();
    request.risk = case.risk.clone();
    request.params = case.params.clone();
    let figures = |window: &Option<WindowCase>| {
        window
            .as_ref()
            .map_or_else(UsageWindow::default, |w| UsageWindow {
                count: w.count,
                tokens: w.tokens,
                sums: w.sum.clone(),
            })
    };
    let usage = Usage {
        minute: figures(&case.usage.minute),
        hour: figures(&case.usage.hour),
        day: figures(&case.usage.day),
    };
    let decided = engine.decide_with_usage(
        &case.tenant,
        &request,
        case.at.unwrap_or(DEFAULT_AT),
        Some(&usage),
    );
    let expected = case.expect.decision();
    let policy_differs = case
        .policy
        .as_ref()
        .is_some_and(|policy| decided.policy_id.as_ref() != Some(policy));
    if decided.decision != expected || policy_differs {
        return Err(format!(
            "expected {}{}, got {} (policy {}): {}",
            expected.as_str(),
            case.policy
                .as_deref()
                .map(|p| format!(" by {p}"))
                .unwrap_or_default(),
            decided.decision.as_str(),
            decided.policy_id.as_deref().unwrap_or("none"),
            decided.reason
        ));
    }
    Ok(())
}

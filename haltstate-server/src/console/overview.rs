//! The overview: what the authority decided over the last hour and day, what waits and for how long, what is
//! denied most, the kill switch, and the chain's newest checkpoint, read from storage for the signed-in tenant and
//! drawn as SVG (`charts.rs`).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use time::{Duration, OffsetDateTime};

use haltstate_types::{
    ApprovalStatus, Decision, EvidenceKind, EvidenceRecord, KillScope, KillState,
};

use super::charts::{Series, bars, stacked_columns};
use super::layout::{layout, refused};
use super::session::Session;
use super::when::{Exact, When, span};
use super::{busy, page};
use crate::long_reads::{LongReadError, off_workers};
use crate::state::{AppState, Shared};

/// Records of the last day read at most; past it the page says its figures are partial.
const DAY_RECORDS: u32 = 200_000;
/// Decided approvals of the last day read at most (for the wait times).
const DECIDED: u32 = 10_000;
/// Names listed among the most denied.
const TOP: usize = 5;

const DECISIONS: [Series; 3] = [
    Series {
        name: "allowed",
        colour: "#1a7f37",
    },
    Series {
        name: "denied",
        colour: "#cf222e",
    },
    Series {
        name: "approval required",
        colour: "#9a6700",
    },
];

fn series_of(decision: Decision) -> usize {
    match decision {
        Decision::Allow => 0,
        Decision::Deny => 1,
        Decision::ApprovalRequired => 2,
    }
}

/// Decisions counted per bucket, and the denials by action and by agent.
#[derive(Default)]
struct Decisions {
    day: Vec<Vec<u64>>,
    hour: Vec<Vec<u64>>,
    outcomes: BTreeMap<&'static str, u64>,
    denied_actions: BTreeMap<String, u64>,
    denied_agents: BTreeMap<String, u64>,
}

impl Decisions {
    fn count(records: &[EvidenceRecord], now: OffsetDateTime) -> Self {
        let mut counted = Decisions {
            day: vec![vec![0; 3]; 24],
            hour: vec![vec![0; 3]; 12],
            ..Decisions::default()
        };
        let day_start = now - Duration::DAY;
        let hour_start = now - Duration::HOUR;
        for record in records {
            if let Some(outcome) = record.outcome {
                *counted.outcomes.entry(outcome.as_str()).or_default() += 1;
            }
            let Some(decision) = record.decision else {
                continue;
            };
            if !matches!(record.kind, EvidenceKind::Guard | EvidenceKind::Check)
                || record.at < day_start
            {
                continue;
            }
            let s = series_of(decision);
            let hours = ((record.at - day_start).whole_minutes() / 60).clamp(0, 23);
            counted.day[usize::try_from(hours).unwrap_or(23)][s] += 1;
            if record.at >= hour_start {
                let fives = ((record.at - hour_start).whole_minutes() / 5).clamp(0, 11);
                counted.hour[usize::try_from(fives).unwrap_or(11)][s] += 1;
            }
            if decision == Decision::Deny {
                let action = record.action.clone().unwrap_or_else(|| "-".to_owned());
                *counted.denied_actions.entry(action).or_default() += 1;
                let agent = record.agent_id.clone().unwrap_or_else(|| "-".to_owned());
                *counted.denied_agents.entry(agent).or_default() += 1;
            }
        }
        counted
    }

    fn total(buckets: &[Vec<u64>], s: usize) -> u64 {
        buckets.iter().map(|b| b[s]).sum()
    }
}

/// The most counted names, most first (ties by name).
fn top(counts: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut sorted: Vec<(String, u64)> = counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    sorted.truncate(TOP);
    sorted
}

/// The nearest-rank percentile `p` of sorted `seconds`.
fn percentile(seconds: &[i64], p: usize) -> Option<i64> {
    if seconds.is_empty() {
        return None;
    }
    let rank = (seconds.len() * p).div_ceil(100).max(1);
    seconds.get(rank - 1).copied()
}

fn duration_text(seconds: Option<i64>) -> String {
    seconds.map_or_else(|| "-".to_owned(), span)
}

/// Wait-time buckets of decided approvals: upper bounds in seconds, and their labels.
const WAITS: [(i64, &str); 7] = [
    (60, "< 1 min"),
    (300, "1-5 min"),
    (900, "5-15 min"),
    (3_600, "15-60 min"),
    (14_400, "1-4 h"),
    (86_400, "4-24 h"),
    (i64::MAX, "> 24 h"),
];

pub(crate) async fn show(State(state): State<Shared>, session: Session) -> Response {
    // Reads up to a day of the tenant's records ([`DAY_RECORDS`]).
    let (shared, reader) = (state.clone(), session.clone());
    let read = off_workers(&state.long_reads, &session.principal.tenant, move || {
        overview(&shared, &reader)
    });
    match read.await {
        Ok(body) => page(StatusCode::OK, layout("Overview", Some(&session), body)),
        Err(LongReadError::Busy) => busy(&session),
        Err(LongReadError::Read(error)) => {
            tracing::warn!(%error, "console overview could not read storage");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                refused(
                    Some(&session),
                    "Unavailable",
                    "The overview cannot be read right now.",
                ),
            )
        }
    }
}

fn overview(
    state: &AppState,
    session: &Session,
) -> Result<Markup, haltstate_authority::AuthorityError> {
    let authority = &state.authority;
    let tenant = &session.principal.tenant;
    let now = authority.now();
    let records = authority.activity(tenant, now - Duration::DAY, DAY_RECORDS)?;
    let partial = records.len() >= DAY_RECORDS as usize;
    let decisions = Decisions::count(&records, now);

    let cap = u32::try_from(authority.max_pending_approvals_per_tenant()).unwrap_or(u32::MAX);
    let pending = authority.approvals(tenant, Some(ApprovalStatus::Pending), cap)?;
    let mut waiting: Vec<i64> = pending
        .iter()
        .map(|a| (now - a.created_at).whole_seconds())
        .collect();
    waiting.sort_unstable();
    let decided = authority.approvals_since(tenant, now - Duration::DAY, DECIDED)?;
    let mut waits: Vec<i64> = decided
        .iter()
        .filter(|a| {
            matches!(
                a.status,
                ApprovalStatus::Approved | ApprovalStatus::Rejected
            )
        })
        .filter_map(|a| a.decided_at.map(|at| (at - a.created_at).whole_seconds()))
        .collect();
    waits.sort_unstable();
    let mut wait_buckets = vec![vec![0u64]; WAITS.len()];
    for wait in &waits {
        let index = WAITS
            .iter()
            .position(|(upper, _)| wait < upper)
            .unwrap_or(WAITS.len() - 1);
        wait_buckets[index][0] += 1;
    }

    let kill = authority.kill_switch(tenant, None)?.state;
    let stopped_agents: Vec<(String, KillState)> = authority
        .kill_switches()?
        .into_iter()
        .filter_map(|(scope, state)| match scope {
            KillScope::Agent {
                tenant: t,
                agent_id,
            } if t == *tenant && state != KillState::Run => Some((agent_id, state)),
            _ => None,
        })
        .collect();
    let checkpoint = authority.latest_checkpoint(tenant)?;
    let checked = checkpoint.as_ref().and_then(|signed| {
        state
            .signing_public
            .as_ref()
            .map(|key| authority.verify_checkpoints(std::slice::from_ref(signed), key))
    });

    let hour_labels: Vec<(usize, String)> = [(0, "-60 min"), (6, "-30 min"), (11, "now")]
        .into_iter()
        .map(|(i, l)| (i, l.to_owned()))
        .collect();
    let day_labels: Vec<(usize, String)> = [(0, "-24 h"), (12, "-12 h"), (23, "now")]
        .into_iter()
        .map(|(i, l)| (i, l.to_owned()))
        .collect();
    let wait_labels: Vec<(usize, String)> = WAITS
        .iter()
        .enumerate()
        .map(|(i, (_, l))| (i, (*l).to_owned()))
        .collect();
    let figure = |id: &str, value: u64| html! { strong id=(id) { (value) } };
    Ok(html! {
        h1 { "Overview" }
        @if partial { p.notice { "The last day holds more than " (DAY_RECORDS) " records: the figures count the oldest " (DAY_RECORDS) "." } }
        div.cols {
            section aria-labelledby="now-heading" {
                h2 id="now-heading" { "Now" }
                ul {
                    li { "Kill switch: " strong id="kill-state" { (kill.as_str()) }
                        @for (agent, state) in &stopped_agents { ", agent " (agent) " " (state.as_str()) } }
                    li { a href="/ui/inbox" { "Waiting for a decision" } ": " (figure("pending-now", pending.len() as u64))
                        @if !waiting.is_empty() { ", waiting " span id="waiting-p50" { (duration_text(percentile(&waiting, 50))) } " (p50), "
                            span id="waiting-max" { (duration_text(waiting.last().copied())) } " the longest" } }
                    li { "Newest checkpoint: "
                        @match &checkpoint {
                            None => span id="checkpoint" { "none yet (serve with --signing-key, or run haltstate ledger checkpoint)" },
                            Some(signed) => span id="checkpoint" {
                                "record " (signed.checkpoint.seq) ", signed " (When { at: signed.checkpoint.at, now }) " by key " code { (signed.checkpoint.key_id) }
                                @match &checked {
                                    Some(Ok(_)) => { " · " strong { "verified" } " against this chain and this server's key" },
                                    Some(Err(error)) => { " · " strong.error { "does not verify: " (error.to_string()) } },
                                    None => { " · not checked here (this server holds no signing key)" },
                                }
                            },
                        }
                        " · " a href="/ui/ledger" { "verify the whole chain" }
                    }
                }
            }
        }
        h2 { "Decisions" }
        dl.cols id="decision-figures" {
            div { dt { "Last hour" } dd {
                (figure("hour-allowed", Decisions::total(&decisions.hour, 0))) " allowed · "
                (figure("hour-denied", Decisions::total(&decisions.hour, 1))) " denied · "
                (figure("hour-approval", Decisions::total(&decisions.hour, 2))) " approval required" } }
            div { dt { "Last 24 hours" } dd {
                (figure("day-allowed", Decisions::total(&decisions.day, 0))) " allowed · "
                (figure("day-denied", Decisions::total(&decisions.day, 1))) " denied · "
                (figure("day-approval", Decisions::total(&decisions.day, 2))) " approval required" } }
            div { dt { "Outcomes reported, 24 hours" } dd {
                @if decisions.outcomes.is_empty() { "none" }
                @for (i, (outcome, n)) in decisions.outcomes.iter().enumerate() {
                    @if i > 0 { " · " } strong id=(format!("outcome-{outcome}")) { (n) } " " (outcome)
                }
            } }
        }
        (stacked_columns("chart-hour", "Decisions in the last hour, per 5 minutes", &DECISIONS, &decisions.hour, &hour_labels))
        (stacked_columns("chart-day", "Decisions in the last 24 hours, per hour", &DECISIONS, &decisions.day, &day_labels))
        div.cols {
            section aria-labelledby="wait-heading" {
                h2 id="wait-heading" { "How long approvals wait" }
                p { "Decided in the last 24 h: " (figure("decided-day", waits.len() as u64))
                    "; waited " strong id="wait-p50" { (duration_text(percentile(&waits, 50))) } " (p50), "
                    strong id="wait-p95" { (duration_text(percentile(&waits, 95))) } " (p95)." }
                (stacked_columns("chart-waits", "Approvals decided in the last 24 hours, by how long they waited",
                    &[Series { name: "decided", colour: "#0969da" }], &wait_buckets, &wait_labels))
            }
            section aria-labelledby="denied-actions-heading" {
                h2 id="denied-actions-heading" { "Most denied actions, 24 hours" }
                (bars("chart-denied-actions", "Most denied actions in the last 24 hours", &top(&decisions.denied_actions), "#cf222e"))
            }
            section aria-labelledby="denied-agents-heading" {
                h2 id="denied-agents-heading" { "Most denied agents, 24 hours" }
                (bars("chart-denied-agents", "Most denied agents in the last 24 hours", &top(&decisions.denied_agents), "#cf222e"))
            }
        }
        p.muted { "As of " (Exact(now)) ". " a href="/ui/history" { "Every record" } }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let seconds: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&seconds, 50), Some(50));
        assert_eq!(percentile(&seconds, 95), Some(95));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }
}

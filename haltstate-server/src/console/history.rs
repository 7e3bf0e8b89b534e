//! History in the console: the tenant's evidence searched by key, agent, action, decision and time; one key's
//! timeline (guard, approval, outcome) with each record's chain links; the tenant's chain verified on demand.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::when::Exact;
use haltstate_authority::AuthorityError;
use haltstate_types::timestamp::parse_iso8601;
use haltstate_types::{ChainedRecord, EvidenceQuery, EvidenceRecord};

use super::layout::{layout, refused, urlencode};
use super::proof::proof_link;
use super::session::Session;
use super::visible::Visible;
use super::{busy, page};
use crate::long_reads::{self, LongReadError, off_workers};
use crate::state::Shared;

/// Records a history page shows at most.
const PAGE: u32 = 200;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Search {
    #[serde(default)]
    key: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

fn given(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// What a record decided or became: its decision, status and outcome, those it has.
fn verdicts(record: &EvidenceRecord) -> Vec<String> {
    [
        record.decision.map(|d| d.as_str().to_owned()),
        record.status.clone(),
        record.outcome.map(|o| o.as_str().to_owned()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn verdict(record: &EvidenceRecord) -> String {
    verdicts(record).join(" · ")
}

fn search_form(search: &Search) -> Markup {
    html! {
        form method="get" action="/ui/history" {
            input name="key" placeholder="idempotency key" value=(search.key);
            " " input name="agent" placeholder="agent" value=(search.agent);
            " " input name="action" placeholder="action" value=(search.action);
            " " input name="decision" placeholder="ALLOW, pending, success..." value=(search.decision);
            " " input name="from" placeholder="from (RFC 3339)" value=(search.from);
            " " input name="to" placeholder="to (RFC 3339)" value=(search.to);
            " " button type="submit" { "Search" }
        }
    }
}

pub(crate) async fn history(
    State(state): State<Shared>,
    session: Session,
    Query(search): Query<Search>,
) -> Response {
    let bad_time = |field: &str, text: &str| {
        page(
            StatusCode::BAD_REQUEST,
            refused(
                Some(&session),
                "Refused",
                &format!("{field}: {text:?} is not an RFC 3339 time"),
            ),
        )
    };
    let from = match given(&search.from).map(|t| parse_iso8601(&t).ok_or(t)) {
        Some(Err(text)) => return bad_time("from", &text),
        other => other.and_then(Result::ok),
    };
    let to = match given(&search.to).map(|t| parse_iso8601(&t).ok_or(t)) {
        Some(Err(text)) => return bad_time("to", &text),
        other => other.and_then(Result::ok),
    };
    let query = EvidenceQuery {
        idempotency_key: given(&search.key),
        action: given(&search.action),
        agent_id: given(&search.agent),
        from,
        to,
        limit: Some(1000),
        ..EvidenceQuery::default()
    };
    let (authority, tenant) = (state.authority.clone(), session.principal.tenant.clone());
    let found = long_reads::evidence(
        &state.long_reads,
        &session.principal.tenant,
        query,
        move |q| authority.newest_evidence(&tenant, q),
    );
    let records = match found.await {
        Ok(records) => records,
        Err(LongReadError::Busy) => return busy(&session),
        Err(LongReadError::Read(error)) => return unavailable(&session, &error),
    };
    let wanted = given(&search.decision).map(|d| d.to_ascii_lowercase());
    // The newest that match, at most a page.
    let shown: Vec<&EvidenceRecord> = records
        .iter()
        .filter(|r| {
            wanted
                .as_ref()
                .is_none_or(|w| verdicts(r).iter().any(|v| v.eq_ignore_ascii_case(w)))
        })
        .take(PAGE as usize)
        .collect();
    let body = html! {
        h1 { "History" }
        (search_form(&search))
        p { (shown.len()) " records (newest first; at most " (PAGE) ")." }
        table {
            thead { tr { th { "#" } th { "At" } th { "Kind" } th { "Agent" } th { "Action" } th { "Key" } th { "Decision" } th { "By" } } }
            tbody {
                @for record in &shown {
                    tr {
                        td data-label="#" { (record.seq) }
                        td data-label="At" { (Exact(record.at)) }
                        td data-label="Kind" { (record.kind.as_str()) }
                        td data-label="Agent" { (record.agent_id.as_deref().unwrap_or("-")) }
                        td data-label="Action" { (record.action.as_deref().unwrap_or("-")) }
                        td data-label="Key" {
                            @if let Some(key) = &record.idempotency_key {
                                a href=(format!("/ui/timeline?key={}", urlencode(key))) { (Visible(key)) }
                            } @else { "-" }
                        }
                        td data-label="Decision" { (verdict(record)) }
                        td data-label="By" { (record.actor.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    };
    page(StatusCode::OK, layout("History", Some(&session), body))
}

fn unavailable(session: &Session, error: &AuthorityError) -> Response {
    tracing::warn!(%error, "console could not read the evidence");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        refused(
            Some(session),
            "Unavailable",
            "The evidence cannot be read right now.",
        ),
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct KeyQuery {
    #[serde(default)]
    key: String,
}

pub(crate) async fn timeline(
    State(state): State<Shared>,
    session: Session,
    Query(query): Query<KeyQuery>,
) -> Response {
    let Some(key) = given(&query.key) else {
        return page(
            StatusCode::BAD_REQUEST,
            refused(Some(&session), "Refused", "Name an idempotency key."),
        );
    };
    let evidence = EvidenceQuery {
        idempotency_key: Some(key.clone()),
        limit: Some(1000),
        ..EvidenceQuery::default()
    };
    let records: Vec<ChainedRecord> = match state
        .authority
        .chained_evidence(&session.principal.tenant, &evidence)
    {
        Ok(records) => records,
        Err(error) => return unavailable(&session, &error),
    };
    if records.is_empty() {
        return page(
            StatusCode::NOT_FOUND,
            refused(
                Some(&session),
                "Not found",
                "No evidence of that key in this tenant.",
            ),
        );
    }
    // A key the guard macros derive is one operation until it ends, then the next: the latest operations first.
    let mut operations: Vec<u64> = records.iter().filter_map(|c| c.record.generation).collect();
    operations.sort_unstable_by(|a, b| b.cmp(a));
    operations.dedup();
    let body = html! {
        h1 { "Key " code { (Visible(&key)) } }
        p {
            a href="/ui/ledger" { "Verify this tenant's chain" } " · "
            a href=(proof_link("/ui/proof/view", &key, None)) { "Proof pack" } " · "
            a href=(proof_link("/ui/proof", &key, None)) { "download (JSON)" }
        }
        @if !operations.is_empty() {
            p id="operations" {
                (operations.len()) " operations under this key (the same arguments run again once an operation \
                 ended). Proof pack of operation: "
                @for generation in operations.iter().take(20) {
                    a href=(proof_link("/ui/proof/view", &key, Some(*generation))) { (generation) } " "
                }
            }
        }
        table {
            thead { tr { th { "#" } th { "At" } th { "Operation" } th { "Kind" } th { "Decision" } th { "Detail" } th { "Chain" } } }
            tbody {
                @for chained in &records {
                    @let record = &chained.record;
                    tr {
                        td data-label="#" { (record.seq) }
                        td data-label="At" { (Exact(record.at)) }
                        td data-label="Operation" { (record.generation.map_or_else(|| "-".to_owned(), |g| g.to_string())) }
                        td data-label="Kind" { (record.kind.as_str()) }
                        td data-label="Decision" { (verdict(record)) }
                        td data-label="Detail" {
                            @if let Some(reason) = &record.reason { (Visible(reason)) br; }
                            @if let Some(error) = &record.error { "error " (Visible(error)) br; }
                            @for resource in &record.resource_refs { "resource " (Visible(resource)) br; }
                            @if let Some(policy) = &record.policy_id { "policy " (policy) br; }
                            @if let Some(approval) = &record.approval_id { "approval " (approval) br; }
                            @if let Some(actor) = &record.actor { "by " (actor) br; }
                        }
                        td data-label="Chain" { small { "prev " code { (chained.prev_hash) } br; "hash " code { (chained.hash) } } }
                    }
                }
            }
        }
    };
    page(StatusCode::OK, layout("Timeline", Some(&session), body))
}

pub(crate) async fn ledger(State(state): State<Shared>, session: Session) -> Response {
    let tenant = &session.principal.tenant;
    // Reads and hashes every record of the tenant's chain.
    let (authority, verified) = (state.authority.clone(), tenant.clone());
    let checked = off_workers(&state.long_reads, tenant, move || {
        authority.verify_tenant_ledger(&verified)
    });
    let body = match checked.await {
        Ok(report) => {
            let head = report.chains.first();
            html! {
                h1 { "Ledger" }
                p.notice id="ledger-status" {
                    "Verified: " (report.records) " records in " (tenant) "'s chain"
                    @if let Some(head) = head { ", head " code { (head.head.hash) } }
                    "."
                }
            }
        }
        Err(LongReadError::Read(AuthorityError::LedgerBroken { seq, problem, .. })) => html! {
            h1 { "Ledger" }
            p.error id="ledger-status" { "BROKEN at record " (seq) ": " (problem) }
        },
        Err(LongReadError::Busy) => return busy(&session),
        Err(LongReadError::Read(error)) => return unavailable(&session, &error),
    };
    page(StatusCode::OK, layout("Ledger", Some(&session), body))
}

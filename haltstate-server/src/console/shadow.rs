//! The shadow page: where the shadow policies (`@mode("shadow")`, `serve --shadow FILE`) would have decided
//! otherwise than the live set, over the last week, newest first.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::when::Exact;
use haltstate_authority::ReplayQuery;

use super::layout::{layout, refused, urlencode};
use super::session::Session;
use super::{busy, page};
use crate::long_reads::{LongReadError, off_workers};
use crate::state::Shared;

/// How far back the page looks.
const WINDOW: time::Duration = time::Duration::days(7);
/// Rows shown.
const SHOWN: usize = 200;

pub(crate) async fn show(State(state): State<Shared>, session: Session) -> Response {
    let query = ReplayQuery {
        tenant: Some(session.principal.tenant.clone()),
        since: Some(state.authority.now() - WINDOW),
    };
    // Reads every decision of the window: a week of a busy tenant's ledger.
    let authority = state.authority.clone();
    let read = off_workers(&state.long_reads, &session.principal.tenant, move || {
        authority.shadow_report(&query)
    });
    let report = match read.await {
        Ok(report) => report,
        Err(LongReadError::Busy) => return busy(&session),
        Err(LongReadError::Read(error)) => {
            tracing::warn!(%error, "console could not read the shadow decisions");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                refused(
                    Some(&session),
                    "Unavailable",
                    "The evidence cannot be read right now.",
                ),
            );
        }
    };
    let shadow = state.authority.policies().shadow();
    let body = html! {
        h1 { "Shadow decisions" }
        @match &shadow {
            None => p { "No shadow policies are loaded: annotate candidate policies with " code { "@mode(\"shadow\")" }
                " or start the server with " code { "--shadow FILE" } "." },
            Some(set) => p { (set.len()) " shadow-set policies are decided beside the live ones and recorded, never enforced." },
        }
        p id="shadow-summary" { "Last 7 days: " (report.compared) " decisions compared, " (report.disagreements.len()) " disagreed." }
        @if !report.disagreements.is_empty() {
            table id="shadow" {
                thead { tr { th { "When" } th { "Key" } th { "Action" } th { "Agent" } th { "Live" } th { "Shadow" } } }
                tbody {
                    @for d in report.disagreements.iter().rev().take(SHOWN) {
                        tr {
                            td { (Exact(d.record.at)) }
                            td {
                                @if let Some(key) = &d.record.idempotency_key {
                                    a href=(format!("/ui/timeline?key={}", urlencode(key))) { code { (key) } }
                                } @else {
                                    code { (d.record.request_id.as_deref().unwrap_or("-")) }
                                }
                            }
                            td { (d.record.action.as_deref().unwrap_or("-")) }
                            td { (d.record.agent_id.as_deref().unwrap_or("-")) }
                            td { (d.live.as_str()) br; small { (d.record.policy_id.as_deref().unwrap_or("no policy")) } }
                            td { (d.shadow.as_str()) br; small { (d.record.shadow_policy_id.as_deref().unwrap_or("no policy")) } }
                        }
                    }
                }
            }
        }
    };
    page(StatusCode::OK, layout("Shadow", Some(&session), body))
}

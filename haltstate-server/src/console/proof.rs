//! A key's proof pack in the console: downloaded as the JSON auditors verify offline, or shown as a page a person
//! reads (checked here against the checkpoint's signature when the server holds the signing key).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::visible::Visible;
use serde::Deserialize;

use super::when::Exact;
use haltstate_authority::{AuthorityError, ProofSelection};
use haltstate_types::proof::{ProofPack, verify};

use super::layout::{layout, refused};
use super::page;
use super::session::Session;
use crate::state::{AppState, Shared};

#[derive(Debug, Deserialize)]
pub(crate) struct KeyQuery {
    #[serde(default)]
    key: String,
    /// Only this operation under the key.
    #[serde(default)]
    generation: Option<u64>,
}

/// The pack of the session's tenant for the key `query` names, or the page to show instead.
fn pack_of(
    state: &AppState,
    session: &Session,
    query: &KeyQuery,
) -> Result<ProofPack, Box<Response>> {
    let selection = ProofSelection {
        key: Some(query.key.trim().to_owned()),
        generation: query.generation,
        ..ProofSelection::default()
    };
    state
        .authority
        .proof_pack(&session.principal.tenant, &selection)
        .map_err(|error| {
            let (status, why) = match &error {
                AuthorityError::NotCheckpointed { .. } => (
                    StatusCode::CONFLICT,
                    "No signed tree head covers this key's records yet: the server signs them when started with --signing-key, or run `haltstate ledger checkpoint`.".to_owned(),
                ),
                AuthorityError::Request(_) => (
                    StatusCode::NOT_FOUND,
                    "No evidence of that key in this tenant.".to_owned(),
                ),
                other => {
                    tracing::warn!(error = %other, "console could not make a proof pack");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The evidence cannot be read right now.".to_owned(),
                    )
                }
            };
            Box::new(page(status, refused(Some(session), "No proof pack", &why)))
        })
}

pub(crate) async fn download(
    State(state): State<Shared>,
    _headers: HeaderMap,
    session: Session,
    Query(query): Query<KeyQuery>,
) -> Response {
    let pack = match pack_of(&state, &session, &query) {
        Ok(pack) => pack,
        Err(refused) => return *refused,
    };
    let body = match serde_json::to_string_pretty(&pack) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "a proof pack did not serialize");
            return page(
                StatusCode::INTERNAL_SERVER_ERROR,
                refused(
                    Some(&session),
                    "No proof pack",
                    "The pack could not be written.",
                ),
            );
        }
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The name is fixed: a key's text never goes into a header.
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"haltstate-proof-pack.json\""),
    );
    response
}

/// A link to the pack of `key` (one operation under it, or all).
pub(crate) fn proof_link(path: &str, key: &str, generation: Option<u64>) -> String {
    let mut link = format!("{path}?key={}", super::layout::urlencode(key));
    if let Some(generation) = generation {
        link.push_str(&format!("&generation={generation}"));
    }
    link
}

pub(crate) async fn view(
    State(state): State<Shared>,
    session: Session,
    Query(query): Query<KeyQuery>,
) -> Response {
    let key = query.key.trim();
    let pack = match pack_of(&state, &session, &query) {
        Ok(pack) => pack,
        Err(refused) => return *refused,
    };
    let verdict = state
        .signing_public
        .as_ref()
        .map(|public| verify(&pack, public));
    let body = html! {
        h1 {
            "Proof pack of " code { (Visible(key)) }
            @if let Some(generation) = query.generation { ", operation " (generation) }
        }
        @match &verdict {
            Some(Ok(_)) => p.notice id="proof-verdict" { "Verified: every record is in the tree whose head this server's key signed." },
            Some(Err(error)) => p.error id="proof-verdict" { "Does not verify: " (error.to_string()) },
            None => p id="proof-verdict" { "This server holds no signing key to check it with; verify the download offline with " code { "haltstate proof verify" } "." },
        }
        p {
            "Tenant " (pack.tenant) ", " (pack.records.len()) " records, each with its proof of inclusion in the log "
            code { (pack.origin) } " as of this signed tree head (and nothing of any other record). "
            a href=(proof_link("/ui/proof", key, query.generation)) { "Download (JSON)" }
        }
        pre id="tree-head" { (pack.checkpoint) }
        table id="proof" {
            thead { tr {
                th { "Entry" } th { "At" } th { "Kind" } th { "Agent" } th { "Action" } th { "Operation" } th { "Decision" }
                th { "Reason" } th { "Latency" } th { "Proof" } th { "Redaction" } th { "Policy" } th { "Approval" } th { "Hash" }
            } }
            tbody {
                @for r in pack.records.iter().map(|included| &included.record) {
                    tr {
                        td { (r.ledger_entry_id) br; small { (r.proof_id) } }
                        td { (Exact(r.at)) }
                        td { (r.kind) }
                        td { (r.agent.as_deref().unwrap_or("-")) }
                        td { (r.action.as_deref().unwrap_or("-")) }
                        td { (r.generation.map_or_else(|| "-".to_owned(), |g| g.to_string())) }
                        td { (r.decision.as_deref().or(r.status.as_deref()).unwrap_or("-"))
                             @if let Some(outcome) = &r.outcome { br; "outcome " (outcome) } }
                        td { (Visible(r.reason.as_deref().unwrap_or(""))) }
                        td { @if let Some(us) = r.latency_us { (us) " µs" } }
                        td { (r.proof_status.as_deref().unwrap_or("-")) br; (r.signature_status) }
                        td { (r.redaction_status.as_deref().unwrap_or("-")) }
                        td { (r.policy_id.as_deref().unwrap_or("-"))
                             @if let Some(version) = &r.policy_version { br; small { (version.get(..12).unwrap_or(version)) } } }
                        td { @if let Some(state) = &r.approval_state { (state) }
                             @if let Some(by) = &r.approver { br; "by " (by) } }
                        td { small { code { (r.hash) } } }
                    }
                }
            }
        }
    };
    page(StatusCode::OK, layout("Proof pack", Some(&session), body))
}

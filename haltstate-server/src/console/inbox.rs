//! What waits for a decision: the inbox, one approval's page, and the decision an operator posts on it (recorded
//! as that operator, `via: console`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use haltstate_authority::AuthorityError;
use haltstate_types::{Actor, ApprovalStatus, Verdict, Via, canonical_name};

use super::extract::CsrfForm;
use super::session::Session;
use super::{page, pages};
use crate::state::AppState;

pub(crate) async fn inbox(State(state): State<AppState>, session: Session) -> Response {
    show_inbox(&state, &session, None)
}

fn show_inbox(state: &AppState, session: &Session, notice: Option<&str>) -> Response {
    match state.authority.approvals(
        &session.principal.tenant,
        Some(ApprovalStatus::Pending),
        // The authority keeps at most this many waiting per tenant: the inbox shows every one.
        u32::try_from(state.authority.max_pending_approvals_per_tenant()).unwrap_or(u32::MAX),
    ) {
        Ok(pending) => page(StatusCode::OK, pages::inbox(session, &pending, notice)),
        Err(error) => {
            tracing::warn!(%error, "console inbox could not read approvals");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::refused(
                    Some(session),
                    "Unavailable",
                    "The authority cannot read approvals right now.",
                ),
            )
        }
    }
}

pub(crate) async fn approval_page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    match state.authority.approval(&session.principal.tenant, &id) {
        Ok(approval) => page(StatusCode::OK, pages::approval(&session, &approval)),
        Err(AuthorityError::ApprovalNotFound { .. }) => not_found(&session),
        Err(error) => {
            tracing::warn!(%error, "console could not read an approval");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::refused(
                    Some(&session),
                    "Unavailable",
                    "The authority cannot read approvals right now.",
                ),
            )
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct DecideForm {
    #[serde(default)]
    csrf: String,
    verdict: String,
    #[serde(default)]
    reason: String,
}

impl std::fmt::Debug for DecideForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecideForm")
            .field("verdict", &self.verdict)
            .finish_non_exhaustive()
    }
}

pub(crate) async fn decide(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(session, form): CsrfForm<DecideForm>,
) -> Response {
    let verdict = match form.verdict.as_str() {
        "approve" => Verdict::Approve,
        "reject" => Verdict::Reject,
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                pages::refused(
                    Some(&session),
                    "Refused",
                    "Approve or reject: nothing else.",
                ),
            );
        }
    };
    let tenant = session.principal.tenant.clone();
    let approver = match canonical_name("operator", &session.principal.name)
        .and_then(|name| Actor::new(&name, Via::Console))
    {
        Ok(actor) => actor,
        Err(error) => {
            return page(
                StatusCode::FORBIDDEN,
                pages::refused(Some(&session), "Refused", &error.to_string()),
            );
        }
    };
    let reason = Some(form.reason.trim().to_owned()).filter(|r| !r.is_empty());
    let decided = state
        .authority
        .decide_approval(&tenant, &id, verdict, approver, reason)
        .await;
    if let Ok(approval) = &decided {
        crate::metrics::approval_decided(approval);
    }
    match decided {
        Ok(approval) if approval.status == ApprovalStatus::Pending => {
            let notice = format!(
                "Your approval of {} by {} ({}) is recorded: {} of {} approvals; another operator must approve too.",
                approval.action,
                approval.agent_id,
                approval.id,
                approval.approved_by.len(),
                approval.approvals_required
            );
            show_inbox(&state, &session, Some(&notice))
        }
        Ok(approval) => {
            let notice = format!(
                "{} {} by {} ({}).",
                match approval.status {
                    ApprovalStatus::Approved => "Approved",
                    _ => "Rejected",
                },
                approval.action,
                approval.agent_id,
                approval.id
            );
            show_inbox(&state, &session, Some(&notice))
        }
        Err(AuthorityError::AlreadyApproved { .. }) => {
            let notice = format!(
                "You already approved {id}; it needs another operator's approval. Nothing changed."
            );
            show_inbox(&state, &session, Some(&notice))
        }
        Err(AuthorityError::ApprovalDecided { status, .. }) => {
            let by = state
                .authority
                .approval(&tenant, &id)
                .ok()
                .and_then(|a| a.approver)
                .map(|who| format!(" by {who}"))
                .unwrap_or_default();
            let notice = format!(
                "Approval {id} was already {}{by}; your decision was not recorded.",
                status.as_str()
            );
            show_inbox(&state, &session, Some(&notice))
        }
        Err(AuthorityError::ApprovalNotFound { .. }) => not_found(&session),
        Err(AuthorityError::SelfApproval { .. }) => page(
            StatusCode::FORBIDDEN,
            pages::refused(
                Some(&session),
                "Refused",
                "Nobody decides an approval requested under their own name.",
            ),
        ),
        Err(error) => {
            tracing::warn!(%error, "console decision failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::refused(
                    Some(&session),
                    "Unavailable",
                    "The decision could not be recorded; try again.",
                ),
            )
        }
    }
}

super::extract::csrf_field!(DecideForm);

/// The page for an approval id this tenant does not have (another tenant's included: it says no more).
fn not_found(session: &Session) -> Response {
    page(
        StatusCode::NOT_FOUND,
        pages::refused(
            Some(session),
            "Not found",
            "No such approval in this tenant.",
        ),
    )
}

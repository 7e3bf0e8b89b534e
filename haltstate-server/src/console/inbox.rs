//! What waits for a decision: the inbox, one approval's page, and the decision an operator posts on it (recorded
//! as that operator, `via: console`). A decision answers with a redirect (reloading never posts it again) to the
//! page it came from, whose message is read back from storage: who decided what.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use haltstate_authority::AuthorityError;
use haltstate_types::{Actor, Approval, ApprovalStatus, Verdict, Via, canonical_name};

use super::extract::CsrfForm;
use super::layout::{refused, urlencode};
use super::page;
use super::pages::{self, Back};
use super::session::Session;
use crate::state::{AppState, Shared};

/// What became of a decision, carried by the redirect after it (the rest is read from storage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Became {
    /// Recorded, and the approval is decided.
    Recorded,
    /// Recorded as one approval of several needed.
    Counted,
    /// This operator had already approved it; nothing changed.
    AlreadyYours,
    /// Someone decided it first (or it expired); nothing changed.
    AlreadyDecided,
}

impl Became {
    fn as_str(self) -> &'static str {
        match self {
            Became::Recorded => "recorded",
            Became::Counted => "counted",
            Became::AlreadyYours => "already-yours",
            Became::AlreadyDecided => "already-decided",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Became::Recorded,
            Became::Counted,
            Became::AlreadyYours,
            Became::AlreadyDecided,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// `?decided=<approval id>&result=<what became of it>`, after a decision.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Decided {
    #[serde(default)]
    decided: Option<String>,
    #[serde(default)]
    result: Option<String>,
}

/// The message about a decision just posted, from the approval as stored now (tenant-scoped: another tenant's id
/// says nothing).
fn decided_notice(state: &AppState, session: &Session, decided: &Decided) -> Option<Markup> {
    let id = decided.decided.as_deref()?;
    let result = Became::parse(decided.result.as_deref()?)?;
    let approval = state
        .authority
        .approval(&session.principal.tenant, id)
        .ok()?;
    let me = &session.principal.name;
    // A link can carry any `result`: a message that says "you approved" must be true of storage.
    let mine = approval.approved_by.iter().any(|who| who == me);
    if matches!(result, Became::Counted | Became::AlreadyYours) && !mine {
        return None;
    }
    let what = html! { strong { (approval.action) } " requested by " (approval.agent_id) " (" code { (approval.id) } ")" };
    let because = |approval: &Approval| {
        html! { @if let Some(reason) = &approval.decision_reason { ": “" (super::visible::Visible(reason)) "”" } }
    };
    Some(match result {
        Became::Recorded => {
            let verb = match approval.status {
                ApprovalStatus::Approved => "approved",
                ApprovalStatus::Rejected => "rejected",
                _ => return None,
            };
            let who =
                if approval.status == ApprovalStatus::Approved && approval.approved_by.len() > 1 {
                    approval.approved_by.join(" and ")
                } else {
                    approval.approver.clone().unwrap_or_else(|| me.clone())
                };
            html! { (who) " " (verb) " " (what) (because(&approval)) ". The agent's retry with the same key " @if verb == "approved" { "runs." } @else { "is refused." } }
        }
        Became::Counted => html! {
            (me) " approved " (what) ": " (approval.approved_by.len()) " of " (approval.approvals_required)
            " approvals; another operator must approve too."
        },
        Became::AlreadyYours => html! {
            "You (" (me) ") already approved " (what) "; it needs another operator's approval. Nothing changed."
        },
        Became::AlreadyDecided => html! {
            (what) " was already " (approval.status.as_str())
            @if let Some(by) = &approval.approver { " by " (by) }
            "; your decision was not recorded."
        },
    })
}

pub(crate) async fn inbox(
    State(state): State<Shared>,
    session: Session,
    Query(decided): Query<Decided>,
) -> Response {
    let notice = decided_notice(&state, &session, &decided);
    match state.authority.approvals(
        &session.principal.tenant,
        Some(ApprovalStatus::Pending),
        // The authority keeps at most this many waiting per tenant: the inbox shows every one.
        u32::try_from(state.authority.max_pending_approvals_per_tenant()).unwrap_or(u32::MAX),
    ) {
        Ok(pending) => page(
            StatusCode::OK,
            pages::inbox(&session, pending, state.authority.now(), notice.as_ref()),
        ),
        Err(error) => unavailable(&session, &error),
    }
}

fn unavailable(session: &Session, error: &AuthorityError) -> Response {
    tracing::warn!(%error, "console could not read approvals");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        refused(
            Some(session),
            "Unavailable",
            "The authority cannot read approvals right now.",
        ),
    )
}

pub(crate) async fn approval_page(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<String>,
    Query(decided): Query<Decided>,
) -> Response {
    match state.authority.approval(&session.principal.tenant, &id) {
        Ok(approval) => {
            let notice = decided_notice(&state, &session, &decided);
            page(
                StatusCode::OK,
                pages::approval(&session, &approval, state.authority.now(), notice.as_ref()),
            )
        }
        Err(AuthorityError::ApprovalNotFound { .. }) => not_found(&session),
        Err(error) => unavailable(&session, &error),
    }
}

#[derive(Deserialize)]
pub(crate) struct DecideForm {
    #[serde(default)]
    csrf: String,
    verdict: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    back: String,
}

impl std::fmt::Debug for DecideForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecideForm")
            .field("verdict", &self.verdict)
            .finish_non_exhaustive()
    }
}

/// Back to where the form was, with what became of the decision (See Other: the browser GETs it).
fn decided(back: Back, id: &str, result: Became) -> Response {
    let query = format!("decided={}&result={}", urlencode(id), result.as_str());
    let to = match back {
        Back::Inbox => format!("/ui/inbox?{query}"),
        Back::Approval => format!("/ui/approvals/{}?{query}", urlencode(id)),
    };
    Redirect::to(&to).into_response()
}

pub(crate) async fn decide(
    State(state): State<Shared>,
    Path(id): Path<String>,
    CsrfForm(session, form): CsrfForm<DecideForm>,
) -> Response {
    let bad = |why: &str| {
        page(
            StatusCode::BAD_REQUEST,
            refused(Some(&session), "Refused", why),
        )
    };
    let reason = Some(form.reason.trim().to_owned()).filter(|r| !r.is_empty());
    let verdict = match form.verdict.as_str() {
        "approve" => Verdict::Approve,
        "reject" if reason.is_some() => Verdict::Reject,
        "reject" => {
            return bad("A rejection needs a reason: the agent's owner reads it. Nothing changed.");
        }
        _ => return bad("Approve or reject: nothing else."),
    };
    let back = if form.back == Back::Approval.as_str() {
        Back::Approval
    } else {
        Back::Inbox
    };
    let tenant = session.principal.tenant.clone();
    let approver = match canonical_name("operator", &session.principal.name)
        .and_then(|name| Actor::new(&name, Via::Console))
    {
        Ok(actor) => actor,
        Err(error) => {
            return page(
                StatusCode::FORBIDDEN,
                refused(Some(&session), "Refused", &error.to_string()),
            );
        }
    };
    let answer = state
        .authority
        .decide_approval(&tenant, &id, verdict, approver, reason)
        .await;
    if let Ok(approval) = &answer {
        crate::metrics::approval_decided(approval);
    }
    match answer {
        Ok(approval) if approval.status == ApprovalStatus::Pending => {
            decided(back, &id, Became::Counted)
        }
        Ok(_) => decided(back, &id, Became::Recorded),
        Err(AuthorityError::AlreadyApproved { .. }) => decided(back, &id, Became::AlreadyYours),
        Err(AuthorityError::ApprovalDecided { .. }) => decided(back, &id, Became::AlreadyDecided),
        Err(AuthorityError::ApprovalNotFound { .. }) => not_found(&session),
        Err(AuthorityError::SelfApproval { .. }) => page(
            StatusCode::FORBIDDEN,
            refused(
                Some(&session),
                "Refused",
                "Nobody decides an approval requested under their own name.",
            ),
        ),
        Err(AuthorityError::Request(error)) => bad(&error.to_string()),
        Err(error) => {
            tracing::warn!(%error, "console decision failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                refused(
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
        refused(
            Some(session),
            "Not found",
            "No such approval in this tenant.",
        ),
    )
}

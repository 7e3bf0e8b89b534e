//! The pages an approver decides from, rendered on the server (maud escapes every value it interpolates: a param
//! of `<script>` is text): sign-in, the inbox (what waits, most urgent first) and one approval's page (what a
//! notification links to). No script is needed to approve or reject: every action is a form.

use maud::{Markup, html};
use serde_json::Value;
use time::OffsetDateTime;

use haltstate_types::{Approval, ApprovalStatus};

use super::layout::{layout, urlencode};
use super::session::Session;
use super::visible::Visible;
use super::when::When;

/// Params shown in an inbox row at most (the approval's page shows them all).
const ROW_PARAMS: usize = 6;
/// Characters of one param's value shown in a row.
const ROW_VALUE_CHARS: usize = 120;

/// The sign-in form with its CSRF token; `error` says why the last attempt failed, `next` is the page to return to.
pub(crate) fn login(csrf: &str, error: Option<&str>, next: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            h1 { "Sign in" }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            p { "Sign in with an operator key. The key is exchanged for a session; it is not kept in the browser." }
            form method="post" action="/ui/login" {
                input type="hidden" name="csrf" value=(csrf);
                @if let Some(next) = next { input type="hidden" name="next" value=(next); }
                p { label { "Tenant " input name="tenant" required autocomplete="organization"; } }
                p { label { "Operator key " input name="key" type="password" required autocomplete="current-password"; } }
                p { button type="submit" { "Sign in" } }
            }
        },
    )
}

/// How many approvals each agent has waiting, fewest first (a lone request is listed before a flood).
fn per_agent(pending: &[Approval]) -> Vec<(&str, usize)> {
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for approval in pending {
        *counts.entry(approval.agent_id.as_str()).or_default() += 1;
    }
    let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
    counts.sort_by_key(|(_, count)| *count);
    counts
}

/// Where a decision form returns to after the decision: the page it was posted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Back {
    Inbox,
    Approval,
}

impl Back {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Back::Inbox => "inbox",
            Back::Approval => "approval",
        }
    }
}

/// "1 of 2: alice" for an approval several operators must approve.
fn quorum(approval: &Approval) -> Option<String> {
    (approval.approvals_required > 1).then(|| {
        let mut text = format!(
            "{} of {}",
            approval.approved_by.len(),
            approval.approvals_required
        );
        if !approval.approved_by.is_empty() {
            text.push_str(": ");
            text.push_str(&approval.approved_by.join(", "));
        }
        text
    })
}

/// One param as a row shows it: compact JSON, cut at [`ROW_VALUE_CHARS`].
fn short_value(value: &Value) -> String {
    let text = match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    match text.char_indices().nth(ROW_VALUE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn params_list(approval: &Approval) -> Markup {
    html! {
        @if approval.params.is_empty() { span.muted { "none" } } @else {
            ul.params {
                @for (name, value) in approval.params.iter().take(ROW_PARAMS) {
                    li { strong { (Visible(name)) } ": " (Visible(&short_value(value))) }
                }
                @if approval.params.len() > ROW_PARAMS {
                    li { a href=(format!("/ui/approvals/{}", approval.id)) { "+" (approval.params.len() - ROW_PARAMS) " more" } }
                }
            }
        }
    }
}

/// Pending approvals, the soonest to expire first, each with its approve and reject forms.
pub(crate) fn inbox(
    session: &Session,
    mut pending: Vec<Approval>,
    now: OffsetDateTime,
    notice: Option<&Markup>,
) -> Markup {
    pending.sort_by(|a, b| (a.expires_at, &a.id).cmp(&(b.expires_at, &b.id)));
    layout(
        "Inbox",
        Some(session),
        html! {
            h1 { "Waiting for a decision" }
            @if let Some(notice) = notice { p.notice role="status" { (notice) } }
            div id="inbox" {
            @if pending.is_empty() {
                p { "Nothing waits for a decision." }
            } @else {
                // Who is asking, at a glance: one agent's flood of requests does not hide another's.
                p id="inbox-summary" {
                    (pending.len()) " waiting, the soonest to expire first: "
                    @for (i, (agent, count)) in per_agent(&pending).iter().enumerate() {
                        @if i > 0 { " · " }
                        (agent) " " (count)
                    }
                }
                table.cards {
                    thead { tr {
                        th scope="col" { "Request" } th scope="col" { "Agent" } th scope="col" { "Params" }
                        th scope="col" { "Why" } th scope="col" { "Requested" } th scope="col" { "Expires" } th scope="col" { "Decision" }
                    } }
                    tbody {
                        @for approval in &pending {
                            tr id=(format!("approval-{}", approval.id)) {
                                td data-label="Request" {
                                    a href=(format!("/ui/approvals/{}", approval.id)) { strong { (approval.action) } }
                                    @if let Some(resource) = &approval.resource { " on " (Visible(resource)) }
                                    br; small.muted { code { (approval.id) } }
                                    @if let Some(key) = &approval.idempotency_key { br; small { "key " code.key { (Visible(key)) } } }
                                }
                                td data-label="Agent" { (approval.agent_id) }
                                td data-label="Params" { (params_list(approval)) }
                                td data-label="Why" {
                                    (approval.policy_reason)
                                    @if let Some(policy) = &approval.policy_id { br; small.muted { "policy " (policy) } }
                                    @if let Some(risk) = &approval.risk { br; small { "risk " strong { (risk) } } }
                                }
                                td data-label="Requested" { (When { at: approval.created_at, now }) }
                                td data-label="Expires" { (When { at: approval.expires_at, now }) }
                                td data-label="Decision" {
                                    @if let Some(progress) = quorum(approval) { p.progress { (progress) } }
                                    (decide_forms(session, approval, Back::Inbox))
                                }
                            }
                        }
                    }
                }
            }
            }
        },
    )
}

/// Approve (a reason welcome) and reject (a reason required), as two distinct forms.
fn decide_forms(session: &Session, approval: &Approval, back: Back) -> Markup {
    let action = format!("/ui/approvals/{}/decide", approval.id);
    html! {
        form.decide method="post" action=(action) {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="back" value=(back.as_str());
            label { "Reason (optional)" input name="reason" maxlength="500" autocomplete="off"; }
            button.approve type="submit" name="verdict" value="approve" { "Approve" }
        }
        details.reject {
            summary { "Reject…" }
            form.decide method="post" action=(action) {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="back" value=(back.as_str());
                label { "Why reject? (required)" input name="reason" required maxlength="500" autocomplete="off"; }
                button.reject type="submit" name="verdict" value="reject" { "Reject" }
            }
        }
    }
}

/// One approval, whatever its status: what was asked, and its decision or the forms to make it (the page a
/// notification links to: the decision first, then every detail).
pub(crate) fn approval(
    session: &Session,
    approval: &Approval,
    now: OffsetDateTime,
    notice: Option<&Markup>,
) -> Markup {
    let pending = approval.status == ApprovalStatus::Pending;
    layout(
        "Approval",
        Some(session),
        html! {
            @if let Some(notice) = notice { p.notice role="status" { (notice) } }
            h1 { (approval.action) " by " (approval.agent_id) }
            p {
                "Status " strong id="status" { (approval.status.as_str()) }
                " · requested " (When { at: approval.created_at, now })
                @if pending { " · expires " (When { at: approval.expires_at, now }) }
                @if let Some(progress) = quorum(approval) { " · " span id="approvals" { (progress) } }
            }
            p { (approval.policy_reason) }
            @if pending {
                h2 { "Decision" }
                (decide_forms(session, approval, Back::Approval))
            }
            h2 { "Details" }
            table id="approval" {
                tr { th scope="row" { "Approval" } td { code { (approval.id) } } }
                tr { th scope="row" { "Action" } td { (approval.action) } }
                tr { th scope="row" { "Agent" } td { (approval.agent_id) } }
                tr { th scope="row" { "Resource" } td { (Visible(approval.resource.as_deref().unwrap_or("-"))) } }
                tr { th scope="row" { "Params" } td { pre { (Visible(&serde_json::to_string_pretty(&approval.params).unwrap_or_default())) } } }
                tr { th scope="row" { "Risk" } td { (approval.risk.as_deref().unwrap_or("-")) } }
                tr { th scope="row" { "Policy" } td { (approval.policy_id.as_deref().unwrap_or("-")) } }
                @if let Some(version) = &approval.policy_version {
                    tr { th scope="row" { "Policy set" } td { code { (version.get(..12).unwrap_or(version)) } } }
                }
                @if let Some(key) = &approval.idempotency_key {
                    tr { th scope="row" { "Key" } td { a href=(format!("/ui/timeline?key={}", urlencode(key))) { code { (Visible(key)) } } } }
                }
                tr { th scope="row" { "Requested" } td { (super::when::Exact(approval.created_at)) } }
                tr { th scope="row" { "Expires" } td { (super::when::Exact(approval.expires_at)) } }
                @if let Some(decided) = approval.decided_at {
                    tr { th scope="row" { "Decided" } td id="decided" {
                        (super::when::Exact(decided))
                        @if let Some(approver) = &approval.approver { " by " (approver) }
                        @if let Some(reason) = &approval.decision_reason { br; small { (Visible(reason)) } }
                    } }
                }
            }
        },
    )
}

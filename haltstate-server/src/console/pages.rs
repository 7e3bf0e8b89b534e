//! The console's pages, rendered on the server (maud escapes every value it interpolates: a param of
//! `<script>` is text). No script is needed to approve or reject: every action is a form.

use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;

use haltstate_types::Approval;
use haltstate_types::timestamp::format_rfc3339;

use super::session::Session;
use super::visible::Visible;

const STYLE: &str = "body{font:15px system-ui,sans-serif;margin:0;color:#1d1d1f}\
header{background:#1d1d1f;color:#fff;padding:.6em 1.2em;display:flex;gap:1.2em;align-items:center}\
header a{color:#fff}main{padding:1.2em;max-width:72em}table{border-collapse:collapse;width:100%}\
td,th{border-bottom:1px solid #ddd;padding:.45em;text-align:left;vertical-align:top}\
pre{margin:0;white-space:pre-wrap;font-size:13px}.notice{background:#fff4ce;padding:.6em;margin-bottom:1em}\
.error{background:#fde7e9;padding:.6em;margin-bottom:1em}form.inline{display:inline}\
button{cursor:pointer}.who{margin-left:auto}input[name=reason]{width:9em}code{word-break:break-all}mark.hidden-char{background:#fd8;font:smaller monospace}";

pub(crate) fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · HaltState" }
                style { (STYLE) }
            }
            body {
                header {
                    strong { "HaltState" }
                    @if let Some(session) = session {
                        @if session.principal.role == haltstate_types::Role::Admin {
                            a href="/ui/keys" { "Keys" }
                        } @else {
                            a href="/ui/inbox" { "Inbox" }
                            a href="/ui/history" { "History" }
                            a href="/ui/kill" { "Kill switch" }
                            a href="/ui/keys" { "Keys" }
                            a href="/ui/webhooks" { "Webhooks" }
                            a href="/ui/shadow" { "Shadow" }
                        }
                        span.who { (session.principal.name) " · " (session.principal.tenant) " · " (session.principal.role.as_str()) }
                        form.inline method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
                @if session.is_some() { script src="/ui/console.js" {} }
            }
        }
    }
}

/// The sign-in form with its CSRF token; `error` says why the last attempt failed.
pub(crate) fn login(csrf: &str, error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            h1 { "Sign in" }
            @if let Some(error) = error { p.error { (error) } }
            p { "Sign in with an operator key. The key is exchanged for a session; it is not kept in the browser." }
            form method="post" action="/ui/login" {
                input type="hidden" name="csrf" value=(csrf);
                p { label { "Tenant " input name="tenant" required autocomplete="organization"; } }
                p { label { "Operator key " input name="key" type="password" required autocomplete="current-password"; } }
                p { button type="submit" { "Sign in" } }
            }
        },
    )
}

fn time(at: OffsetDateTime) -> String {
    format_rfc3339(at)
}

/// Pending approvals, newest first, each with approve and reject forms.
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

pub(crate) fn inbox(session: &Session, pending: &[Approval], notice: Option<&str>) -> Markup {
    layout(
        "Inbox",
        Some(session),
        html! {
            h1 { "Waiting for a decision" }
            @if let Some(notice) = notice { p.notice { (notice) } }
            div id="inbox" {
            @if pending.is_empty() {
                p { "Nothing waits for a decision." }
            } @else {
                // Who is asking, at a glance: one agent's flood of requests does not hide another's.
                p id="inbox-summary" {
                    (pending.len()) " waiting: "
                    @for (i, (agent, count)) in per_agent(pending).iter().enumerate() {
                        @if i > 0 { " · " }
                        (agent) " " (count)
                    }
                }
                table {
                    thead { tr {
                        th { "Action" } th { "Agent" } th { "Resource" } th { "Params" } th { "Risk" }
                        th { "Policy" } th { "Requested" } th { "Expires" } th { "Decision" }
                    } }
                    tbody {
                        @for approval in pending {
                            tr id=(format!("approval-{}", approval.id)) {
                                td { (approval.action) }
                                td { (approval.agent_id) }
                                td { (Visible(approval.resource.as_deref().unwrap_or("-"))) }
                                td { pre { (Visible(&serde_json::to_string_pretty(&approval.params).unwrap_or_default())) } }
                                td { (approval.risk.as_deref().unwrap_or("-")) }
                                td { (approval.policy_id.as_deref().unwrap_or("-")) br; small { (approval.policy_reason) } }
                                td { (time(approval.created_at)) }
                                td { (time(approval.expires_at)) }
                                td {
                                    @if approval.approvals_required > 1 {
                                        p.progress { (approval.approved_by.len()) " of " (approval.approvals_required) " approvals"
                                            @if !approval.approved_by.is_empty() { " (" (approval.approved_by.join(", ")) ")" } }
                                    }
                                    (decide_form(session, approval))
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

fn decide_form(session: &Session, approval: &Approval) -> Markup {
    html! {
        form method="post" action=(format!("/ui/approvals/{}/decide", approval.id)) {
            input type="hidden" name="csrf" value=(session.csrf);
            input name="reason" placeholder="reason" maxlength="500";
            " "
            button type="submit" name="verdict" value="approve" { "Approve" }
            " "
            button type="submit" name="verdict" value="reject" { "Reject" }
        }
    }
}

/// One approval, whatever its status: what was asked, and its decision or the forms to make it (the page a
/// notification links to).
pub(crate) fn approval(session: &Session, approval: &Approval) -> Markup {
    layout(
        "Approval",
        Some(session),
        html! {
            h1 { "Approval " code { (approval.id) } }
            table id="approval" {
                tr { th { "Status" } td id="status" { (approval.status.as_str()) } }
                tr { th { "Action" } td { (approval.action) } }
                tr { th { "Agent" } td { (approval.agent_id) } }
                tr { th { "Resource" } td { (Visible(approval.resource.as_deref().unwrap_or("-"))) } }
                tr { th { "Params" } td { pre { (Visible(&serde_json::to_string_pretty(&approval.params).unwrap_or_default())) } } }
                tr { th { "Risk" } td { (approval.risk.as_deref().unwrap_or("-")) } }
                tr { th { "Policy" } td { (approval.policy_id.as_deref().unwrap_or("-")) br; small { (approval.policy_reason) } } }
                tr { th { "Requested" } td { (time(approval.created_at)) } }
                tr { th { "Expires" } td { (time(approval.expires_at)) } }
                @if approval.approvals_required > 1 {
                    tr { th { "Approvals" } td id="approvals" {
                        (approval.approved_by.len()) " of " (approval.approvals_required)
                        @if !approval.approved_by.is_empty() { " (" (approval.approved_by.join(", ")) ")" }
                    } }
                }
                @if let Some(version) = &approval.policy_version {
                    tr { th { "Policy set" } td { code { (version.get(..12).unwrap_or(version)) } } }
                }
                @if let Some(key) = &approval.idempotency_key {
                    tr { th { "Key" } td { a href=(format!("/ui/timeline?key={}", urlencode(key))) { code { (key) } } } }
                }
                @if let Some(decided) = approval.decided_at {
                    tr { th { "Decided" } td {
                        (time(decided))
                        @if let Some(approver) = &approval.approver { " by " (approver) }
                        @if let Some(reason) = &approval.decision_reason { br; small { (Visible(reason)) } }
                    } }
                }
            }
            @if approval.status == haltstate_types::ApprovalStatus::Pending {
                h2 { "Decision" }
                (decide_form(session, approval))
            }
        },
    )
}

/// A query parameter's value, percent-encoded (maud escapes HTML, not URLs).
pub(crate) fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A refusal page (bad CSRF token, unknown approval) with its status.
pub(crate) fn refused(session: Option<&Session>, title: &str, why: &str) -> Markup {
    layout(
        title,
        session,
        html! {
            h1 { (title) }
            p.error { (why) }
            p { a href="/ui/inbox" { "Back to the inbox" } }
        },
    )
}

//! The kill switch in the console: the tenant's and each agent's state, and a change in two steps (review,
//! then confirm), recorded as the signed-in operator, `via: console`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use haltstate_types::{Actor, KillScope, KillState, Via, canonical_name};

use super::extract::CsrfForm;
use super::layout::{layout, refused};
use super::page;
use super::session::Session;
use super::visible::Visible;
use super::when::{Exact, When};
use crate::state::{AppState, Shared};

fn state_name(state: KillState) -> &'static str {
    state.as_str()
}

/// Changes the history shows at most.
const HISTORY: u32 = 50;

fn kill_page(state: &AppState, session: &Session, notice: Option<&str>) -> Response {
    let tenant = &session.principal.tenant;
    let now = state.authority.now();
    let own = state.authority.kill_switch(tenant, None);
    let agents = state.authority.kill_switches().map(|all| {
        all.into_iter()
            .filter_map(|(scope, state)| match scope {
                KillScope::Agent {
                    tenant: t,
                    agent_id,
                } if t == *tenant => Some((agent_id, state)),
                _ => None,
            })
            .collect::<Vec<_>>()
    });
    let history = state.authority.kill_switch_history(tenant, HISTORY);
    let (Ok(own), Ok(agents), Ok(history)) = (own, agents, history) else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            refused(
                Some(session),
                "Unavailable",
                "The kill switch cannot be read right now.",
            ),
        );
    };
    let body = html! {
        h1 { "Kill switch" }
        @if let Some(notice) = notice { p.notice role="status" { (notice) } }
        p { "Tenant " strong { (tenant) } ": " strong id="tenant-state" { (state_name(own.state)) } }
        @if !agents.is_empty() {
            table {
                thead { tr { th scope="col" { "Agent" } th scope="col" { "State" } } }
                tbody { @for (agent, state) in &agents { tr { td { (agent) } td { (state_name(*state)) } } } }
            }
        }
        h2 { "Change" }
        form method="post" action="/ui/kill" {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="step" value="review";
            p { label { "Agent (empty: the whole tenant) " input name="agent"; } }
            p {
                @for choice in ["run", "pause", "kill"] {
                    label { input type="radio" name="state" value=(choice) required; " " (choice.to_uppercase()) } " "
                }
            }
            p { label { "Why (kept in the ledger, shown below) " input name="reason" maxlength="500" required; } }
            p { button type="submit" { "Review" } }
        }
        h2 { "History" }
        @if history.is_empty() { p { "Never changed." } } @else {
            table.cards id="kill-history" {
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Change" } } }
                tbody {
                    @for record in &history {
                        tr {
                            td data-label="When" { (When { at: record.at, now }) br; small.muted { (Exact(record.at)) } }
                            td data-label="Who" { (record.actor.as_deref().unwrap_or("-"))
                                @if let Some(via) = record.via { small.muted { " via " (via.as_str()) } } }
                            td data-label="Change" { (Visible(record.reason.as_deref().unwrap_or("-"))) }
                        }
                    }
                }
            }
        }
    };
    page(StatusCode::OK, layout("Kill switch", Some(session), body))
}

/// `?changed=1`: the page a change redirects to (reloading it changes nothing).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Changed {
    #[serde(default)]
    changed: Option<String>,
}

pub(crate) async fn show(
    State(state): State<Shared>,
    session: Session,
    Query(changed): Query<Changed>,
) -> Response {
    // The message is the newest change as recorded: who set what, and why.
    let notice = changed
        .changed
        .and_then(|_| {
            state
                .authority
                .kill_switch_history(&session.principal.tenant, 1)
                .ok()
        })
        .and_then(|records| records.into_iter().next())
        .map(|record| {
            format!(
                "{} recorded: {}.",
                record.actor.as_deref().unwrap_or("someone"),
                record.reason.as_deref().unwrap_or("a change")
            )
        });
    kill_page(&state, &session, notice.as_deref())
}

#[derive(Debug, Deserialize)]
pub(crate) struct KillForm {
    #[serde(default)]
    csrf: String,
    step: String,
    #[serde(default)]
    agent: String,
    state: String,
    #[serde(default)]
    reason: String,
}

fn confirm_page(session: &Session, form: &KillForm, target: &str, new_state: KillState) -> Markup {
    layout(
        "Confirm",
        Some(session),
        html! {
            h1 { "Confirm" }
            p { "Set " strong { (target) } " to " strong { (new_state.as_str().to_uppercase()) } "?" }
            @if new_state != KillState::Run {
                p { "Every guard it covers is denied until it is set to RUN again." }
            }
            p { "Why: " (Visible(form.reason.trim())) }
            form method="post" action="/ui/kill" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="step" value="confirm";
                input type="hidden" name="agent" value=(form.agent);
                input type="hidden" name="state" value=(form.state);
                input type="hidden" name="reason" value=(form.reason);
                button.danger type="submit" { "Confirm: set " (target) " to " (new_state.as_str().to_uppercase()) } " "
                a href="/ui/kill" { "Cancel" }
            }
        },
    )
}

pub(crate) async fn change(
    State(state): State<Shared>,
    CsrfForm(session, form): CsrfForm<KillForm>,
) -> Response {
    let bad = |why: &str| {
        page(
            StatusCode::BAD_REQUEST,
            refused(Some(&session), "Refused", why),
        )
    };
    let Some(new_state) = KillState::parse(&form.state.to_ascii_uppercase()) else {
        return bad("RUN, PAUSE or KILL: nothing else.");
    };
    let tenant = session.principal.tenant.clone();
    let agent = form.agent.trim();
    let scope = if agent.is_empty() {
        KillScope::Tenant(tenant.clone())
    } else {
        match canonical_name("agent_id", agent) {
            Ok(agent_id) => KillScope::Agent {
                tenant: tenant.clone(),
                agent_id,
            },
            Err(error) => return bad(&error.to_string()),
        }
    };
    let target = match &scope {
        KillScope::Tenant(tenant) => format!("tenant {tenant}"),
        KillScope::Agent { agent_id, .. } => format!("agent {agent_id}"),
    };
    let reason = form.reason.trim();
    if reason.is_empty() {
        return bad(
            "Say why: the switch's history keeps who changed it, when and why. Nothing changed.",
        );
    }
    if form.step != "confirm" {
        return page(
            StatusCode::OK,
            confirm_page(&session, &form, &target, new_state),
        );
    }
    let actor = match Actor::new(&session.principal.name, Via::Console) {
        Ok(actor) => actor,
        Err(error) => return bad(&error.to_string()),
    };
    match state
        .authority
        .set_kill_switch_because(scope, new_state, actor, Some(reason))
        .await
    {
        Ok(_) => Redirect::to("/ui/kill?changed=1").into_response(),
        Err(haltstate_authority::AuthorityError::Request(error)) => bad(&error.to_string()),
        Err(error) => {
            tracing::warn!(%error, "console kill-switch change failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                refused(
                    Some(&session),
                    "Unavailable",
                    "The change could not be recorded; nothing changed.",
                ),
            )
        }
    }
}

super::extract::csrf_field!(KillForm);

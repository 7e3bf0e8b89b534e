//! The kill switch in the console: the tenant's and each agent's state, and a change in two steps (review,
//! then confirm), recorded as the signed-in operator, `via: console`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use haltstate_types::{Actor, KillScope, KillState, Via, canonical_name};

use super::extract::CsrfForm;
use super::page;
use super::pages::{layout, refused};
use super::session::Session;
use crate::state::AppState;

fn state_name(state: KillState) -> &'static str {
    state.as_str()
}

fn kill_page(state: &AppState, session: &Session, notice: Option<&str>) -> Response {
    let tenant = &session.principal.tenant;
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
    let (Ok(own), Ok(agents)) = (own, agents) else {
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
        @if let Some(notice) = notice { p.notice { (notice) } }
        p { "Tenant " strong { (tenant) } ": " strong id="tenant-state" { (state_name(own.state)) } }
        @if !agents.is_empty() {
            table {
                thead { tr { th { "Agent" } th { "State" } } }
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
            p { button type="submit" { "Review" } }
        }
    };
    page(StatusCode::OK, layout("Kill switch", Some(session), body))
}

pub(crate) async fn show(State(state): State<AppState>, session: Session) -> Response {
    kill_page(&state, &session, None)
}

#[derive(Debug, Deserialize)]
pub(crate) struct KillForm {
    #[serde(default)]
    csrf: String,
    step: String,
    #[serde(default)]
    agent: String,
    state: String,
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
            form method="post" action="/ui/kill" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="step" value="confirm";
                input type="hidden" name="agent" value=(form.agent);
                input type="hidden" name="state" value=(form.state);
                button type="submit" { "Confirm" } " "
                a href="/ui/kill" { "Cancel" }
            }
        },
    )
}

pub(crate) async fn change(
    State(state): State<AppState>,
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
        .set_kill_switch_as(scope, new_state, actor)
        .await
    {
        Ok(_) => {
            let notice = format!("{target} is now {}.", new_state.as_str().to_uppercase());
            kill_page(&state, &session, Some(&notice))
        }
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

//! Keys in the console: the tenant's keys (never a secret) for operators and admins; for admins only, a new key
//! (its secret shown once) and revocation, each recorded in the ledger as theirs.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use haltstate_types::timestamp::format_rfc3339;
use haltstate_types::{AgentSet, KeySpec, Role};

use super::extract::CsrfForm;
use super::page;
use super::pages::{layout, refused};
use super::session::Session;
use crate::state::AppState;

fn keys_page(state: &AppState, session: &Session, notice: Option<&str>) -> Response {
    let Ok(keys) = state.authority.keys(&session.principal.tenant, false) else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            refused(
                Some(session),
                "Unavailable",
                "The keys cannot be read right now.",
            ),
        );
    };
    let admin = session.principal.role == Role::Admin;
    let body = html! {
        h1 { "Keys" }
        @if !admin { p { "Keys are minted and revoked by admins (an admin key, here or through the API; or "
            code { "haltstate keys create --db" } ")." } }
        @if let Some(notice) = notice { p.notice { (notice) } }
        table {
            thead { tr { th { "Id" } th { "Name" } th { "Role" } th { "Acts as" } th { "Created" } th { "" } } }
            tbody {
                @for key in &keys {
                    tr id=(format!("key-{}", key.id)) {
                        td { code { (key.id) } }
                        td { (key.name) }
                        td { (key.role.as_str()) }
                        td { @if key.role == Role::Agent { (key.agents.to_string()) } }
                        td { (format_rfc3339(key.created_at)) }
                        td {
                            @if let Some(revoked) = key.revoked_at {
                                "revoked " (format_rfc3339(revoked))
                            } @else if admin {
                                form method="post" action=(format!("/ui/keys/{}/revoke", key.id)) {
                                    input type="hidden" name="csrf" value=(session.csrf);
                                    button type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if admin {
            h2 { "New key" }
            form method="post" action="/ui/keys" {
                input type="hidden" name="csrf" value=(session.csrf);
                p { label { "Name (never reused: a revoked key's name stays its own) " input name="name" required maxlength="128"; } }
                p {
                    label { input type="radio" name="role" value="agent" required; " agent" } " "
                    label { input type="radio" name="role" value="operator" required; " operator" } " "
                    label { input type="radio" name="role" value="admin" required; " admin" }
                }
                p { label { "Agents it acts as (names, prefix*, or *; empty: its name) " input name="agents"; } }
                p { button type="submit" { "Create" } }
            }
        }
    };
    page(StatusCode::OK, layout("Keys", Some(session), body))
}

pub(crate) async fn show(State(state): State<AppState>, session: Session) -> Response {
    keys_page(&state, &session, None)
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    #[serde(default)]
    csrf: String,
    name: String,
    role: String,
    #[serde(default)]
    agents: String,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    CsrfForm(session, form): CsrfForm<CreateForm>,
) -> Response {
    let bad = |why: &str| {
        page(
            StatusCode::BAD_REQUEST,
            refused(Some(&session), "Refused", why),
        )
    };
    let role = match form.role.as_str() {
        "agent" => Role::Agent,
        "operator" => Role::Operator,
        "admin" => Role::Admin,
        _ => return bad("agent, operator or admin: nothing else."),
    };
    let mut spec = KeySpec::new(form.name.trim(), role);
    if role == Role::Agent && !form.agents.trim().is_empty() {
        let patterns: Vec<String> = form
            .agents
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        match AgentSet::parse(&patterns) {
            Ok(agents) => spec = spec.agents(agents),
            Err(error) => return bad(&error.to_string()),
        }
    }
    match state
        .authority
        .create_key_as(&session.principal.tenant, spec, &session.principal.name)
        .await
    {
        Ok(key) => {
            let body = html! {
                h1 { "Key created" }
                p.notice { "Copy the secret now: it is shown once and never again." }
                p { "Key " code { (key.id) } }
                p { code id="secret" { (key.secret) } }
                p { a href="/ui/keys" { "Back to the keys" } }
            };
            page(StatusCode::OK, layout("Key created", Some(&session), body))
        }
        Err(error) => bad(&error.to_string()),
    }
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(session, _form): CsrfForm<super::TokenForm>,
) -> Response {
    match state
        .authority
        .revoke_key_as(&session.principal.tenant, &id, &session.principal.name)
        .await
    {
        Ok(true) => keys_page(&state, &session, Some(&format!("Key {id} is revoked."))),
        Ok(false) => page(
            StatusCode::NOT_FOUND,
            refused(
                Some(&session),
                "Not found",
                "No such live key in this tenant.",
            ),
        ),
        Err(error) => {
            tracing::warn!(%error, "console revocation failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                refused(
                    Some(&session),
                    "Unavailable",
                    "The key could not be revoked; try again.",
                ),
            )
        }
    }
}

super::extract::csrf_field!(CreateForm);

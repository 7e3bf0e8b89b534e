//! Keys in the console: the tenant's keys (never a secret) for operators and admins; for admins only, a new key
//! (its secret shown once) and revocation, each recorded in the ledger as theirs.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use time::OffsetDateTime;

use haltstate_types::{AgentSet, KeyInfo, KeySpec, Role};

use super::extract::CsrfForm;
use super::layout::{layout, refused, urlencode};
use super::page;
use super::session::Session;
use super::visible::Visible;
use super::when::When;
use crate::state::{AppState, Shared};

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
    let now = state.authority.now();
    let body = html! {
        h1 { "Keys" }
        @if !admin { p { "Keys are minted and revoked by admins (an admin key, here or through the API; or "
            code { "haltstate keys create --db" } ")." } }
        @if let Some(notice) = notice { p.notice role="status" { (notice) } }
        table.cards {
            thead { tr { th scope="col" { "Key" } th scope="col" { "Role" } th scope="col" { "Acts as" } th scope="col" { "Created" } th scope="col" { "State" } th scope="col" { "History" } } }
            tbody {
                @for key in &keys {
                    tr id=(format!("key-{}", key.id)) {
                        td data-label="Key" { strong { (key.name) } br; small.muted { code { (key.id) } } }
                        td data-label="Role" { (key.role.as_str()) }
                        td data-label="Acts as" { @if key.role == Role::Agent { (key.agents.to_string()) } @else { "-" } }
                        td data-label="Created" { (When { at: key.created_at, now }) }
                        td data-label="State" {
                            @if let Some(revoked) = key.revoked_at {
                                "revoked " (When { at: revoked, now })
                            } @else if admin {
                                "live "
                                form.inline method="post" action=(format!("/ui/keys/{}/revoke", key.id)) {
                                    input type="hidden" name="csrf" value=(session.csrf);
                                    input type="hidden" name="step" value="review";
                                    button type="submit" aria-label=(format!("Revoke {}…", key.name)) { "Revoke…" }
                                }
                            } @else { "live" }
                        }
                        td data-label="History" { (history(state, session, &key.id, now)) }
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

/// Changes a key's history shows at most.
const HISTORY: u32 = 20;

/// Who created, rotated and revoked the key, when and why, from its ledger records.
fn history(state: &AppState, session: &Session, key_id: &str, now: OffsetDateTime) -> Markup {
    match state
        .authority
        .key_history(&session.principal.tenant, key_id, HISTORY)
    {
        Ok(records) if records.is_empty() => html! { span.muted { "none recorded" } },
        Ok(records) => html! {
            details.key-history {
                summary { (records.len()) " changes" }
                ul {
                    @for record in &records {
                        li {
                            (record.status.as_deref().unwrap_or("changed")) " by "
                            strong { (record.actor.as_deref().unwrap_or("-")) } " "
                            (When { at: record.at, now })
                            @if let Some(reason) = &record.reason { br; small { (Visible(reason)) } }
                        }
                    }
                }
            }
        },
        Err(error) => {
            tracing::warn!(%error, "console could not read a key's history");
            html! { span.muted { "unavailable" } }
        }
    }
}

/// `?revoked=<key id>`: the page a revocation redirects to (reloading it changes nothing).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Revoked {
    #[serde(default)]
    revoked: Option<String>,
}

pub(crate) async fn show(
    State(state): State<Shared>,
    session: Session,
    Query(revoked): Query<Revoked>,
) -> Response {
    // The message is the revocation as recorded: who, and why.
    let notice = revoked.revoked.and_then(|id| {
        let record = state
            .authority
            .key_history(&session.principal.tenant, &id, 1)
            .ok()?
            .into_iter()
            .next()?;
        Some(format!(
            "Key {id} {} by {}.",
            record.reason.as_deref().unwrap_or("changed"),
            record.actor.as_deref().unwrap_or("someone")
        ))
    });
    keys_page(&state, &session, notice.as_deref())
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
    State(state): State<Shared>,
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

#[derive(Debug, Deserialize)]
pub(crate) struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    step: String,
    #[serde(default)]
    reason: String,
}

/// Revoking asks first: which key, what it stops, and why (kept in its history).
fn confirm_revoke(session: &Session, key: &KeyInfo) -> Markup {
    layout(
        "Revoke a key",
        Some(session),
        html! {
            h1 { "Revoke " (key.name) "?" }
            p { "Key " code { (key.id) } ", " (key.role.as_str()) ". From its next request it is refused, and the console "
                "sessions it signed in end. A revoked key stays revoked; its name is never given to another key." }
            form method="post" action=(format!("/ui/keys/{}/revoke", key.id)) {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="step" value="confirm";
                p { label { "Why (kept in the key's history) " input name="reason" required maxlength="500" autocomplete="off"; } }
                p {
                    button.danger type="submit" { "Revoke " (key.name) }
                    " " a href="/ui/keys" { "Cancel" }
                }
            }
        },
    )
}

pub(crate) async fn revoke(
    State(state): State<Shared>,
    Path(id): Path<String>,
    CsrfForm(session, form): CsrfForm<RevokeForm>,
) -> Response {
    let tenant = &session.principal.tenant;
    let not_found = || {
        page(
            StatusCode::NOT_FOUND,
            refused(
                Some(&session),
                "Not found",
                "No such live key in this tenant.",
            ),
        )
    };
    let key = match state.authority.key(tenant, &id) {
        Ok(key) if key.revoked_at.is_none() => key,
        Ok(_) | Err(haltstate_authority::AuthorityError::KeyNotFound { .. }) => return not_found(),
        Err(error) => return unavailable(&session, &error),
    };
    let reason = form.reason.trim();
    if form.step != "confirm" || reason.is_empty() {
        return page(StatusCode::OK, confirm_revoke(&session, &key));
    }
    match state
        .authority
        .revoke_key_because(tenant, &id, &session.principal.name, Some(reason))
        .await
    {
        Ok(true) => Redirect::to(&format!("/ui/keys?revoked={}", urlencode(&id))).into_response(),
        Ok(false) => not_found(),
        Err(haltstate_authority::AuthorityError::Request(error)) => page(
            StatusCode::BAD_REQUEST,
            refused(Some(&session), "Refused", &error.to_string()),
        ),
        Err(error) => unavailable(&session, &error),
    }
}

fn unavailable(session: &Session, error: &haltstate_authority::AuthorityError) -> Response {
    tracing::warn!(%error, "console could not read or revoke a key");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        refused(
            Some(session),
            "Unavailable",
            "The key could not be read or revoked; nothing changed. Try again.",
        ),
    )
}

super::extract::csrf_field!(CreateForm, RevokeForm);

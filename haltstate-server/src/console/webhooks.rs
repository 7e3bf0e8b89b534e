//! Webhooks in the console: the tenant's endpoints (never a secret), a new one (its secret shown once), removal,
//! and the latest deliveries with their attempts, state and last error.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::when::Exact;
use haltstate_authority::webhooks::{
    DeliveryRecord, DeliveryState, Webhook, WebhookEvent, WebhookFormat, WebhookSpec,
};

use super::extract::CsrfForm;
use super::layout::{layout, refused};
use super::page;
use super::session::Session;
use crate::state::{AppState, Shared};

/// Deliveries listed.
const SHOWN: u32 = 100;

fn webhooks_page(state: &AppState, session: &Session, notice: Option<&str>) -> Response {
    let tenant = &session.principal.tenant;
    let read = state
        .authority
        .webhooks(tenant)
        .and_then(|webhooks| Ok((webhooks, state.authority.webhook_deliveries(tenant, SHOWN)?)));
    let Ok((webhooks, deliveries)) = read else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            refused(
                Some(session),
                "Unavailable",
                "The webhooks cannot be read right now.",
            ),
        );
    };
    let body = html! {
        h1 { "Webhooks" }
        @if let Some(notice) = notice { p.notice { (notice) } }
        p { "Approval requests, decisions, expiries and kill-switch changes are posted to these addresses, signed as the Standard Webhooks specification describes, and retried with exponential backoff until they are received." }
        (endpoints(session, &webhooks))
        h2 { "New webhook" }
        form method="post" action="/ui/webhooks" {
            input type="hidden" name="csrf" value=(session.csrf);
            p { label { "URL " input name="url" type="url" required maxlength="2048" size="60"; } }
            p {
                @for event in WebhookEvent::ALL {
                    label { input type="checkbox" name=(field(event)) checked; " " (event.as_str()) } " "
                }
            }
            p {
                label { input type="radio" name="format" value="standard" checked; " Standard Webhooks" } " "
                label { input type="radio" name="format" value="slack"; " Slack message" }
            }
            p { button type="submit" { "Add" } }
        }
        h2 { "Deliveries" }
        (delivery_table(&deliveries))
    };
    page(StatusCode::OK, layout("Webhooks", Some(session), body))
}

fn endpoints(session: &Session, webhooks: &[Webhook]) -> Markup {
    html! {
        @if webhooks.is_empty() {
            p { "No webhooks." }
        } @else {
            table {
                thead { tr { th { "Id" } th { "URL" } th { "Events" } th { "Format" } th { "Added" } th { "" } } }
                tbody {
                    @for webhook in webhooks {
                        tr id=(format!("webhook-{}", webhook.id)) {
                            td { code { (webhook.id) } }
                            td { code { (shown_url(webhook)) } }
                            td { @for event in &webhook.events { (event.as_str()) br; } }
                            td { (webhook.format.as_str()) }
                            td { (Exact(webhook.created_at)) " by " (webhook.created_by) }
                            td {
                                form method="post" action=(format!("/ui/webhooks/{}/remove", webhook.id)) {
                                    input type="hidden" name="csrf" value=(session.csrf);
                                    button type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn delivery_table(deliveries: &[DeliveryRecord]) -> Markup {
    html! {
        @if deliveries.is_empty() {
            p { "Nothing delivered yet." }
        } @else {
            table id="deliveries" {
                thead { tr {
                    th { "Message" } th { "Webhook" } th { "Event" } th { "State" } th { "Attempts" }
                    th { "Last answer" } th { "Next attempt" } th { "Queued" }
                } }
                tbody {
                    @for delivery in deliveries {
                        tr class=(format!("delivery-{}", delivery.state.as_str())) {
                            td { code { (delivery.id) } }
                            td { code { (delivery.webhook_id) } }
                            td { (delivery.event.as_str()) }
                            td { (delivery.state.as_str()) }
                            td { (delivery.attempts) }
                            td {
                                @if let Some(status) = delivery.last_status { "HTTP " (status) " " }
                                @if let Some(error) = &delivery.last_error { small { (error) } }
                            }
                            td {
                                @if delivery.state == DeliveryState::Pending {
                                    (delivery.next_attempt_at.map(super::when::exact).unwrap_or_default())
                                }
                            }
                            td { (Exact(delivery.created_at)) }
                        }
                    }
                }
            }
        }
    }
}

/// The URL without what may be a credential (see [`shown_url`](haltstate_authority::webhooks::shown_url)).
fn shown_url(webhook: &Webhook) -> String {
    haltstate_authority::webhooks::shown_url(&webhook.url)
}

/// The form field of an event's checkbox: its name with `_` for `.` (`approval_requested`). Derived from the
/// event, so a new event is offered and read back without a list kept here.
fn field(event: WebhookEvent) -> String {
    event.as_str().replace('.', "_")
}

pub(crate) async fn show(State(state): State<Shared>, session: Session) -> Response {
    webhooks_page(&state, &session, None)
}

#[derive(Deserialize)]
pub(crate) struct AddForm {
    #[serde(default)]
    csrf: String,
    url: String,
    #[serde(default)]
    format: String,
    /// The other fields: the ticked events' checkboxes (see [`field`]).
    #[serde(flatten)]
    ticked: std::collections::HashMap<String, String>,
}

impl std::fmt::Debug for AddForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may itself be a credential (Slack).
        f.debug_struct("AddForm")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

pub(crate) async fn add(
    State(state): State<Shared>,
    CsrfForm(session, form): CsrfForm<AddForm>,
) -> Response {
    let bad = |why: &str| {
        page(
            StatusCode::BAD_REQUEST,
            refused(Some(&session), "Refused", why),
        )
    };
    let Some(format) = WebhookFormat::parse(&form.format) else {
        return bad("Standard Webhooks or Slack: nothing else.");
    };
    let chosen = WebhookEvent::ALL
        .into_iter()
        .filter(|event| form.ticked.contains_key(&field(*event)))
        .collect();
    let spec = match WebhookSpec::new(&form.url) {
        Ok(spec) => spec.events(chosen).format(format),
        Err(error) => return bad(&error.to_string()),
    };
    // An address literal is refused at once; a name is checked when it is resolved, at each attempt.
    if let Err(refused) = crate::outbound::check_url(&form.url, state.allow_private_targets) {
        return bad(&refused.to_string());
    }
    let added = state
        .authority
        .add_webhook(&session.principal.tenant, spec, &session.principal.name)
        .await;
    match added {
        Ok((webhook, secret)) => {
            let body = html! {
                h1 { "Webhook added" }
                p.notice { "Copy the signing secret now: it is shown once and never again. The receiver checks each delivery's webhook-signature header with it." }
                p { "Webhook " code { (webhook.id) } }
                p { code id="secret" { (secret.expose()) } }
                p { a href="/ui/webhooks" { "Back to the webhooks" } }
            };
            page(
                StatusCode::OK,
                layout("Webhook added", Some(&session), body),
            )
        }
        Err(error) => bad(&error.to_string()),
    }
}

pub(crate) async fn remove(
    State(state): State<Shared>,
    Path(id): Path<String>,
    CsrfForm(session, _form): CsrfForm<super::TokenForm>,
) -> Response {
    match state
        .authority
        .remove_webhook(&session.principal.tenant, &id)
        .await
    {
        Ok(true) => webhooks_page(
            &state,
            &session,
            Some(&format!(
                "Webhook {id} is removed; what it had not received is failed."
            )),
        ),
        Ok(false) => page(
            StatusCode::NOT_FOUND,
            refused(
                Some(&session),
                "Not found",
                "No such webhook in this tenant.",
            ),
        ),
        Err(error) => {
            tracing::warn!(%error, "console webhook removal failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                refused(
                    Some(&session),
                    "Unavailable",
                    "The webhook could not be removed; try again.",
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(url: &str, format: WebhookFormat) -> Webhook {
        Webhook {
            id: "wh_1".into(),
            tenant: "acme".into(),
            url: url.into(),
            events: WebhookEvent::ALL.to_vec(),
            format,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            created_by: "alice".into(),
        }
    }

    #[test]
    fn credentials_in_a_url_are_not_shown() {
        let slack = webhook(
            "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
            WebhookFormat::Slack,
        );
        assert_eq!(shown_url(&slack), "https://hooks.slack.com/…");
        // Paths too (Discord's, Teams' and most services' tokens are in the path), and user information.
        let query = webhook("https://h.example/in?token=abc", WebhookFormat::Standard);
        assert_eq!(shown_url(&query), "https://h.example/…");
        let path = webhook(
            "https://u:pw@h.example:8443/hooks/t0ken",
            WebhookFormat::Standard,
        );
        assert_eq!(shown_url(&path), "https://h.example:8443/…");
        let bare = webhook("https://h.example", WebhookFormat::Standard);
        assert_eq!(shown_url(&bare), "https://h.example");
    }
}

super::extract::csrf_field!(AddForm);

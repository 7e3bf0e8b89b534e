//! `haltstate webhooks`: add, list and remove a tenant's webhooks, and see how their deliveries went, on the
//! database (the server delivers; these commands never post anything).

use haltstate_authority::webhooks::{
    DeliveryRecord, Webhook, WebhookEvent, WebhookFormat, WebhookSpec,
};
use haltstate_types::timestamp::format_rfc3339;
use haltstate_types::{Actor, RequestError, Via};

use crate::args::{FormatArg, WebhooksCommand};
use crate::error::CliError;
use crate::open::open;
use crate::output::out;

pub(crate) fn run(command: WebhooksCommand) -> Result<(), CliError> {
    match command {
        WebhooksCommand::Add {
            db,
            tenant,
            url,
            events,
            format,
            actor,
            allow_private_target,
        } => {
            let actor = Actor::new(&actor, Via::Cli)?;
            // An address literal is refused here; `serve` checks names when it resolves them, at each attempt.
            haltstate_server::outbound::check_url(&url, allow_private_target)
                .map_err(|refused| CliError::Usage(refused.to_string()))?;
            let mut spec = WebhookSpec::new(&url)?.format(match format {
                FormatArg::Standard => WebhookFormat::Standard,
                FormatArg::Slack => WebhookFormat::Slack,
            });
            if !events.is_empty() {
                spec = spec.events(
                    events
                        .iter()
                        .map(|name| {
                            WebhookEvent::parse(name.trim()).ok_or_else(|| {
                                RequestError::Invalid(format!(
                                    "unknown event {name:?}; one of: {}",
                                    WebhookEvent::ALL.map(WebhookEvent::as_str).join(", ")
                                ))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                );
            }
            let authority = open(&db)?;
            let (webhook, secret) = authority.add_webhook(&tenant, spec, actor.name()).wait()?;
            out!("{}", secret.expose());
            eprintln!(
                "added webhook {} for tenant {tenant}: {}; its secret will not be shown again",
                webhook.id,
                webhook_line(&webhook)
            );
        }
        WebhooksCommand::List { db, tenant } => {
            for webhook in open(&db)?.webhooks(&tenant)? {
                out!("{}", webhook_line(&webhook));
            }
        }
        WebhooksCommand::Remove { id, db, tenant } => {
            if !open(&db)?.remove_webhook(&tenant, &id).wait()? {
                return Err(CliError::Usage(format!(
                    "tenant {tenant} has no webhook {id}"
                )));
            }
            eprintln!("removed webhook {id}");
        }
        WebhooksCommand::Deliveries { db, tenant, limit } => {
            for delivery in open(&db)?.webhook_deliveries(&tenant, limit)? {
                out!("{}", delivery_line(&delivery));
            }
        }
    }
    Ok(())
}

fn webhook_line(webhook: &Webhook) -> String {
    format!(
        "{}\t{}\t{}\tevents={}\tcreated={} by {}",
        webhook.id,
        haltstate_authority::webhooks::shown_url(&webhook.url),
        webhook.format.as_str(),
        webhook
            .events
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(","),
        format_rfc3339(webhook.created_at),
        webhook.created_by
    )
}

fn delivery_line(delivery: &DeliveryRecord) -> String {
    format!(
        "{}\t{}\t{}\t{}\tattempts={}{}{}{}",
        delivery.id,
        delivery.webhook_id,
        delivery.event,
        delivery.state.as_str(),
        delivery.attempts,
        delivery
            .last_status
            .map(|s| format!("\tstatus={s}"))
            .unwrap_or_default(),
        delivery
            .last_error
            .as_deref()
            .map(|e| format!("\terror={e}"))
            .unwrap_or_default(),
        delivery
            .next_attempt_at
            .map(|t| format!("\tnext={}", format_rfc3339(t)))
            .unwrap_or_default(),
    )
}

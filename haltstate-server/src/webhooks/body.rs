//! The body a delivery posts: a Standard Webhooks body (`type`, `timestamp`, `data`), or a Slack message. The
//! `path` the authority stored becomes a `url` on the console's public address.

use serde_json::{Value, json};

use haltstate_authority::webhooks::{Delivery, WebhookEvent, WebhookFormat};
use haltstate_types::timestamp::format_rfc3339;
use haltstate_types::{ApprovalEventData, KillSwitchEventData};

/// The JSON body of `delivery`, linking to `public_url`.
pub(crate) fn body(delivery: &Delivery, public_url: &str) -> Vec<u8> {
    let mut data = delivery.data.clone();
    let url = data
        .as_object_mut()
        .and_then(|fields| fields.remove("path"))
        .and_then(|path| path.as_str().map(|path| format!("{public_url}{path}")));
    if let (Some(fields), Some(url)) = (data.as_object_mut(), &url) {
        fields.insert("url".into(), Value::String(url.clone()));
    }
    let body = match delivery.format {
        WebhookFormat::Standard => json!({
            "type": delivery.event.as_str(),
            "timestamp": format_rfc3339(delivery.created_at),
            "data": data,
        }),
        WebhookFormat::Slack => {
            json!({ "text": slack_text(delivery.event, &delivery.data, url.as_deref()) })
        }
    };
    body.to_string().into_bytes()
}

/// One line a person reads in a channel, from the event's typed data. Slack's mrkdwn treats `<`, `>` and `&` as
/// markup: they are escaped. Data that does not read as its event's says so rather than inventing fields.
fn slack_text(event: WebhookEvent, data: &Value, url: Option<&str>) -> String {
    let what = match event {
        WebhookEvent::KillSwitchChanged => {
            match serde_json::from_value::<KillSwitchEventData>(data.clone()) {
                Ok(kill) => match &kill.agent_id {
                    Some(agent) => format!(
                        "Kill switch: agent {} of {} set to {} by {}",
                        escape(agent),
                        escape(&kill.tenant),
                        kill.state.as_str(),
                        escape(&kill.actor)
                    ),
                    None => format!(
                        "Kill switch: tenant {} set to {} by {}",
                        escape(&kill.tenant),
                        kill.state.as_str(),
                        escape(&kill.actor)
                    ),
                },
                Err(_) => format!("{event} (its data does not read)"),
            }
        }
        approval => match serde_json::from_value::<ApprovalEventData>(data.clone()) {
            Ok(a) => match approval {
                WebhookEvent::ApprovalRequested => format!(
                    "Approval needed: {} by {} ({})",
                    escape(&a.action),
                    escape(&a.agent_id),
                    escape(&a.policy_reason)
                ),
                WebhookEvent::ApprovalExpired => format!(
                    "Approval expired undecided: {} by {}",
                    escape(&a.action),
                    escape(&a.agent_id)
                ),
                _ => format!(
                    "{} {} by {}: {} by {}",
                    escape(&a.tenant),
                    escape(&a.action),
                    escape(&a.agent_id),
                    a.status.as_str(),
                    escape(a.approver.as_deref().unwrap_or("-"))
                ),
            },
            Err(_) => format!("{event} (its data does not read)"),
        },
    };
    match url {
        Some(url) => format!("{what} <{}|open>", escape(url)),
        None => what,
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use haltstate_authority::webhooks::{Keyring, WebhookSecret};

    fn delivery(format: WebhookFormat) -> Delivery {
        Delivery {
            id: "msg_1".into(),
            tenant: "acme".into(),
            webhook_id: "wh_1".into(),
            url: "https://example.com/".into(),
            secret: Keyring::default()
                .seal(
                    "acme",
                    "wh_1",
                    &WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                        .unwrap_or_else(|e| panic!("{e}")),
                )
                .unwrap_or_else(|e| panic!("{e}")),
            format,
            event: WebhookEvent::ApprovalRequested,
            data: serde_json::to_value(ApprovalEventData {
                action: "refund.create".into(),
                agent_id: "bot<1>".into(),
                approval_id: "apr_1".into(),
                approver: None,
                decided_at: None,
                decision_reason: None,
                expires_at: time::OffsetDateTime::UNIX_EPOCH,
                idempotency_key: None,
                path: "/ui/approvals/apr_1".into(),
                policy_id: None,
                policy_reason: "big".into(),
                requested_at: time::OffsetDateTime::UNIX_EPOCH,
                resource: None,
                risk: None,
                status: haltstate_types::ApprovalStatus::Pending,
                tenant: "acme".into(),
            })
            .unwrap_or_else(|e| panic!("{e}")),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            attempts: 0,
        }
    }

    #[test]
    fn a_standard_body_links_to_the_console() {
        let body: Value = serde_json::from_slice(&body(
            &delivery(WebhookFormat::Standard),
            "https://hs.example.com",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(body["type"], "approval.requested");
        assert_eq!(body["timestamp"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            body["data"]["url"],
            "https://hs.example.com/ui/approvals/apr_1"
        );
        assert!(body["data"].get("path").is_none());
    }

    #[test]
    fn a_slack_body_is_one_escaped_line_with_a_link() {
        let body: Value =
            serde_json::from_slice(&body(&delivery(WebhookFormat::Slack), "https://hs"))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            body["text"],
            "Approval needed: refund.create by bot&lt;1&gt; (big) <https://hs/ui/approvals/apr_1|open>"
        );
    }
}

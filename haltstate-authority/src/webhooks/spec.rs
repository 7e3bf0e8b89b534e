//! What an operator gives to add a webhook: where, which events, in which shape.

use haltstate_types::RequestError;

use super::WebhookEvent;

/// The longest endpoint URL accepted.
const MAX_URL_LEN: usize = 2048;

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    /// A Standard Webhooks body: `{"type", "timestamp", "data"}`.
    #[default]
    Standard,
    /// A Slack incoming-webhook body: `{"text"}` with a link to the console (signed the same way; Slack
    /// ignores the headers).
    Slack,
}

impl WebhookFormat {
    /// The stored and typed form.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Standard => "standard",
            WebhookFormat::Slack => "slack",
        }
    }

    /// The format named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "standard" => Some(WebhookFormat::Standard),
            "slack" => Some(WebhookFormat::Slack),
            _ => None,
        }
    }
}

/// A webhook to add: its URL (http or https), its events (all by default) and its format.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSpec {
    pub(crate) url: String,
    pub(crate) events: Vec<WebhookEvent>,
    pub(crate) format: WebhookFormat,
}

impl WebhookSpec {
    /// A webhook posting every event to `url`, refused unless it is an absolute `http://` or `https://` URL
    /// with a host, no credentials and no whitespace.
    pub fn new(url: &str) -> Result<Self, RequestError> {
        let url = url.trim();
        let invalid = |why: &str| RequestError::Invalid(format!("webhook url {url:?}: {why}"));
        if url.len() > MAX_URL_LEN {
            return Err(invalid("too long"));
        }
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| invalid("must start with https:// or http://"))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() {
            return Err(invalid("has no host"));
        }
        if authority.contains('@') {
            // Credentials in a URL end up in logs and the console; the signature authenticates the sender.
            return Err(invalid("must not carry credentials"));
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("must not contain whitespace"));
        }
        Ok(Self {
            url: url.to_owned(),
            events: WebhookEvent::ALL.to_vec(),
            format: WebhookFormat::Standard,
        })
    }

    /// Only these events (an empty list is refused when the webhook is added).
    pub fn events(mut self, events: Vec<WebhookEvent>) -> Self {
        let mut unique = Vec::with_capacity(events.len());
        for event in events {
            if !unique.contains(&event) {
                unique.push(event);
            }
        }
        self.events = unique;
        self
    }

    /// The body's shape.
    pub fn format(mut self, format: WebhookFormat) -> Self {
        self.format = format;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_with_a_host_are_accepted() {
        assert!(WebhookSpec::new("https://hooks.example.com/x?y=1").is_ok());
        assert!(WebhookSpec::new("http://127.0.0.1:9000/").is_ok());
        for bad in [
            "ftp://example.com/",
            "https://",
            "https:///path",
            "https://user:pw@example.com/",
            "https://example.com/a b",
            "javascript:alert(1)",
            "",
        ] {
            assert!(WebhookSpec::new(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn events_are_deduplicated_in_order() {
        let spec = WebhookSpec::new("https://example.com/")
            .map(|s| {
                s.events(vec![
                    WebhookEvent::KillSwitchChanged,
                    WebhookEvent::ApprovalRequested,
                    WebhookEvent::KillSwitchChanged,
                ])
            })
            .ok();
        assert_eq!(
            spec.map(|s| s.events),
            Some(vec![
                WebhookEvent::KillSwitchChanged,
                WebhookEvent::ApprovalRequested
            ])
        );
    }
}

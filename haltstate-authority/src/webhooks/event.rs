//! The events a webhook receives, and the data each carries: enough to act on, never the action's params
//! (they stay in the console, behind sign-in; the payload links there).

use haltstate_types::ApprovalStatus;

/// What a webhook is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEvent {
    /// A guard or check is waiting for a person.
    ApprovalRequested,
    /// An operator approved or rejected.
    ApprovalDecided,
    /// An approval's window closed undecided.
    ApprovalExpired,
    /// A tenant's or an agent's kill switch changed.
    KillSwitchChanged,
}

impl WebhookEvent {
    /// Every event, in the order the console lists them.
    pub const ALL: [WebhookEvent; 4] = [
        WebhookEvent::ApprovalRequested,
        WebhookEvent::ApprovalDecided,
        WebhookEvent::ApprovalExpired,
        WebhookEvent::KillSwitchChanged,
    ];

    /// The event type, as Standard Webhooks bodies name it (`approval.requested`).
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::ApprovalRequested => "approval.requested",
            WebhookEvent::ApprovalDecided => "approval.decided",
            WebhookEvent::ApprovalExpired => "approval.expired",
            WebhookEvent::KillSwitchChanged => "kill_switch.changed",
        }
    }

    /// The event named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == name)
    }

    /// The event an approval's status announces.
    pub(crate) fn for_approval(status: ApprovalStatus) -> Self {
        match status {
            ApprovalStatus::Pending => WebhookEvent::ApprovalRequested,
            ApprovalStatus::Expired => WebhookEvent::ApprovalExpired,
            _ => WebhookEvent::ApprovalDecided,
        }
    }
}

impl std::fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

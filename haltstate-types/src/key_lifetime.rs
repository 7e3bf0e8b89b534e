//! How long an idempotency key names one operation: forever, or until that operation ends.
//!
//! A key the caller chose (`refund:order-1042`) is [`Once`](KeyLifetime::Once): it runs at most once, ever.
//! A key a guard derives from a call's arguments is [`Operation`](KeyLifetime::Operation): the same arguments
//! are one operation while it waits for a human, runs, or holds an approval; once it has ended (completed,
//! failed, expired, or a rejection's window has closed) the same arguments start the next operation under the
//! key, its next *generation*, which policy decides afresh. Evidence names the generation of each record.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How long an idempotency key names one operation.
///
/// ```
/// use haltstate_types::{ActionRequest, GuardRequest, KeyLifetime};
///
/// let ask = ActionRequest::new("support-bot", "chat.complete");
/// let guard = GuardRequest::new(ask, "hs:chat.complete:5f1c").lifetime(KeyLifetime::Operation);
/// assert_eq!(guard.lifetime, KeyLifetime::Operation);
/// assert_eq!(KeyLifetime::default(), KeyLifetime::Once);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyLifetime {
    /// The key is one operation forever: after it completed, every guard under it answers `completed`.
    #[default]
    Once,
    /// The key is one operation until that operation ends; then the next guard under it starts a new one.
    Operation,
}

impl KeyLifetime {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyLifetime::Once => "once",
            KeyLifetime::Operation => "operation",
        }
    }

    /// Parses the wire (and stored) form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "once" => Some(KeyLifetime::Once),
            "operation" => Some(KeyLifetime::Operation),
            _ => None,
        }
    }

    /// Whether this is the default, [`Once`](KeyLifetime::Once) (which the wire leaves out).
    pub fn is_once(&self) -> bool {
        *self == KeyLifetime::Once
    }
}

impl fmt::Display for KeyLifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

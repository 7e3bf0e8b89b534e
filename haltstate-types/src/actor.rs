//! Who made an operator's change (an approval, a kill-switch flip), and through what.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::identity::canonical_name;

/// Through what an operator acted; recorded in the evidence beside the operator's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The operator API of a server, with the operator's own key.
    Api,
    /// The `haltstate` CLI working on the database directly: the name is what the person typed (`--as`).
    Cli,
    /// The web console, signed in with the operator's key.
    Console,
    /// Code calling the authority in its own process.
    #[default]
    Library,
}

impl Via {
    /// The recorded form.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Cli => "cli",
            Via::Console => "console",
            Via::Library => "library",
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator acting: a canonical name and the channel.
///
/// ```
/// use haltstate_types::{Actor, Via};
///
/// let alice = Actor::new("Alice", Via::Cli)?;
/// assert_eq!(alice.name(), "alice");
/// # Ok::<(), haltstate_types::RequestError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    name: String,
    via: Via,
}

impl Actor {
    /// `name` (canonicalised) acting through `via`.
    pub fn new(name: &str, via: Via) -> Result<Self> {
        Ok(Self {
            name: canonical_name("operator", name)?,
            via,
        })
    }

    /// The canonical name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The channel.
    pub fn via(&self) -> Via {
        self.via
    }
}

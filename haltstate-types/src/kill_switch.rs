//! The kill switch: per tenant and per (tenant, agent), RUN, PAUSE or KILL.
//!
//! Any state but RUN denies every guard and check before policy runs. The effective state of an agent is the more
//! severe of its tenant's and its own.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A kill-switch state, ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KillState {
    /// Normal operation.
    #[default]
    Run,
    /// Stop starting new actions until resumed.
    Pause,
    /// Stop for good (until an operator resumes).
    Kill,
}

impl KillState {
    /// The wire form: `RUN`, `PAUSE`, `KILL`.
    pub fn as_str(self) -> &'static str {
        match self {
            KillState::Run => "RUN",
            KillState::Pause => "PAUSE",
            KillState::Kill => "KILL",
        }
    }

    /// Parses the wire form, case-insensitively; `OK` and `RESUME` mean RUN.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "RUN" | "OK" | "RESUME" => Some(KillState::Run),
            "PAUSE" => Some(KillState::Pause),
            "KILL" => Some(KillState::Kill),
            _ => None,
        }
    }
}

impl KillState {
    /// A state read back from storage: one this build cannot read is KILL (fail closed: a damaged row must not
    /// let a stopped agent run).
    pub fn stored(text: &str) -> Self {
        Self::parse(text).unwrap_or(KillState::Kill)
    }
}

/// Read as [`KillState::parse`] reads: case-insensitively, `OK` and `RESUME` meaning RUN.
impl<'de> Deserialize<'de> for KillState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        KillState::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("state must be RUN, PAUSE or KILL, got {text:?}"))
        })
    }
}

impl fmt::Display for KillState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a kill-switch setting applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KillScope {
    /// Every agent of the tenant.
    Tenant(String),
    /// One agent of the tenant.
    Agent {
        /// The tenant.
        tenant: String,
        /// The agent.
        agent_id: String,
    },
}

impl KillScope {
    /// The tenant the scope belongs to.
    pub fn tenant(&self) -> &str {
        match self {
            KillScope::Tenant(tenant) | KillScope::Agent { tenant, .. } => tenant,
        }
    }

    /// The agent, for an agent scope.
    pub fn agent_id(&self) -> Option<&str> {
        match self {
            KillScope::Tenant(_) => None,
            KillScope::Agent { agent_id, .. } => Some(agent_id),
        }
    }

    /// The scope from a tenant and an optional agent.
    pub fn new(tenant: impl Into<String>, agent_id: Option<impl Into<String>>) -> Self {
        match agent_id {
            None => KillScope::Tenant(tenant.into()),
            Some(agent_id) => KillScope::Agent {
                tenant: tenant.into(),
                agent_id: agent_id.into(),
            },
        }
    }
}

/// The effective state for an agent and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillStatus {
    /// The more severe of the tenant's and the agent's state.
    pub state: KillState,
    /// Which scope set it (`None` when running).
    pub scope: Option<KillScope>,
}

impl KillStatus {
    /// The effective state for `agent_id` of `tenant`, from the tenant's own switch and the agent's: the more
    /// severe, the tenant's when they are equal (a tenant-wide stop names the tenant).
    ///
    /// ```
    /// use haltstate_types::{KillScope, KillState, KillStatus};
    ///
    /// let status = KillStatus::effective("acme", "bot", KillState::Pause, KillState::Kill);
    /// assert_eq!(status.state, KillState::Kill);
    /// assert_eq!(status.scope, Some(KillScope::Agent { tenant: "acme".into(), agent_id: "bot".into() }));
    /// assert_eq!(KillStatus::effective("acme", "bot", KillState::Run, KillState::Run).scope, None);
    /// ```
    pub fn effective(
        tenant: &str,
        agent_id: &str,
        tenant_state: KillState,
        agent_state: KillState,
    ) -> Self {
        if tenant_state == KillState::Run && agent_state == KillState::Run {
            KillStatus {
                state: KillState::Run,
                scope: None,
            }
        } else if tenant_state >= agent_state {
            KillStatus {
                state: tenant_state,
                scope: Some(KillScope::Tenant(tenant.to_owned())),
            }
        } else {
            KillStatus {
                state: agent_state,
                scope: Some(KillScope::Agent {
                    tenant: tenant.to_owned(),
                    agent_id: agent_id.to_owned(),
                }),
            }
        }
    }

    /// The denial reason a guard or check gets while this status holds.
    pub fn denial_reason(&self) -> Option<String> {
        let scope = self.scope.as_ref()?;
        let verb = match self.state {
            KillState::Run => return None,
            KillState::Pause => "paused",
            KillState::Kill => "killed",
        };
        Some(match scope {
            KillScope::Tenant(tenant) => format!("kill switch: tenant {tenant} is {verb}"),
            KillScope::Agent { agent_id, .. } => format!("kill switch: agent {agent_id} is {verb}"),
        })
    }
}

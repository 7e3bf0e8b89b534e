//! API keys: per tenant, with a role and an identity, stored only as SHA-256 hashes and compared in constant time.
//!
//! A key is one identity. An operator key is the operator its name says: the approver and actor recorded for
//! everything it does. An agent key acts as the agents of its [`AgentSet`] (by default, the agent its name
//! says). Names are canonical ([`canonical_name`](crate::canonical_name)) and unique among a tenant's live keys.

use std::fmt;
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{RequestError, Result, invalid};
use crate::identity::{AgentSet, canonical_name};
use crate::timestamp::rfc3339;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Check, guard, report, read its approvals, heartbeat.
    Agent,
    /// Approve, reject, kill switch, evidence, webhooks: decides what agents asked for.
    Operator,
    /// Mints, rotates and revokes keys, and does nothing else: whoever decides must not be able to make the
    /// identities that ask or decide (an operator minting a second operator key would be two approvers).
    Admin,
}

impl Role {
    /// `agent`, `operator` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parses `agent`, `operator` or `admin`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "agent" => Some(Role::Agent),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a request authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The tenant every query is scoped to.
    pub tenant: String,
    /// The key's id (not secret).
    pub key_id: String,
    /// The key's canonical name: an operator's identity, or an agent key's label.
    pub name: String,
    /// The key's role.
    pub role: Role,
    /// For an agent key, the agents it may act as (empty for operators).
    pub agents: AgentSet,
    /// Requests per second this key may make, when limited.
    pub rate_limit: Option<NonZeroU32>,
}

impl Principal {
    /// The agent a request of this key acts as (see [`AgentSet::act_as`]); operator keys act as no agent.
    pub fn act_as(&self, claimed: Option<&str>) -> Result<String> {
        if self.role != Role::Agent {
            return Err(RequestError::Forbidden(
                "operator and admin keys cannot request actions; use an agent key".into(),
            ));
        }
        self.agents.act_as(claimed)
    }

    /// The operator this key is, checked against an identity the request names (`as`): it must be the same
    /// one, compared canonically.
    pub fn operator(&self, claimed: Option<&str>) -> Result<String> {
        if self.role != Role::Operator {
            return Err(RequestError::Forbidden("this needs an operator key".into()));
        }
        match claimed.filter(|c| !c.is_empty()) {
            None => Ok(self.name.clone()),
            Some(claimed) => {
                let claimed = canonical_name("as", claimed)?;
                if claimed == self.name {
                    Ok(claimed)
                } else {
                    Err(RequestError::IdentityMismatch {
                        claimed,
                        identity: self.name.clone(),
                    })
                }
            }
        }
    }
}

/// What a new key is: its name, role, agents and rate limit.
///
/// ```
/// use haltstate_types::{AgentSet, KeySpec, Role};
///
/// let fleet = KeySpec::new("billing-fleet", Role::Agent).agents(AgentSet::parse(["billing-*"])?);
/// assert_eq!(fleet.name, "billing-fleet");
/// # Ok::<(), haltstate_types::RequestError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// The key's name (canonicalised on creation).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// For an agent key, the agents it may act as; `None` means the agent its name says.
    pub agents: Option<AgentSet>,
    /// Requests per second, when limited.
    pub rate_limit: Option<NonZeroU32>,
}

impl KeySpec {
    /// A key named `name` with `role`.
    pub fn new(name: impl Into<String>, role: Role) -> Self {
        Self {
            name: name.into(),
            role,
            agents: None,
            rate_limit: None,
        }
    }

    /// The agents an agent key may act as.
    pub fn agents(mut self, agents: AgentSet) -> Self {
        self.agents = Some(agents);
        self
    }

    /// Limits the key to `per_second` requests per second.
    pub fn rate_limit(mut self, per_second: NonZeroU32) -> Self {
        self.rate_limit = Some(per_second);
        self
    }

    /// The canonical name and the agent set to store (empty for operators and admins).
    pub fn resolved(&self) -> Result<(String, AgentSet)> {
        let name = canonical_name("key name", &self.name)?;
        let agents = match (self.role, &self.agents) {
            (Role::Operator | Role::Admin, None) => AgentSet::default(),
            (Role::Operator | Role::Admin, Some(_)) => {
                return Err(invalid(
                    "operator and admin keys act as no agent; give agents only to agent keys",
                ));
            }
            (Role::Agent, None) => AgentSet::one(&name)?,
            (Role::Agent, Some(agents)) => agents.clone(),
        };
        Ok((name, agents))
    }
}

/// A key as operators list it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The key id.
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// The canonical name.
    pub name: String,
    /// The role.
    pub role: Role,
    /// For an agent key, the agents it may act as.
    pub agents: AgentSet,
    /// Requests per second, when limited.
    pub rate_limit: Option<NonZeroU32>,
    /// When it was created.
    #[serde(with = "rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was revoked.
    #[serde(with = "rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A freshly created key. The secret is shown here once and never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct NewKey {
    /// The key id (not secret).
    pub id: String,
    /// The secret to hand to the client: `hs_` and 64 hex characters.
    pub secret: String,
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

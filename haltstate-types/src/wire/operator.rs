//! The operator API's bodies (`/api/haltstate/v1/`): strict on input (an unknown field is an error, not
//! ignored), typed on output, shared by the server and the CLI's `--server` mode.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use crate::approval::Approval;
use crate::evidence::EvidenceRecord;
use crate::keys::{KeyInfo, Role};
use crate::kill_switch::{KillState, KillStatus};

/// The body of `approvals/{id}/approve` and `.../reject`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideBody {
    /// Why; recorded on the approval and the ledger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who decides: when given, it must be the key's own operator (compared canonically).
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
}

/// The body of `POST kill-switch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillBody {
    /// `RUN`, `PAUSE` or `KILL`.
    pub state: KillState,
    /// Only this agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Who flips it: when given, it must be the key's own operator.
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Why: kept in the switch's ledger record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a scope of the kill switch says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillReply {
    /// The effective state.
    pub state: KillState,
    /// Which scope set it: `tenant`, `agent`, or none while running.
    pub scope: Option<String>,
    /// The denial reason guards get meanwhile.
    pub reason: Option<String>,
}

impl From<&KillStatus> for KillReply {
    fn from(status: &KillStatus) -> Self {
        Self {
            state: status.state,
            scope: status.scope.as_ref().map(|scope| {
                if scope.agent_id().is_some() {
                    "agent"
                } else {
                    "tenant"
                }
                .to_owned()
            }),
            reason: status.denial_reason(),
        }
    }
}

/// The body of `POST keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    /// The key's name: an operator's identity, or (by default) the agent an agent key acts as.
    pub name: String,
    /// `agent` or `operator`.
    pub role: Role,
    /// For an agent key: the agents it may act as (`name`, `prefix*`, `*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<Vec<String>>,
    /// Requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<NonZeroU32>,
}

/// The answer to `POST keys`: the key, and its secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCreated {
    /// The key.
    pub key: KeyInfo,
    /// The secret (`hs_...`).
    pub secret: String,
}

/// The answer to `GET keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysReply {
    /// The tenant's keys, newest first.
    pub keys: Vec<KeyInfo>,
}

/// The answer to `POST keys/{id}/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedReply {
    /// The key, as it is now.
    pub key: KeyInfo,
    /// Whether it was live until now.
    pub revoked: bool,
}

/// The answer to `GET approvals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalsReply {
    /// The approvals, newest first.
    pub approvals: Vec<Approval>,
}

/// The answer to `GET evidence`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceReply {
    /// The records, in ledger order.
    pub records: Vec<EvidenceRecord>,
}

/// The answer to `GET ledger/head`: the end of the operator's own tenant's evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantHeadReply {
    /// The tenant.
    pub tenant: String,
    /// Its last record's sequence number (0 when it has none).
    pub seq: u64,
    /// Its last record's hash.
    pub hash: String,
}

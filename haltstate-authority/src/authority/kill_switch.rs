//! The kill switch: an operator stops a tenant, or one agent of it (`PAUSE` or `KILL`), and every guard and check
//! answers so until it is set back to `RUN`.
//!
//! - [`kill_switch`](Authority::kill_switch): the effective state for an agent (the more severe of its tenant's and
//!   its own), or a tenant's own.
//! - [`set_kill_switch`](Authority::set_kill_switch), [`set_kill_switch_as`](Authority::set_kill_switch_as): set a
//!   scope's state, recorded in the ledger with who did it.
//! - [`kill_switches`](Authority::kill_switches): every switch ever set (for metrics).

use haltstate_types::{
    Actor, KillScope, KillState, KillStatus, Via, canonical_name, validate_name,
};

use super::Authority;
use crate::error::Result;
use crate::ops;
use crate::store::pending::Pending;

impl Authority {
    /// The effective kill-switch state for `agent_id`, or the tenant's own state when `agent_id` is `None`.
    pub fn kill_switch(&self, tenant: &str, agent_id: Option<&str>) -> Result<KillStatus> {
        let agent_id = agent_id
            .map(|agent| canonical_name("agent_id", agent))
            .transpose()?;
        match &agent_id {
            Some(agent) => self.inner.reads.kill_status(tenant, agent),
            None => {
                let scope = KillScope::Tenant(tenant.to_owned());
                let state = self.inner.reads.kill_state(&scope)?;
                Ok(KillStatus {
                    state,
                    scope: (state != KillState::Run).then_some(scope),
                })
            }
        }
    }

    /// Sets the kill switch of `scope`; the change is itself a ledger record naming `actor`, recorded as acting
    /// from code in this process ([`Via::Library`]).
    pub fn set_kill_switch(
        &self,
        scope: KillScope,
        state: KillState,
        actor: &str,
    ) -> Pending<KillStatus> {
        match Actor::new(actor, Via::Library) {
            Ok(actor) => self.set_kill_switch_as(scope, state, actor),
            Err(e) => Pending::ready(Err(e.into())),
        }
    }

    /// Sets the kill switch of `scope` as `actor`, recorded with the channel it acted through.
    pub fn set_kill_switch_as(
        &self,
        scope: KillScope,
        state: KillState,
        actor: Actor,
    ) -> Pending<KillStatus> {
        self.set_kill_switch_because(scope, state, actor, None)
    }

    /// Sets the kill switch of `scope` as `actor`, with the reason in its ledger record (at most
    /// [`MAX_ERROR_TEXT`](haltstate_types::limits::MAX_ERROR_TEXT) bytes): the switch's history says who, when and
    /// why.
    pub fn set_kill_switch_because(
        &self,
        scope: KillScope,
        state: KillState,
        actor: Actor,
        reason: Option<&str>,
    ) -> Pending<KillStatus> {
        let reason = match super::given_reason(reason) {
            Ok(reason) => reason,
            Err(e) => return Pending::ready(Err(e)),
        };
        let scope = match validate_name("tenant", scope.tenant()).and_then(|()| match scope {
            KillScope::Agent { tenant, agent_id } => Ok(KillScope::Agent {
                agent_id: canonical_name("agent_id", &agent_id)?,
                tenant,
            }),
            tenant => Ok(tenant),
        }) {
            Ok(scope) => scope,
            Err(e) => return Pending::ready(Err(e.into())),
        };
        self.submit(scope.tenant().to_owned(), move |b, _| {
            ops::kill::set(b, &scope, state, &actor, reason.as_deref())
        })
    }

    /// Every kill switch ever set, with its state (for metrics; every tenant).
    pub fn kill_switches(&self) -> Result<Vec<(KillScope, KillState)>> {
        self.inner.reads.kill_switches()
    }
}

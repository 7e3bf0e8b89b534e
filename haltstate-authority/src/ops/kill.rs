//! The kill switch, applied: store the scope's state and record who flipped it, through what.

use haltstate_types::{Actor, EvidenceKind, EvidenceRecord, KillScope, KillState, KillStatus};

use crate::error::Result;
use crate::store::tx::Tx;

/// The subject under which kill-switch changes are noted (see `Tx::note_change`).
pub(crate) const KILL_SWITCH_SUBJECT: &str = "kill-switch";

pub(crate) fn set(
    tx: &mut dyn Tx,
    scope: &KillScope,
    state: KillState,
    actor: &Actor,
    reason: Option<&str>,
) -> Result<KillStatus> {
    tx.put_kill(scope, state, actor.name())?;
    super::webhooks::announce_kill(tx, scope, state, actor.name())?;
    let mut record = EvidenceRecord::new(EvidenceKind::KillSwitch, scope.tenant(), tx.now());
    record.agent_id = scope.agent_id().map(str::to_owned);
    record.status = Some(state.as_str().to_owned());
    record.actor = Some(actor.name().to_owned());
    record.via = Some(actor.via());
    let change = match scope.agent_id() {
        Some(agent) => format!("agent {agent} set to {state}"),
        None => format!("tenant {} set to {state}", scope.tenant()),
    };
    record.reason = Some(match reason {
        Some(why) => format!("{change}: {why}"),
        None => change,
    });
    let seq = tx.append(record)?;
    tx.note_change(scope.tenant(), KILL_SWITCH_SUBJECT, seq)?;
    Ok(match scope.agent_id() {
        Some(agent) => tx.kill_status(scope.tenant(), agent)?,
        None if state == KillState::Run => KillStatus { state, scope: None },
        None => KillStatus {
            state,
            scope: Some(scope.clone()),
        },
    })
}

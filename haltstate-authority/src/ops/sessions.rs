//! Console sessions, started under the limits: expired ones go first, then the tenant's oldest past its share;
//! past the total, none is started (another tenant's sessions are never ended to make room).

use crate::console_session::{ConsoleSession, SessionId, SessionLimits};
use crate::error::Result;
use crate::store::tx::Tx;

pub(crate) fn start(
    tx: &mut dyn Tx,
    id: &SessionId,
    session: &ConsoleSession,
    limits: SessionLimits,
) -> Result<bool> {
    tx.expire_sessions()?;
    let share = u64::try_from(limits.per_tenant.max(1)).unwrap_or(u64::MAX);
    let own = tx.session_count(Some(&session.tenant))?;
    if own >= share {
        tx.end_oldest_sessions(&session.tenant, own - share + 1)?;
    }
    let total = u64::try_from(limits.total).unwrap_or(u64::MAX);
    if tx.session_count(None)? >= total {
        return Ok(false);
    }
    tx.insert_session(id, session)?;
    Ok(true)
}

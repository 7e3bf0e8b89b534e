//! An outcome report: only the claim's holder reports it, and a repeat is acknowledged, never recorded twice.

use haltstate_types::{KeyState, Outcome, OutcomeReport};

use crate::error::AuthorityError;
use crate::state_rows::KeyRecord;

/// What a report does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReportStep {
    /// The same outcome was already recorded, under this ledger record: acknowledge it again.
    Duplicate { seq: u64 },
    /// Record the outcome and move the key to `state`.
    Record { state: KeyState },
}

/// Decides a report of `record`'s claim.
pub(crate) fn report(
    record: &KeyRecord,
    report: &OutcomeReport,
) -> Result<ReportStep, AuthorityError> {
    let key = &record.key;
    let target = if report.outcome == Outcome::Success {
        KeyState::Completed
    } else {
        KeyState::Failed
    };
    // Only the claim's holder reports it: the API key it was granted to, with its token, or, for a claim granted
    // to a caller that sent no retry token (the official SDKs), without one. A token alone is not enough: a key
    // acting as another agent must not complete that agent's claim with a token it learnt.
    let same_key = record.claimed_by == report.caller_key;
    let holder = same_key
        && match &report.claim_token {
            Some(token) => record.claim_token.as_ref() == Some(token),
            None => !record.client_token,
        };
    if record.state == target
        && holder
        && let Some(seq) = record.outcome_seq
    {
        return Ok(ReportStep::Duplicate { seq });
    }
    if record.state != KeyState::Claimed {
        return Err(AuthorityError::NotClaimed {
            key: key.clone(),
            state: record.state.to_string(),
        });
    }
    if !holder {
        return Err(match report.claim_token {
            Some(_) => AuthorityError::StaleClaim { key: key.clone() },
            None => AuthorityError::ClaimTokenRequired { key: key.clone() },
        });
    }
    Ok(ReportStep::Record { state: target })
}

//! The shadow report: where the shadow set's recorded would-be decisions disagreed with the live ones.

use haltstate_types::{Decision, EvidenceRecord};

use super::Authority;
use super::replay::ReplayQuery;
use crate::error::Result;

/// One decision the shadow set would have made otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowDisagreement {
    /// The record: its tenant, sequence number, time, key (or request id), action and agent.
    pub record: EvidenceRecord,
    /// The live decision.
    pub live: Decision,
    /// The shadow's.
    pub shadow: Decision,
}

/// What the shadow set would have changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShadowReport {
    /// Decisions recorded with a shadow decision.
    pub compared: u64,
    /// Those where it differed, in ledger order per tenant.
    pub disagreements: Vec<ShadowDisagreement>,
}

impl Authority {
    /// The recorded decisions matching `query` whose shadow decision differed from the live one.
    pub fn shadow_report(&self, query: &ReplayQuery) -> Result<ShadowReport> {
        let mut report = ShadowReport::default();
        self.each_record(query, |record| {
            if let (Some(live), Some(shadow)) = (record.decision, record.shadow_decision) {
                report.compared += 1;
                if live != shadow {
                    report.disagreements.push(ShadowDisagreement {
                        record: record.clone(),
                        live,
                        shadow,
                    });
                }
            }
            Ok(())
        })?;
        Ok(report)
    }
}

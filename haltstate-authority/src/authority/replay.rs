//! Replay: the recorded guards and checks decided again under a candidate policy set, from the context each
//! record keeps (params, resource, risk, time and the usage the decision read), to see what a change would do
//! before it goes live.

use std::ops::ControlFlow;

use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use haltstate_types::{
    ActionRequest, ChainedRecord, Decision, EvidenceKind, EvidenceQuery, EvidenceRecord,
};

use super::Authority;
use crate::error::{AuthorityError, Result};
use crate::policy::{PolicyEngine, Usage, UsageWindow};
use crate::store::sql::Order;

/// Which records to replay (or report on).
#[derive(Debug, Clone, Default)]
pub struct ReplayQuery {
    /// Only this tenant's (all tenants when `None`).
    pub tenant: Option<String>,
    /// Only records at or after this time.
    pub since: Option<OffsetDateTime>,
}

/// A recorded decision the candidate would decide otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayChange {
    /// The tenant.
    pub tenant: String,
    /// The record's sequence number in its tenant's chain.
    pub seq: u64,
    /// The idempotency key (guards) or request id (checks).
    pub key: String,
    /// For a key whose lifetime is `operation`: which operation under it the record decided.
    pub generation: Option<u64>,
    /// The action.
    pub action: String,
    /// The agent.
    pub agent_id: String,
    /// What was decided.
    pub old: Decision,
    /// What the candidate decides.
    pub new: Decision,
    /// The policy that decided then.
    pub old_policy: Option<String>,
    /// The policy that would decide now.
    pub new_policy: Option<String>,
    /// The candidate reads usage this record does not hold (its policies did not read it): decided with none.
    pub usage_unknown: bool,
}

/// What a replay found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplayReport {
    /// Decisions replayed.
    pub replayed: u64,
    /// Those the candidate decides otherwise, in ledger order per tenant.
    pub changes: Vec<ReplayChange>,
    /// Decisions recorded before records kept their context (not replayed).
    pub without_context: u64,
}

/// A record's context as `ops/usage.rs` writes it.
#[derive(Deserialize)]
struct Context {
    #[serde(default)]
    params: Map<String, Value>,
    resource: Option<String>,
    risk: Option<String>,
    usage: Option<UsageContext>,
}

#[derive(Deserialize)]
struct UsageContext {
    minute: WindowContext,
    hour: WindowContext,
    day: WindowContext,
}

#[derive(Deserialize)]
struct WindowContext {
    count: u64,
    tokens: u64,
    sum: std::collections::BTreeMap<String, i64>,
}

impl From<WindowContext> for UsageWindow {
    fn from(w: WindowContext) -> Self {
        UsageWindow {
            count: w.count,
            tokens: w.tokens,
            sums: w.sum,
        }
    }
}

/// Records read per page.
const PAGE: u32 = 1000;

impl Authority {
    /// Decides every recorded guard and check matching `query` again under `candidate` and answers those that
    /// would change. Reads only.
    pub fn replay(&self, candidate: &PolicyEngine, query: &ReplayQuery) -> Result<ReplayReport> {
        let mut report = ReplayReport::default();
        self.each_record(query, |record| replay_one(candidate, record, &mut report))?;
        Ok(report)
    }

    /// Calls `visit` with every record matching `query`, tenant by tenant in ledger order, a page at a time.
    pub(super) fn each_record(
        &self,
        query: &ReplayQuery,
        mut visit: impl FnMut(&EvidenceRecord) -> Result<()>,
    ) -> Result<()> {
        let tenants = match &query.tenant {
            Some(tenant) => vec![tenant.clone()],
            None => self.inner.reads.tenants()?,
        };
        for tenant in tenants {
            let evidence = EvidenceQuery {
                from: query.since,
                ..EvidenceQuery::default()
            };
            self.each_chained(&tenant, evidence, |chained| visit(&chained.record))?;
        }
        Ok(())
    }

    /// Calls `visit` with every record of `tenant` that `query` matches (its `after_seq` as the start), with its
    /// chain links, in ledger order, a page at a time.
    pub(super) fn each_chained(
        &self,
        tenant: &str,
        query: EvidenceQuery,
        mut visit: impl FnMut(ChainedRecord) -> Result<()>,
    ) -> Result<()> {
        self.each_chained_while(tenant, query, |chained| {
            visit(chained).map(|()| ControlFlow::Continue(()))
        })
    }

    /// [`each_chained`](Self::each_chained), until `visit` answers `Break`: no page after that is read.
    pub(super) fn each_chained_while(
        &self,
        tenant: &str,
        mut query: EvidenceQuery,
        mut visit: impl FnMut(ChainedRecord) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        query.limit = Some(PAGE);
        loop {
            let page = self
                .inner
                .reads
                .chained_evidence(tenant, &query, Order::OldestFirst)?;
            let done = page.len() < PAGE as usize;
            if let Some(last) = page.last() {
                query.after_seq = Some(last.record.seq);
            }
            for chained in page {
                if visit(chained)?.is_break() {
                    return Ok(());
                }
            }
            if done {
                return Ok(());
            }
        }
    }
}

fn replay_one(
    candidate: &PolicyEngine,
    record: &EvidenceRecord,
    report: &mut ReplayReport,
) -> Result<()> {
    if !matches!(record.kind, EvidenceKind::Guard | EvidenceKind::Check) {
        return Ok(());
    }
    let Some(old) = record.decision else {
        return Ok(());
    };
    let (Some(agent), Some(action)) = (&record.agent_id, &record.action) else {
        return Ok(());
    };
    let Some(context) = &record.context else {
        report.without_context += 1;
        return Ok(());
    };
    let context: Context = serde_json::from_str(context).map_err(|e| {
        AuthorityError::Corrupt(format!(
            "record {} of tenant {}: its context does not decode: {e}",
            record.seq, record.tenant
        ))
    })?;
    let mut request = ActionRequest::new(agent.as_str(), action.as_str());
    request.params = context.params;
    request.resource = context.resource;
    request.risk = context.risk;
    let usage_unknown = context.usage.is_none() && candidate.current().reads_usage(action);
    let usage = context.usage.map_or_else(Usage::default, |u| Usage {
        minute: u.minute.into(),
        hour: u.hour.into(),
        day: u.day.into(),
    });
    let decided = candidate.decide_with_usage(&record.tenant, &request, record.at, Some(&usage));
    report.replayed += 1;
    if decided.decision != old {
        report.changes.push(ReplayChange {
            tenant: record.tenant.clone(),
            seq: record.seq,
            key: record
                .idempotency_key
                .clone()
                .or_else(|| record.request_id.clone())
                .unwrap_or_default(),
            generation: record.generation,
            action: action.clone(),
            agent_id: agent.clone(),
            old,
            new: decided.decision,
            old_policy: record.policy_id.clone(),
            new_policy: decided.policy_id,
            usage_unknown,
        });
    }
    Ok(())
}

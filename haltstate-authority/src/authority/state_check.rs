//! The state tables checked against the ledger: what the evidence says each key, approval and kill switch must
//! be, compared with the rows a guard trusts. A row that contradicts the ledger was changed behind the
//! authority's back.
//!
//! What the ledger fixes: a key the ledger granted a claim (or an approval) has a row, at that operation
//! (generation) or a later one; a key whose current operation has a successful verified outcome is completed
//! (fail-open evidence fixes nothing: it is what a caller says it did); an approval's last recorded decision is
//! its status; a kill switch's last recorded state is its state.

use std::collections::BTreeMap;

use haltstate_types::{
    ApprovalStatus, EvidenceKind, EvidenceQuery, EvidenceRecord, KeyState, KillScope, KillState,
    Outcome,
};
use time::OffsetDateTime;

use super::Authority;
use super::replay::ReplayQuery;
use crate::error::{AuthorityError, Result};
use crate::ops::UNVERIFIED;

/// What the ledger says one key's row must be.
#[derive(Default)]
struct KeyExpected {
    /// The latest operation (generation) the ledger granted or asked approval for.
    latest: u64,
    /// The latest operation that completed, and the record that says so.
    completed: Option<(u64, u64)>,
}

/// What the ledger says one tenant's rows must be.
#[derive(Default)]
struct Expected {
    /// (Agent, key) -> what its row must be.
    keys: BTreeMap<(String, String), KeyExpected>,
    /// Approval id -> its last recorded decision and the record.
    approvals: BTreeMap<String, (ApprovalStatus, u64)>,
    /// Agent ("" for the tenant) -> its last recorded kill-switch state and the record.
    kill: BTreeMap<String, (KillState, u64)>,
}

impl Expected {
    fn learn(&mut self, record: &EvidenceRecord) {
        match record.kind {
            EvidenceKind::Guard => {
                // A claim granted, or an approval asked for: either way the key got its row.
                let granted = matches!(
                    record.status.as_deref(),
                    Some("allowed" | "approved" | "pending")
                );
                if let (true, Some(agent), Some(key)) =
                    (granted, &record.agent_id, &record.idempotency_key)
                {
                    let expected = self.keys.entry((agent.clone(), key.clone())).or_default();
                    expected.latest = expected.latest.max(record.generation.unwrap_or(1));
                }
            }
            // Fail-open evidence is the caller's claim, not the authority's: it ran without a decision and
            // moved no row, so it fixes nothing about the state (anyone holding an agent key could otherwise
            // make verified state look tampered with, and stop `serve` from starting).
            EvidenceKind::Outcome if record.status.as_deref() == Some(UNVERIFIED) => {}
            EvidenceKind::Outcome => {
                if let (Some(Outcome::Success), Some(agent), Some(key)) =
                    (record.outcome, &record.agent_id, &record.idempotency_key)
                {
                    let generation = record.generation.unwrap_or(1);
                    let expected = self.keys.entry((agent.clone(), key.clone())).or_default();
                    expected.latest = expected.latest.max(generation);
                    expected.completed = Some((generation, record.seq));
                }
            }
            EvidenceKind::Approval => {
                let status = record.status.as_deref().and_then(ApprovalStatus::parse);
                if let (Some(status), Some(id)) = (status, &record.approval_id)
                    && status != ApprovalStatus::Pending
                {
                    self.approvals.insert(id.clone(), (status, record.seq));
                }
            }
            EvidenceKind::KillSwitch => {
                if let Some(state) = record.status.as_deref().and_then(KillState::parse) {
                    let agent = record.agent_id.clone().unwrap_or_default();
                    self.kill.insert(agent, (state, record.seq));
                }
            }
            EvidenceKind::Check | EvidenceKind::CheckReport | EvidenceKind::Key => {}
        }
    }
}

impl Authority {
    /// Checks the state rows against the ledger (all tenants, or one; the evidence since a time, or all: the
    /// rows that evidence fixes); the first row that contradicts it is [`AuthorityError::StateMismatch`].
    /// Answers how many rows were checked.
    pub fn verify_state(&self, query: &ReplayQuery) -> Result<usize> {
        let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
        self.each_record(query, |record| {
            expected
                .entry(record.tenant.clone())
                .or_default()
                .learn(record);
            Ok(())
        })?;
        self.check_rows(&expected)
    }

    /// [`verify_state`](Self::verify_state) over each tenant's newest `per_tenant` records at or after `since`:
    /// a check whose time and memory are bounded by the number of tenants, whatever the tenants' agents wrote
    /// (what `serve` runs before it listens; an agent writing millions of records a day must not make a restart
    /// take hours, or run out of memory).
    ///
    /// ```
    /// # use haltstate_authority::Authority;
    /// # let dir = tempfile::tempdir()?;
    /// let authority = Authority::builder(dir.path().join("hs.db")).open()?;
    /// let since = authority.now() - time::Duration::days(1);
    /// assert_eq!(authority.verify_recent_state(since, 10_000)?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify_recent_state(&self, since: OffsetDateTime, per_tenant: u64) -> Result<usize> {
        let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
        for tenant in self.inner.reads.tenants()? {
            let head = self.inner.reads.tenant_head(&tenant)?;
            let query = EvidenceQuery {
                from: Some(since),
                after_seq: Some(head.seq.saturating_sub(per_tenant)),
                ..EvidenceQuery::default()
            };
            let learnt = expected.entry(tenant.clone()).or_default();
            self.each_chained(&tenant, query, |chained| {
                learnt.learn(&chained.record);
                Ok(())
            })?;
        }
        self.check_rows(&expected)
    }

    /// Compares the rows with what the ledger says they must be; answers how many were checked.
    fn check_rows(&self, expected: &BTreeMap<String, Expected>) -> Result<usize> {
        let now = self.now();
        let mut checked = 0;
        for (tenant, expected) in expected {
            let mismatch = |what: String| AuthorityError::StateMismatch {
                tenant: tenant.clone(),
                problem: what,
            };
            for ((agent, key), expected) in &expected.keys {
                checked += 1;
                let Some(row) = self.inner.reads.key_state(tenant, agent, key, now)? else {
                    return Err(mismatch(format!(
                        "key {key:?}: the ledger holds its guard but its row is missing"
                    )));
                };
                if row.generation < expected.latest {
                    return Err(mismatch(format!(
                        "key {key:?}: the ledger holds its operation {}, but its row is at operation {}",
                        expected.latest, row.generation
                    )));
                }
                if let Some((generation, seq)) = expected.completed
                    && generation >= row.generation
                    && row.state != KeyState::Completed
                {
                    return Err(mismatch(format!(
                        "key {key:?}: record {seq} completed it, but its row says {}",
                        row.state.as_str()
                    )));
                }
            }
            for (id, (status, seq)) in &expected.approvals {
                checked += 1;
                let row = self.inner.reads.approval(tenant, id, now)?;
                if row.as_ref().map(|a| a.status) != Some(*status) {
                    return Err(mismatch(format!(
                        "approval {id}: record {seq} says {}, its row says {}",
                        status.as_str(),
                        row.map_or("nothing (missing)", |a| a.status.as_str())
                    )));
                }
            }
            for (agent, (state, seq)) in &expected.kill {
                checked += 1;
                let scope = match agent.as_str() {
                    "" => KillScope::Tenant(tenant.clone()),
                    agent => KillScope::Agent {
                        tenant: tenant.clone(),
                        agent_id: agent.to_owned(),
                    },
                };
                let row = self.inner.reads.kill_state(&scope)?;
                if row != *state {
                    return Err(mismatch(format!(
                        "kill switch of {}: record {seq} set it to {state}, its row says {row}",
                        if agent.is_empty() {
                            "the tenant".to_owned()
                        } else {
                            format!("agent {agent}")
                        }
                    )));
                }
            }
        }
        Ok(checked)
    }
}

//! Each stored record decoded once, for both backends, from a [`Row`] whose columns are the ones the matching
//! `*_columns!` macro lists, in that order. A column that does not decode is an error
//! ([`AuthorityError::Corrupt`]), never a default someone would act on; the rules a read applies (an overdue
//! approval reads expired, an unreadable kill switch is KILL) are the vocabulary's methods.

use std::num::NonZeroU32;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use haltstate_types::timestamp::from_micros;
use haltstate_types::{
    AgentSet, Approval, ApprovalStatus, ChainedRecord, KeyInfo, KeyLifetime, KeyState, Principal,
    Role,
};

use super::chain::StoredRecord;
use super::row::Row;
use crate::error::{AuthorityError, Result};
use crate::state_rows::{CheckRecord, KeyRecord};

/// The columns [`approval`] reads, in order.
macro_rules! approval_columns {
    () => {
        "id, tenant, idempotency_key, agent_id, action, resource, params, risk, metadata, policy_id, \
         policy_reason, status, created_us, expires_us, decided_us, approver, decision_reason, \
         approvals_required, approved_by, policy_version"
    };
}

/// The columns [`key_record`] reads, in order.
macro_rules! key_record_columns {
    () => {
        "fingerprint, agent_id, action, state, approval_id, policy_id, reason, claim_token, lease_until_us, \
         outcome_seq, claimed_by, client_token, usage_us, usage, attempts, retry_digest, lifetime, generation"
    };
}

/// The columns [`key_info`] reads, in order.
macro_rules! key_info_columns {
    () => {
        "id, tenant, name, role, agents, rate_limit, created_us, revoked_us"
    };
}

/// The columns [`check_record`] reads, in order.
macro_rules! check_record_columns {
    () => {
        "fingerprint, agent_id, action, decision"
    };
}

pub(crate) use {approval_columns, check_record_columns, key_info_columns, key_record_columns};

/// A count or sequence number stored signed: negative is corrupt, never 0.
fn unsigned(value: i64, what: &str) -> Result<u64> {
    u64::try_from(value)
        .map_err(|_| AuthorityError::Corrupt(format!("{what} is negative: {value}")))
}

/// An approval as it stands at `now` (see [`Approval::as_of`]).
pub(crate) fn approval(row: &impl Row, now: OffsetDateTime) -> Result<Approval> {
    let corrupt = |column: usize, why: String| {
        AuthorityError::Corrupt(format!("approval column {column}: {why}"))
    };
    let status = row.text(11)?;
    let status = ApprovalStatus::parse(&status)
        .ok_or_else(|| corrupt(11, format!("unknown status {status:?}")))?;
    let params = serde_json::from_str::<Map<String, Value>>(&row.text(6)?)
        .map_err(|e| corrupt(6, e.to_string()))?;
    let metadata = row
        .text_opt(8)?
        .map(|m| serde_json::from_str(&m))
        .transpose()
        .map_err(|e| corrupt(8, e.to_string()))?;
    let approvals_required = u32::try_from(row.int(17)?).map_err(|e| corrupt(17, e.to_string()))?;
    let approval = Approval {
        id: row.text(0)?,
        tenant: row.text(1)?,
        idempotency_key: row.text_opt(2)?,
        agent_id: row.text(3)?,
        action: row.text(4)?,
        resource: row.text_opt(5)?,
        params,
        risk: row.text_opt(7)?,
        metadata,
        policy_id: row.text_opt(9)?,
        policy_reason: row.text(10)?,
        status,
        created_at: from_micros(row.int(12)?),
        expires_at: from_micros(row.int(13)?),
        decided_at: row.int_opt(14)?.map(from_micros),
        approver: row.text_opt(15)?,
        decision_reason: row.text_opt(16)?,
        approvals_required,
        approved_by: super::approvers::decode(row.text_opt(18)?).map_err(|e| corrupt(18, e))?,
        policy_version: row.text_opt(19)?,
    };
    Ok(approval.as_of(now))
}

/// The idempotency row of `key`. An unknown state or lifetime is refused, never guessed: a state read as
/// `failed`, or a lifetime read as `operation`, would let a completed side effect run again.
pub(crate) fn key_record(row: &impl Row, key: &str) -> Result<KeyRecord> {
    let corrupt = |what: &str, value: &str| {
        AuthorityError::Corrupt(format!(
            "idempotency key {key:?} has an unknown {what} {value:?}"
        ))
    };
    let state = row.text(3)?;
    let state = KeyState::parse(&state).ok_or_else(|| corrupt("state", &state))?;
    let lifetime = row.text(16)?;
    let lifetime = KeyLifetime::parse(&lifetime).ok_or_else(|| corrupt("lifetime", &lifetime))?;
    Ok(KeyRecord {
        key: key.to_owned(),
        fingerprint: row.text(0)?,
        agent_id: row.text(1)?,
        action: row.text(2)?,
        state,
        lifetime,
        generation: unsigned(row.int(17)?, "a key's generation")?,
        approval_id: row.text_opt(4)?,
        policy_id: row.text_opt(5)?,
        reason: row.text(6)?,
        claim_token: row.text_opt(7)?,
        retry_digest: row.text_opt(15)?,
        attempts: u32::try_from(row.int(14)?).map_err(|_| {
            AuthorityError::Corrupt(format!(
                "idempotency key {key:?} has an attempt count out of range"
            ))
        })?,
        lease_until: row.int_opt(8)?.map(from_micros),
        outcome_seq: row
            .int_opt(9)?
            .map(|seq| unsigned(seq, "an outcome's sequence number"))
            .transpose()?,
        claimed_by: row.text_opt(10)?,
        client_token: row.flag(11)?,
        charged: super::usage::charge_of(row.int_opt(12)?, row.text_opt(13)?)?,
    })
}

/// An API key (never its secret). Keys from before agent sets act as the agent their name says.
pub(crate) fn key_info(row: &impl Row) -> Result<KeyInfo> {
    let role = row.text(3)?;
    let role = Role::parse(&role)
        .ok_or_else(|| AuthorityError::Corrupt(format!("stored key role {role:?} is unknown")))?;
    let agents = match (role, row.text_opt(4)?) {
        (Role::Operator | Role::Admin, _) => AgentSet::default(),
        (Role::Agent, Some(stored)) => serde_json::from_str(&stored).map_err(|e| {
            AuthorityError::Corrupt(format!("stored agent set does not decode: {e}"))
        })?,
        (Role::Agent, None) => AgentSet::one(&row.text(2)?)?,
    };
    let rate_limit = row
        .int_opt(5)?
        .map(|n| {
            u32::try_from(n)
                .ok()
                .and_then(NonZeroU32::new)
                .ok_or_else(|| {
                    AuthorityError::Corrupt(format!("stored rate limit {n} is out of range"))
                })
        })
        .transpose()?;
    Ok(KeyInfo {
        id: row.text(0)?,
        tenant: row.text(1)?,
        name: row.text(2)?,
        role,
        agents,
        rate_limit,
        created_at: from_micros(row.int(6)?),
        revoked_at: row.int_opt(7)?.map(from_micros),
    })
}

/// Who a key row (the columns of [`key_info`], then `key_hash`) authenticates as within `tenant`, for a secret
/// whose hash is `presented`. Every failure is the same `Unauthenticated`: a revoked key, another tenant's, a hash
/// that does not match (compared in constant time), and a row that does not decode (logged: fail closed).
pub(crate) fn principal(row: &impl Row, tenant: &str, presented: &[u8; 32]) -> Result<Principal> {
    let stored = row.bytes(8)?;
    match key_info(row) {
        Ok(info)
            if info.revoked_at.is_none()
                && info.tenant == tenant
                && crate::secrets::matches(&stored, presented) =>
        {
            Ok(Principal {
                tenant: info.tenant,
                key_id: info.id,
                name: info.name,
                role: info.role,
                agents: info.agents,
                rate_limit: info.rate_limit,
            })
        }
        Err(error) => {
            tracing::error!(%error, "an API key row does not decode; refusing it");
            Err(AuthorityError::Unauthenticated)
        }
        Ok(_) => Err(AuthorityError::Unauthenticated),
    }
}

/// A check's stored decision, under `request_id`.
pub(crate) fn check_record(row: &impl Row, request_id: &str) -> Result<CheckRecord> {
    Ok(CheckRecord {
        request_id: request_id.to_owned(),
        fingerprint: row.text(0)?,
        agent_id: row.text(1)?,
        action: row.text(2)?,
        decision: row.text(3)?,
    })
}

/// A ledger record as evidence (columns `body, prev_hash, hash`) of `tenant`.
pub(crate) fn chained_record(row: &impl Row, tenant: &str) -> Result<ChainedRecord> {
    let body = row.bytes(0)?;
    let record = serde_json::from_slice(&body).map_err(|e| AuthorityError::LedgerBroken {
        tenant: tenant.to_owned(),
        seq: 0,
        problem: format!("a record of tenant {tenant} does not decode: {e}"),
    })?;
    Ok(ChainedRecord {
        record,
        prev_hash: row.text(1)?,
        hash: row.text(2)?,
    })
}

/// The columns [`stored_record`] reads, in order.
macro_rules! stored_record_columns {
    () => {
        "tenant, seq, prev_hash, hash, body, at, idempotency_key"
    };
}

pub(crate) use stored_record_columns;

/// A ledger row as the chain verifier walks it (decoding its body is the verifier's work).
pub(crate) fn stored_record(row: &impl Row) -> Result<StoredRecord> {
    Ok(StoredRecord {
        tenant: row.text(0)?,
        seq: row.int(1)?,
        prev_hash: row.text(2)?,
        hash: row.text(3)?,
        body: row.bytes(4)?,
        at: row.text(5)?,
        idempotency_key: row.text_opt(6)?,
    })
}

//! Many key rows and ledger records in one statement: each column sent as an array and unnested, the key rows
//! upserted, the records and their tree hashes inserted. What a tenant transaction of several operations holds
//! back ([`super::pending`]) goes to PostgreSQL this way, one round trip and one plan for the whole batch.

use postgres::types::ToSql;

use super::conn::Conn;
use super::held_rows::{KeyRow, RecordRow, key_values};
use crate::error::{AuthorityError, Result};
use crate::store::sql::{key_upsert_conflict, key_upsert_into};

/// The tenant `$1`; the key rows' columns `$2`-`$21` (one array each, `$13` both `created_us` and `updated_us`);
/// the tree hashes' indexes `$22` and hashes `$23`; the records' columns `$24`-`$31`. The key rows come first in
/// the statement's order of effects only nominally: the three tables are distinct, so no part sees another's rows.
const BULK_INSERT: &str = concat!(
    "WITH k AS (",
    key_upsert_into!(),
    "SELECT $1, k.key, k.fingerprint, k.agent_id, k.action, k.state, k.approval_id, k.policy_id, k.reason, \
     k.claim_token, k.lease_until_us, k.outcome_seq, k.now_us, k.now_us, k.claimed_by, k.client_token, \
     k.usage_us, k.usage, k.attempts, k.retry_digest, k.lifetime, k.generation \
     FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
     $9::text[], $10::text[], $11::bigint[], $12::bigint[], $13::bigint[], $14::text[], $15::bool[], \
     $16::bigint[], $17::text[], $18::bigint[], $19::text[], $20::text[], $21::bigint[]) \
     AS k(key, fingerprint, agent_id, action, state, approval_id, policy_id, reason, claim_token, \
     lease_until_us, outcome_seq, now_us, claimed_by, client_token, usage_us, usage, attempts, retry_digest, \
     lifetime, generation)",
    key_upsert_conflict!("tenant, key, agent_id"),
    "), \
     tree AS (INSERT INTO tlog_hashes (tenant, idx, hash) \
     SELECT $1, t.idx, t.hash FROM UNNEST($22::bigint[], $23::bytea[]) AS t(idx, hash)) \
     INSERT INTO ledger (tenant, seq, prev_hash, hash, body, at, idempotency_key, action, agent_id) \
     SELECT $1, r.seq, r.prev_hash, r.hash, r.body, r.at, r.key, r.action, r.agent \
     FROM UNNEST($24::bigint[], $25::text[], $26::text[], $27::bytea[], $28::text[], $29::text[], \
     $30::text[], $31::text[]) AS r(seq, prev_hash, hash, body, at, key, action, agent)"
);

/// Sends `keys` (each row once: [`super::pending`] keeps a row's last version) and `records`, all of one tenant.
pub(super) fn insert(conn: &mut Conn, keys: &[KeyRow], records: &[RecordRow]) -> Result<()> {
    let tenant = keys
        .first()
        .map(|row| &row.tenant)
        .or_else(|| records.first().map(|row| &row.tenant));
    let Some(tenant) = tenant else {
        return Ok(());
    };
    if keys.iter().any(|row| &row.tenant != tenant)
        || records.iter().any(|row| &row.tenant != tenant)
    {
        return Err(AuthorityError::Corrupt(
            "a transaction held writes of two tenants".into(),
        ));
    }
    let k = KeyColumns::of(keys)?;
    let r = RecordColumns::of(records);
    let params: [&(dyn ToSql + Sync); 31] = [
        tenant,
        &k.key,
        &k.fingerprint,
        &k.agent_id,
        &k.action,
        &k.state,
        &k.approval_id,
        &k.policy_id,
        &k.reason,
        &k.claim_token,
        &k.lease_until,
        &k.outcome_seq,
        &k.now_us,
        &k.claimed_by,
        &k.client_token,
        &k.usage_us,
        &k.usage,
        &k.attempts,
        &k.retry_digest,
        &k.lifetime,
        &k.generation,
        &r.tree_indexes,
        &r.tree_hashes,
        &r.seq,
        &r.prev_hash,
        &r.hash,
        &r.body,
        &r.at,
        &r.key,
        &r.action,
        &r.agent,
    ];
    conn.execute(BULK_INSERT, &params).map(drop)
}

/// The key rows, column by column.
#[derive(Default)]
struct KeyColumns<'a> {
    key: Vec<&'a str>,
    fingerprint: Vec<&'a str>,
    agent_id: Vec<&'a str>,
    action: Vec<&'a str>,
    state: Vec<&'static str>,
    approval_id: Vec<Option<&'a str>>,
    policy_id: Vec<Option<&'a str>>,
    reason: Vec<&'a str>,
    claim_token: Vec<Option<&'a str>>,
    lease_until: Vec<Option<i64>>,
    outcome_seq: Vec<Option<i64>>,
    now_us: Vec<i64>,
    claimed_by: Vec<Option<&'a str>>,
    client_token: Vec<bool>,
    usage_us: Vec<Option<i64>>,
    usage: Vec<Option<String>>,
    attempts: Vec<i64>,
    retry_digest: Vec<Option<&'a str>>,
    lifetime: Vec<&'static str>,
    generation: Vec<i64>,
}

impl<'a> KeyColumns<'a> {
    fn of(rows: &'a [KeyRow]) -> Result<Self> {
        let mut c = Self::default();
        for row in rows {
            let v = key_values(row)?;
            let record = &row.record;
            c.key.push(&record.key);
            c.fingerprint.push(&record.fingerprint);
            c.agent_id.push(&record.agent_id);
            c.action.push(&record.action);
            c.state.push(v.state);
            c.approval_id.push(record.approval_id.as_deref());
            c.policy_id.push(record.policy_id.as_deref());
            c.reason.push(&record.reason);
            c.claim_token.push(record.claim_token.as_deref());
            c.lease_until.push(v.lease_until);
            c.outcome_seq.push(v.outcome_seq);
            c.now_us.push(row.now_us);
            c.claimed_by.push(record.claimed_by.as_deref());
            c.client_token.push(record.client_token);
            c.usage_us.push(v.usage_us);
            c.usage.push(v.usage);
            c.attempts.push(v.attempts);
            c.retry_digest.push(record.retry_digest.as_deref());
            c.lifetime.push(v.lifetime);
            c.generation.push(v.generation);
        }
        Ok(c)
    }
}

/// The records and their tree hashes, column by column.
#[derive(Default)]
struct RecordColumns<'a> {
    seq: Vec<i64>,
    prev_hash: Vec<&'a str>,
    hash: Vec<&'a str>,
    body: Vec<&'a [u8]>,
    at: Vec<&'a str>,
    key: Vec<Option<&'a str>>,
    action: Vec<Option<&'a str>>,
    agent: Vec<Option<&'a str>>,
    tree_indexes: Vec<i64>,
    tree_hashes: Vec<&'a [u8]>,
}

impl<'a> RecordColumns<'a> {
    fn of(rows: &'a [RecordRow]) -> Self {
        let mut c = Self::default();
        for row in rows {
            c.seq.push(row.seq);
            c.prev_hash.push(&row.prev_hash);
            c.hash.push(&row.hash);
            c.body.push(&row.body);
            c.at.push(&row.at);
            c.key.push(row.key.as_deref());
            c.action.push(row.action.as_deref());
            c.agent.push(row.agent.as_deref());
            c.tree_indexes.extend(&row.tree_indexes);
            c.tree_hashes
                .extend(row.tree_hashes.iter().map(Vec::as_slice));
        }
        c
    }
}

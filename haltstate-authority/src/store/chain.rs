//! Verifying stored chains, whatever the backend: rows go in tenant by tenant and in sequence order, each
//! tenant's head row is compared with its last record, and the first disagreement is named.

use std::collections::HashMap;

use haltstate_types::timestamp::format_rfc3339;
use haltstate_types::{
    EvidenceRecord, GENESIS_HASH, LedgerHead, TenantHead, VerifyReport, record_hash,
};

use crate::error::{AuthorityError, Result};
use time::OffsetDateTime;

/// The end of one tenant's chain, advanced record by record inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tail {
    pub(crate) seq: u64,
    pub(crate) hash: String,
    /// The last record's time, before which the next record's is not put (`None`: no record, or a chain being
    /// rebuilt as it was written).
    pub(crate) at: Option<OffsetDateTime>,
}

/// How far the clock may stand behind a chain's last record for the next record to take the last record's time
/// instead of its own: the steps back of clock corrections and paused machines. A clock further behind (set back by
/// hand, or back from a leap forward) gives records their own time, out of order, rather than a time that may be
/// far off for as long as the clock takes to catch up; SQLite then keeps an index by time again (`sqlite/times.rs`).
pub(crate) const STEP_BACK_ABSORBED: time::Duration = time::Duration::minutes(1);

impl Tail {
    pub(crate) fn genesis() -> Self {
        Tail {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
            at: None,
        }
    }

    /// Whether a record at `at` goes before the last record: the clock stands more than [`STEP_BACK_ABSORBED`]
    /// behind it.
    pub(crate) fn out_of_order(&self, at: OffsetDateTime) -> bool {
        self.at
            .and_then(|last| last.checked_sub(STEP_BACK_ABSORBED))
            .is_some_and(|floor| at < floor)
    }

    /// Assigns `record` the next sequence number and answers its canonical bytes and hash. A record whose clock
    /// stands a little behind the last record's time takes that time: a tenant's record times stay in sequence
    /// order, which SQLite's time queries rely on (schema 25, `sqlite/times.rs`), and so do readers of a ledger.
    /// Further behind, it keeps its own ([`out_of_order`](Self::out_of_order)).
    pub(crate) fn next(&self, record: &mut EvidenceRecord) -> Result<(Vec<u8>, String)> {
        if let Some(last) = self.at
            && !self.out_of_order(record.at)
        {
            record.at = record.at.max(last);
        }
        record.seq = self.seq + 1;
        record.saturate_numbers();
        let body = record.canonical_bytes().map_err(|e| {
            AuthorityError::Corrupt(format!("a ledger record does not serialize: {e}"))
        })?;
        let hash = record_hash(&self.hash, &body);
        Ok((body, hash))
    }
}

/// One ledger row as stored: the hashed bytes and the columns queries find it by.
#[derive(Debug)]
pub(crate) struct StoredRecord {
    pub(crate) tenant: String,
    /// As stored: a negative number is a broken ledger, not a decoding error.
    pub(crate) seq: i64,
    pub(crate) prev_hash: String,
    pub(crate) hash: String,
    pub(crate) body: Vec<u8>,
    pub(crate) at: String,
    pub(crate) idempotency_key: Option<String>,
}

/// A chain being walked.
struct Walk {
    tenant: String,
    next_seq: u64,
    prev: String,
    /// The previous record's time, as stored.
    prev_at: String,
}

/// Checks rows as they are read, so that a ledger of any size is verified in constant memory per tenant.
pub(crate) struct ChainVerifier {
    /// Head rows not yet compared with their chain: `tenant -> (seq, hash)`, as stored.
    heads: HashMap<String, (i64, String)>,
    walk: Option<Walk>,
    done: Vec<TenantHead>,
    records: u64,
    times_in_order: bool,
}

pub(crate) fn broken(tenant: &str, seq: u64, problem: impl Into<String>) -> AuthorityError {
    AuthorityError::LedgerBroken {
        tenant: tenant.to_owned(),
        seq,
        problem: problem.into(),
    }
}

/// After a walk of one tenant's chain up to the head it read first (a window at a time, `store/windows.rs`): the
/// head's number and the tenant's last record's, read together in one snapshot. The writer moves both in one
/// transaction, so a record past the head was appended around the authority, and records without a head are a
/// chain whose head was taken away.
pub(crate) fn check_tail(tenant: &str, head: Option<i64>, last: Option<i64>) -> Result<()> {
    match (head, last) {
        (None, Some(last)) => Err(broken(
            tenant,
            u64::try_from(last).unwrap_or(0),
            "the chain's head is missing",
        )),
        (Some(head), Some(last)) if last > head => Err(broken(
            tenant,
            u64::try_from(last).unwrap_or(0),
            format!("record {last} is past the head ({head})"),
        )),
        _ => Ok(()),
    }
}

/// The statement that reads a tenant's head and last record for [`check_tail`] (`?1` the tenant).
pub(crate) const TAIL: &str = "SELECT (SELECT seq FROM ledger_heads WHERE tenant = ?1), \
     (SELECT max(seq) FROM ledger WHERE tenant = ?1)";

impl ChainVerifier {
    /// A verifier for chains whose stored head rows are `heads`.
    pub(crate) fn new(heads: HashMap<String, (i64, String)>) -> Self {
        Self {
            heads,
            walk: None,
            done: Vec::new(),
            records: 0,
            times_in_order: false,
        }
    }

    /// Also requires each record's time to be no earlier than the one before it: a ledger that finds time ranges
    /// through the order of its records (SQLite without its index by time, schema 25) would misread one that is.
    pub(crate) fn times_in_order(mut self) -> Self {
        self.times_in_order = true;
        self
    }

    /// Checks the next row; rows must come grouped by tenant, in sequence order within one.
    pub(crate) fn push(&mut self, row: StoredRecord) -> Result<()> {
        if self.walk.as_ref().is_none_or(|w| w.tenant != row.tenant) {
            self.end_walk()?;
            if self.done.iter().any(|h| h.tenant == row.tenant) {
                return Err(broken(
                    &row.tenant,
                    0,
                    "its records are not stored as one chain",
                ));
            }
            self.walk = Some(Walk {
                tenant: row.tenant.clone(),
                next_seq: 1,
                prev: GENESIS_HASH.to_owned(),
                prev_at: String::new(),
            });
        }
        let Some(walk) = self.walk.as_mut() else {
            return Ok(());
        };
        let expected = walk.next_seq;
        let tenant = walk.tenant.as_str();
        let seq = u64::try_from(row.seq).map_err(|_| {
            broken(
                tenant,
                expected,
                format!("invalid sequence number {}", row.seq),
            )
        })?;
        if seq != expected {
            return Err(broken(
                tenant,
                expected,
                format!("record {expected} is missing (next record is {seq})"),
            ));
        }
        if row.prev_hash != walk.prev {
            return Err(broken(
                tenant,
                seq,
                "its prev_hash does not match the previous record's hash",
            ));
        }
        if record_hash(&row.prev_hash, &row.body) != row.hash {
            return Err(broken(tenant, seq, "its content does not match its hash"));
        }
        let record: EvidenceRecord = serde_json::from_slice(&row.body).map_err(|e| {
            broken(
                tenant,
                seq,
                format!("its content is not a valid evidence record: {e}"),
            )
        })?;
        if record.seq != seq {
            return Err(broken(
                tenant,
                seq,
                format!("it claims to be record {}", record.seq),
            ));
        }
        // Queries find records through these columns: one that disagrees with the hashed body would hide the
        // record from (or slip it into) another tenant's, key's or time range's evidence.
        if (
            record.tenant.as_str(),
            format_rfc3339(record.at).as_str(),
            record.idempotency_key.as_deref(),
        ) != (
            row.tenant.as_str(),
            row.at.as_str(),
            row.idempotency_key.as_deref(),
        ) {
            return Err(broken(
                tenant,
                seq,
                "its indexed columns (tenant, at, idempotency_key) do not match its content",
            ));
        }
        if self.times_in_order && row.at < walk.prev_at {
            return Err(broken(
                tenant,
                seq,
                "its time is before the previous record's, and this ledger finds records by time through their order",
            ));
        }
        walk.prev = row.hash;
        walk.prev_at = row.at;
        walk.next_seq += 1;
        self.records += 1;
        Ok(())
    }

    /// Ends the chain being walked: its last record must be what its head row says.
    fn end_walk(&mut self) -> Result<()> {
        if let Some(walk) = self.walk.take() {
            let (tenant, records) = (walk.tenant, walk.next_seq - 1);
            let Some((head_seq, head_hash)) = self.heads.remove(&tenant) else {
                return Err(broken(&tenant, records, "the chain's head is missing"));
            };
            check_head(&tenant, records, &walk.prev, head_seq, &head_hash)?;
            self.done.push(TenantHead {
                tenant,
                head: LedgerHead {
                    seq: records,
                    hash: walk.prev,
                },
            });
        }
        Ok(())
    }

    /// Ends the walk; answers what was verified.
    pub(crate) fn finish(mut self) -> Result<VerifyReport> {
        self.end_walk()?;
        // A head with no records: only an empty chain's (a tenant that wrote nothing yet) is whole.
        let mut rest: Vec<_> = std::mem::take(&mut self.heads).into_iter().collect();
        rest.sort();
        for (tenant, (head_seq, head_hash)) in rest {
            check_head(&tenant, 0, GENESIS_HASH, head_seq, &head_hash)?;
        }
        self.done.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        Ok(VerifyReport {
            records: self.records,
            chains: self.done,
        })
    }
}

fn check_head(
    tenant: &str,
    records: u64,
    last_hash: &str,
    head_seq: i64,
    head_hash: &str,
) -> Result<()> {
    let head_seq = u64::try_from(head_seq).map_err(|_| {
        broken(
            tenant,
            records.max(1),
            format!("the head's sequence number {head_seq} is invalid"),
        )
    })?;
    if head_seq > records {
        return Err(broken(
            tenant,
            records + 1,
            format!(
                "record {} is missing (the head says {head_seq})",
                records + 1
            ),
        ));
    }
    if head_seq < records {
        return Err(broken(
            tenant,
            head_seq + 1,
            format!("record {} is past the head ({head_seq})", head_seq + 1),
        ));
    }
    if head_hash != last_hash {
        return Err(broken(
            tenant,
            records,
            "the head's hash does not match the last record",
        ));
    }
    Ok(())
}

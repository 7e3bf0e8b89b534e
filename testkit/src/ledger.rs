//! What the ledger recorded.

use haltstate_authority::{Authority, EvidenceKind, EvidenceQuery, Outcome};

/// The outcomes recorded for `key` of `tenant`, in ledger order.
pub fn outcomes(authority: &Authority, tenant: &str, key: &str) -> Vec<Outcome> {
    let query = EvidenceQuery {
        idempotency_key: Some(key.into()),
        limit: Some(1000),
        ..EvidenceQuery::default()
    };
    match authority.evidence(tenant, &query) {
        Ok(records) => records
            .into_iter()
            .filter(|record| record.kind == EvidenceKind::Outcome)
            .filter_map(|record| record.outcome)
            .collect(),
        Err(error) => panic!("reading the evidence of {key}: {error}"),
    }
}

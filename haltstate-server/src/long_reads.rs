//! Reads whose time grows with a tenant's ledger: run off the runtime's workers, each on a thread of its own at a
//! lower CPU priority ([`low_priority`](crate::low_priority)), at most [`PER_TENANT`] of one tenant's at once.
//!
//! An evidence search by action or agent is not indexed: one that matches little reads the tenant's whole ledger
//! (~1 µs a record: a second at 10^6 records, ten at 10^7); the console's chain check reads and hashes all of it,
//! its shadow page a week of it, its overview up to a day of it (200,000 records). Run on a worker, such a read
//! holds one of the few threads that serve every tenant's agents: four operators searching a 1.26-million-record
//! ledger stopped a 2-core server's guards (0 actions/s, p50 2.8 s at one connection; 345 actions/s and p50
//! 1.3 ms with the searches here instead). On threads of their own at a lower priority they take the CPU the
//! workers leave; the cap keeps one tenant's operators from running more than [`PER_TENANT`] such threads (and
//! holding as many snapshots of the database), however many requests they send. It counts per tenant so that another tenant's searches
//! never wait behind them.

use std::sync::Arc;

use axum::http::StatusCode;
use haltstate_authority::AuthorityError;
use haltstate_types::{ErrorCode, EvidenceQuery};

use crate::error::ApiError;
use crate::slots::Slots;

/// A tenant's long reads at once; past it, 429 until one ends.
pub(crate) const PER_TENANT: usize = 2;

/// The long reads running, by tenant.
pub(crate) type LongReads = Slots<String>;

/// Why a long read answered nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LongReadError {
    /// The tenant has [`PER_TENANT`] long reads running already.
    #[error("this tenant already has {PER_TENANT} long reads running; retry when one ends")]
    Busy,
    /// The read failed (or panicked, as [`AuthorityError::Unavailable`]: a bug, never an empty answer).
    #[error(transparent)]
    Read(#[from] AuthorityError),
}

impl From<LongReadError> for ApiError {
    fn from(error: LongReadError) -> Self {
        match error {
            LongReadError::Busy => ApiError::retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                &error.to_string(),
                1,
            ),
            LongReadError::Read(error) => error.into(),
        }
    }
}

/// Runs `read` for `tenant` on a thread of its own at a lower priority than the workers', holding one of the
/// tenant's places until it returns (also when the request that asked is gone: the read still runs).
pub(crate) async fn off_workers<T, F>(
    reads: &Arc<LongReads>,
    tenant: &str,
    read: F,
) -> Result<T, LongReadError>
where
    F: FnOnce() -> haltstate_authority::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let place = reads
        .take(tenant.to_owned(), PER_TENANT)
        .ok_or(LongReadError::Busy)?;
    let answer = crate::low_priority::run(move || {
        let answer = read();
        drop(place);
        answer
    })
    .await
    .unwrap_or_else(|stopped| Err(AuthorityError::Unavailable(stopped.to_string())));
    Ok(answer?)
}

/// An evidence search: read in place when `query` names an idempotency key (the key's index finds its few records
/// however long the ledger, so it is never refused for the tenant's other searches), else a long read
/// ([`off_workers`]).
pub(crate) async fn evidence<T, F>(
    reads: &Arc<LongReads>,
    tenant: &str,
    query: EvidenceQuery,
    read: F,
) -> Result<T, LongReadError>
where
    F: FnOnce(&EvidenceQuery) -> haltstate_authority::Result<T> + Send + 'static,
    T: Send + 'static,
{
    if query.idempotency_key.is_some() {
        return Ok(read(&query)?);
    }
    off_workers(reads, tenant, move || read(&query)).await
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// A read of `tenant` that runs until the sender answered is sent to (or dropped).
    fn held(
        reads: &Arc<LongReads>,
        tenant: &str,
    ) -> (
        mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<u32, LongReadError>>,
    ) {
        let (release, wait) = mpsc::channel::<()>();
        let (reads, tenant) = (reads.clone(), tenant.to_owned());
        let read = tokio::spawn(async move {
            off_workers(&reads, &tenant, move || {
                wait.recv().ok();
                Ok(7)
            })
            .await
        });
        (release, read)
    }

    /// Until `tenant` holds `count` places (each read takes its place before it starts waiting).
    async fn until_held(reads: &Arc<LongReads>, tenant: &str, count: usize) {
        while reads.held(&tenant.to_owned()) < count {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_tenant_runs_at_most_its_cap_at_once_and_another_tenant_is_not_counted() {
        let reads: Arc<LongReads> = Arc::default();
        let (first, first_read) = held(&reads, "acme");
        let (second, second_read) = held(&reads, "acme");
        until_held(&reads, "acme", PER_TENANT).await;
        // Both reads hold a thread of their own; the one worker still answers.
        let refused = off_workers(&reads, "acme", || Ok(1)).await;
        assert!(matches!(refused, Err(LongReadError::Busy)), "{refused:?}");
        let other = off_workers(&reads, "globex", || Ok(2)).await;
        assert_eq!(other.ok(), Some(2), "another tenant's read is not held up");
        first.send(()).unwrap();
        assert_eq!(first_read.await.unwrap().ok(), Some(7));
        assert_eq!(off_workers(&reads, "acme", || Ok(3)).await.ok(), Some(3));
        second.send(()).unwrap();
        assert_eq!(second_read.await.unwrap().ok(), Some(7));
    }

    /// With the tenant's places taken, a search that names a key is read in place; one that does not is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn an_evidence_search_by_key_is_never_refused() {
        let reads: Arc<LongReads> = Arc::default();
        let (first, first_read) = held(&reads, "acme");
        let (second, second_read) = held(&reads, "acme");
        until_held(&reads, "acme", PER_TENANT).await;
        let by_key = EvidenceQuery {
            idempotency_key: Some("refund:1".into()),
            ..EvidenceQuery::default()
        };
        let found = evidence(&reads, "acme", by_key, |q| Ok(q.idempotency_key.clone())).await;
        assert_eq!(found.ok().flatten().as_deref(), Some("refund:1"));
        let by_action = EvidenceQuery {
            action: Some("refund.create".into()),
            ..EvidenceQuery::default()
        };
        let refused = evidence(&reads, "acme", by_action, |_| Ok(())).await;
        assert!(matches!(refused, Err(LongReadError::Busy)), "{refused:?}");
        for (release, read) in [(first, first_read), (second, second_read)] {
            release.send(()).unwrap();
            assert_eq!(read.await.unwrap().ok(), Some(7));
        }
    }

    /// A long read yields the CPU to the workers that serve the agents.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_long_read_runs_at_a_lower_priority_than_the_workers() {
        use rustix::process::getpriority_process;
        let reads: Arc<LongReads> = Arc::default();
        let worker = getpriority_process(None).unwrap();
        let read = off_workers(&reads, "acme", || Ok(getpriority_process(None).unwrap()))
            .await
            .unwrap();
        assert!(
            read > worker || worker == 19,
            "read at {read}, worker at {worker}"
        );
    }

    #[tokio::test]
    async fn a_failed_read_answers_its_error_and_gives_its_place_back() {
        let reads: Arc<LongReads> = Arc::default();
        let failed = off_workers(&reads, "acme", || -> haltstate_authority::Result<()> {
            Err(AuthorityError::Corrupt("a row".into()))
        })
        .await;
        assert!(matches!(
            failed,
            Err(LongReadError::Read(AuthorityError::Corrupt(_)))
        ));
        // (A read that panics answers `Unavailable`; not run here: the panic's backtrace would grow this test
        // process's memory beside `metrics`' test of it.)
        assert_eq!(
            reads.held(&"acme".to_owned()),
            0,
            "the place was given back"
        );
    }
}

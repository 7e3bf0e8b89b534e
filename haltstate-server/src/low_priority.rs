//! A thread of its own, at a lower CPU priority than the runtime's, for a read whose time grows with a tenant's
//! ledger.
//!
//! On tokio's blocking pool such a read ran at the priority of the workers that serve every tenant's agents: two
//! evidence searches of one tenant's operator took a 2-core server's guards at 8 connections from 4,842 to 2,045
//! actions/s (BENCHMARKS.md, "2026-12-06, fourth session"). [`NICER_BY`] lower (Linux weighs a thread at nice
//! +10 about a tenth of one at 0), a read takes the CPU the agents leave, and all of it when they leave it all
//! (on SQLite, whose reads run in this process; PostgreSQL's run in its own, which this does not reach).
//! One thread per read, not a pool: the reads are few (two per tenant at once) and run for milliseconds to
//! seconds, against tens of microseconds to start a thread. At most [`MAX_THREADS`] run in the process at once
//! (many tenants' operators must not use up its threads); past it a read waits its turn, first come first served,
//! as it did on tokio's blocking pool (512 threads).

use tokio::sync::Semaphore;

/// How much nicer (lower in priority) than the thread that asks a read runs.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) const NICER_BY: i32 = 10;

/// The highest nice value Linux has.
#[cfg(target_os = "linux")]
const NICEST: i32 = 19;

/// Long reads running at once in this process, every tenant's together.
pub(crate) const MAX_THREADS: usize = 64;

/// The places of [`MAX_THREADS`].
static THREADS: Semaphore = Semaphore::const_new(MAX_THREADS);

/// Why a read answered nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ThreadError {
    /// The system would not start a thread (out of threads or memory).
    #[error("cannot start a thread for the read: {0}")]
    Spawn(#[source] std::io::Error),
    /// The read panicked: a bug, never an empty answer.
    #[error("the read stopped before it answered")]
    Stopped,
}

/// Runs `read` on a new thread [`NICER_BY`] lower in priority than the caller's, once one of the process's
/// [`MAX_THREADS`] places is free; its answer once it returns. Once started, the read runs to its end also when
/// the future is dropped.
pub(crate) async fn run<T, F>(read: F) -> Result<T, ThreadError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    run_within(&THREADS, read).await
}

/// [`run`], holding a place of `places` while the read runs.
async fn run_within<T, F>(places: &'static Semaphore, read: F) -> Result<T, ThreadError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // Never closed: an error here would be a bug, answered like a read that stopped.
    let place = places.acquire().await.map_err(|_| ThreadError::Stopped)?;
    let (answer, answered) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("haltstate-read".to_owned())
        .spawn(move || {
            lower_priority();
            let read = read();
            // Free before the asker hears: whoever it lets in next may already be waiting.
            drop(place);
            // The asker may be gone; the read ran anyway.
            let _ = answer.send(read);
        })
        .map_err(ThreadError::Spawn)?;
    answered.await.map_err(|_| ThreadError::Stopped)
}

/// The calling thread's nice value raised by [`NICER_BY`] (a new thread starts with its creator's). Linux keeps
/// the value per thread; elsewhere it is the process's, and lowering it would slow the agents' guards with the
/// read, so it is left alone there.
#[cfg(target_os = "linux")]
fn lower_priority() {
    use rustix::process::{getpriority_process, setpriority_process};
    // `None`: the calling thread.
    let lowered = getpriority_process(None)
        .and_then(|nice| setpriority_process(None, (nice + NICER_BY).min(NICEST)));
    if let Err(error) = lowered {
        tracing::warn!(%error, "a long read runs at the runtime's priority: its thread's could not be lowered");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read holds a place while it runs, also when its asker is gone, and gives it back when it ends; the next
    /// read waits for it.
    #[tokio::test]
    async fn a_read_holds_a_place_of_the_process_until_it_ends() {
        static ONE: Semaphore = Semaphore::const_new(1);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let first = tokio::spawn(run_within(&ONE, move || {
            let _ = started.send(());
            wait.recv().ok();
        }));
        running.await.unwrap();
        assert_eq!(
            ONE.available_permits(),
            0,
            "the running read holds the place"
        );
        // Its asker gives up; the read still holds its place.
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        assert_eq!(ONE.available_permits(), 0);
        let second = tokio::spawn(run_within(&ONE, || 2));
        tokio::task::yield_now().await;
        assert!(!second.is_finished(), "the second read waits for the place");
        release.send(()).unwrap();
        assert_eq!(second.await.unwrap().unwrap(), 2);
        assert_eq!(ONE.available_permits(), 1, "given back");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_read_runs_nicer_than_its_caller() {
        let caller = rustix::process::getpriority_process(None).unwrap();
        let read = run(|| rustix::process::getpriority_process(None).unwrap())
            .await
            .unwrap();
        assert_eq!(read, (caller + NICER_BY).min(NICEST));
        assert_eq!(
            rustix::process::getpriority_process(None).unwrap(),
            caller,
            "the caller's own priority is unchanged"
        );
    }
}

//! The writer: who runs the next batch.
//!
//! Callers queue operations. Whoever finds the connection free (a caller, or the writer thread when nobody
//! else is) takes everything queued (up to a bound) and runs it as one batch (the backend's `Runner`, `job.rs`): one transaction, one
//! commit, answers only after it. Concurrent callers therefore share one fsync (group commit), and operations are
//! serialized, which is what makes "exactly one of 32 concurrent claims wins" true by construction.
//!
//! A caller that finds the connection free runs the batch on its own thread: on this kind of machine a thread
//! wake-up costs tens of microseconds, more than the operation itself, so an uncontended call makes none. A
//! caller that finds it busy waits for its answer; the thread committing at that moment hands anything queued
//! behind it to the writer thread, so nothing queued is left without a thread to run it. An async caller on a
//! single-threaded executor queues first and leads on its next poll instead (`pending.rs`), so that the other
//! tasks of its thread can join the batch. An async caller on a runtime with several workers leads only while
//! each batch holds one operation: under load its worker has other connections to serve, so the writer thread
//! runs the batches ([`Writer::submit_from_worker`]).
//!
//! A backend whose connection must not be used from a caller's thread (PostgreSQL's blocking client, which would
//! start a runtime inside the caller's async one) opens the writer with `callers_lead = false`: callers only queue
//! and wake the writer thread, which runs every batch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};

use super::job::{Job, Runner};

/// Most operations one transaction takes.
const MAX_BATCH: usize = 512;

/// Operations waiting for a batch.
#[derive(Default)]
struct Queue {
    jobs: Vec<Box<dyn Job>>,
    closed: bool,
    /// The writer thread is asleep and must be woken for queued work.
    writer_idle: bool,
}

/// Where a queued job stands.
#[derive(Debug, PartialEq, Eq)]
enum Enqueued {
    /// The writer thread is awake or a batch is running: it will be taken.
    Queued,
    /// The writer thread sleeps and must be woken if nobody else runs the batch.
    WriterAsleep,
    /// The authority was closed and its writer thread has stopped or is stopping.
    WriterGone,
}

/// The queue and the connection, shared by every handle, the callers leading batches and the writer thread.
pub(crate) struct Writer {
    queue: Mutex<Queue>,
    wake: Condvar,
    state: Mutex<Box<dyn Runner>>,
    /// Whether a caller's thread may run a batch. Not for a backend whose connection must stay on the writer
    /// thread (PostgreSQL's blocking client cannot run inside the async runtime a caller may be on).
    callers_lead: bool,
    /// How many operations the last batch took: one means nobody queued behind a lone caller.
    last_batch_size: AtomicUsize,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    pub(crate) fn new(state: Box<dyn Runner>, callers_lead: bool) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            state: Mutex::new(state),
            callers_lead,
            last_batch_size: AtomicUsize::new(0),
        })
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // The queue holds no invariant a panic could break half-way.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `job`; answers whether the writer thread must be woken for it, or is gone.
    fn enqueue(&self, job: Box<dyn Job>) -> Enqueued {
        let mut queue = self.queue();
        queue.jobs.push(job);
        if queue.closed {
            Enqueued::WriterGone
        } else if queue.writer_idle {
            Enqueued::WriterAsleep
        } else {
            Enqueued::Queued
        }
    }

    fn lock_state(&self) -> MutexGuard<'_, Box<dyn Runner>> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => self.recovered(poisoned.into_inner()),
        }
    }

    fn recovered<'a>(
        &self,
        mut state: MutexGuard<'a, Box<dyn Runner>>,
    ) -> MutexGuard<'a, Box<dyn Runner>> {
        self.state.clear_poison();
        state.recover();
        state
    }

    /// Queues `job` and, if the connection is free, runs the batch on this thread.
    pub(crate) fn submit_and_lead(&self, job: Box<dyn Job>) {
        if !self.callers_lead {
            self.submit_in_background(job);
        } else if self.submit_to_lead_later(job) {
            self.lead_if_free();
        }
    }

    /// Queues `job` from a task on a multi-threaded async runtime. Its thread leads the batch only while batches
    /// hold one operation each; once callers queue behind each other, the writer thread runs the batches.
    ///
    /// A batch led here holds a runtime worker for its statements and its commit's fsync, and on a server that
    /// worker serves every other connection meanwhile. Leading saves one thread wake-up, which matters to a lone
    /// caller only. Under load it also split the commits: the first request after a large batch found the
    /// connection free and committed alone (27% of the commits at 64 connections, each with its own fsync).
    /// A blocking caller ([`submit_and_lead`](Self::submit_and_lead)) has nothing else for its thread to do.
    pub(crate) fn submit_from_worker(&self, job: Box<dyn Job>) {
        if !self.callers_lead || self.last_batch_size.load(Ordering::Relaxed) <= 1 {
            self.submit_and_lead(job);
        } else if self.submit_to_lead_later(job) {
            // Whoever holds the connection hands the queue on when done; a sleeping writer thread is woken.
            self.nudge();
        }
    }

    /// Queues `job` for a batch the caller will try to lead later ([`lead_if_free`](Self::lead_if_free)), so
    /// that operations queued in between join it. Answers `false` when the writer is gone and the batch has
    /// already run on this thread.
    pub(crate) fn submit_to_lead_later(&self, job: Box<dyn Job>) -> bool {
        match self.enqueue(job) {
            Enqueued::WriterGone => {
                // Every handle is gone, so is the writer thread: this caller runs its own batch.
                self.lead_here();
                false
            }
            Enqueued::WriterAsleep if !self.callers_lead => {
                self.wake.notify_one();
                true
            }
            _ => true,
        }
    }

    /// Runs a batch of what is queued if the connection is free; if not, whoever holds it hands the queue on.
    pub(crate) fn lead_if_free(&self) {
        if !self.callers_lead {
            return self.nudge();
        }
        let state = match self.state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(poisoned)) => self.recovered(poisoned.into_inner()),
            // Whoever holds the connection hands what is queued on when it is done.
            Err(TryLockError::WouldBlock) => return,
        };
        self.lead(state);
    }

    /// Wakes the writer thread if something is queued and nobody is running a batch for it (a caller that
    /// queued to lead later gave up before leading).
    pub(crate) fn nudge(&self) {
        let queue = self.queue();
        if !queue.jobs.is_empty() && queue.writer_idle {
            drop(queue);
            self.wake.notify_one();
        }
    }

    /// Queues `job` for the writer thread (nobody is waiting for the answer on this thread).
    pub(crate) fn submit_in_background(&self, job: Box<dyn Job>) {
        match self.enqueue(job) {
            Enqueued::WriterAsleep => self.wake.notify_one(),
            Enqueued::WriterGone => self.lead_here(),
            Enqueued::Queued => {}
        }
    }

    /// Runs a batch for a caller after the writer thread stopped: on this thread, or on a thread of its own
    /// when callers may not run batches.
    fn lead_here(&self) {
        if self.callers_lead {
            self.lead(self.lock_state());
        } else {
            std::thread::scope(|scope| {
                // A panic in the batch is the batch's: its callers are told `Closed` when their senders drop.
                let _ = scope
                    .spawn(|| {
                        self.lead(self.lock_state());
                        self.lock_state().close();
                    })
                    .join();
            });
        }
    }

    fn take_jobs(&self) -> Vec<Box<dyn Job>> {
        let mut queue = self.queue();
        let take = queue.jobs.len().min(MAX_BATCH);
        let rest = queue.jobs.split_off(take);
        std::mem::replace(&mut queue.jobs, rest)
    }

    /// Runs one batch of what is queued, then makes sure anything queued meanwhile has a thread to run it.
    fn lead(&self, mut state: MutexGuard<'_, Box<dyn Runner>>) {
        let jobs = self.take_jobs();
        // A hint for callers choosing whether to lead (`submit_from_worker`); either choice runs the job.
        self.last_batch_size.store(jobs.len(), Ordering::Relaxed);
        if !jobs.is_empty() {
            state.run_batch(jobs);
        }
        drop(state);
        self.nudge();
    }

    /// Stops the writer thread once it has run what is queued. Calls still waited for afterwards (their
    /// `Pending` outlived every handle) run on the waiting thread.
    pub(crate) fn close(&self) {
        self.queue().closed = true;
        self.wake.notify_one();
    }

    /// The writer thread: runs batches nobody else is running, until closed and drained.
    pub(crate) fn run(&self) {
        loop {
            {
                let mut queue = self.queue();
                while queue.jobs.is_empty() && !queue.closed {
                    queue.writer_idle = true;
                    queue = self
                        .wake
                        .wait(queue)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    queue.writer_idle = false;
                }
                if queue.jobs.is_empty() && queue.closed {
                    drop(queue);
                    self.lock_state().close();
                    return;
                }
            }
            let state = self.lock_state();
            self.lead(state);
        }
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;

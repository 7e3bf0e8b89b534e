//! The authority's writers: one per backend connection that writes, each with its thread, each owning a share of
//! the tenants.
//!
//! Every operation reads and writes one tenant's state, so tenants need not share a connection. SQLite has one
//! writer (its database has one). A PostgreSQL instance may have several: one connection commits one
//! transaction at a time, so one writer commits a batch's tenants one after another and an instance serving many
//! tenants is no faster than one serving one (BENCHMARKS.md). Each tenant stays on one writer, so its operations
//! still run in the order they were queued; across writers and across instances its head row orders them.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::job::Runner;
use super::writer::Writer;
use crate::error::{AuthorityError, Result};

/// The writers and their threads.
#[derive(Debug)]
pub(crate) struct Writers {
    shards: Box<[Arc<Writer>]>,
    threads: Vec<JoinHandle<()>>,
}

impl Writers {
    /// Starts a writer thread for each runner (at least one).
    pub(crate) fn start(runners: Vec<Box<dyn Runner>>, callers_lead: bool) -> Result<Self> {
        if runners.is_empty() {
            return Err(AuthorityError::CommitFailed(
                "an authority needs at least one writer".into(),
            ));
        }
        let shards: Box<[Arc<Writer>]> = runners
            .into_iter()
            .map(|runner| Writer::new(runner, callers_lead))
            .collect();
        let mut writers = Self {
            shards,
            threads: Vec::new(),
        };
        for (index, writer) in writers.shards.iter().enumerate() {
            let writer = writer.clone();
            let thread = std::thread::Builder::new()
                .name(format!("haltstate-writer-{index}"))
                .spawn(move || writer.run());
            match thread {
                Ok(thread) => writers.threads.push(thread),
                // Dropping `writers` stops and joins the threads already started.
                Err(e) => {
                    return Err(AuthorityError::CommitFailed(format!(
                        "cannot start a writer thread: {e}"
                    )));
                }
            }
        }
        Ok(writers)
    }

    /// The writer that owns `tenant`: always the same one for the same tenant.
    pub(crate) fn for_tenant(&self, tenant: &str) -> &Arc<Writer> {
        let index = if self.shards.len() == 1 {
            0
        } else {
            // SipHash with fixed keys: stable for the process's life, which is all that matters (a tenant moving
            // to another writer between two of its operations could reorder them).
            let mut hasher = DefaultHasher::new();
            tenant.hash(&mut hasher);
            (hasher.finish() % self.shards.len() as u64) as usize
        };
        &self.shards[index]
    }

    /// Stops every writer thread once it has run what is queued, and waits for them: what was queued is then
    /// durable. Calls still waited for afterwards (their `Pending` outlived every handle) run on the waiting thread.
    pub(crate) fn close(&mut self) {
        for writer in &self.shards {
            writer.close();
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        self.close();
    }
}

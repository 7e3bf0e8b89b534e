//! Storage: the seam every backend implements ([`tx::Tx`], [`tx::Reads`]), the group-commit writer that runs
//! batches on a backend's connection, and the answer a caller waits for ([`pending::Pending`]).

pub(crate) mod approvers;
pub(crate) mod chain;
pub(crate) mod decode;
pub(crate) mod job;
mod kill_cache;
pub(crate) mod pending;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
mod row;
pub(crate) mod sql;
pub(crate) mod sqlite;
pub(crate) mod tree;
pub(crate) mod tx;
pub(crate) mod usage;
pub(crate) mod usage_batch;
pub(crate) mod windows;
pub(crate) mod writer;
pub(crate) mod writers;

/// How hard a commit works to survive a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync at every commit (`synchronous = FULL`): an acknowledged record survives power loss.
    #[default]
    Full,
    /// fsync at checkpoints only (`synchronous = NORMAL`): survives a process crash, may lose the last
    /// commits on power loss.
    Normal,
}

//! The checkpoint file: signed checkpoints outside the database, one JSON line each, appended and synced. Whoever
//! can rewrite the database still cannot rewrite what this file (or a copy of it elsewhere) already holds.

use std::io::Write;
use std::path::Path;

use haltstate_types::proof::SignedCheckpoint;

/// Why the checkpoint file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointFileError {
    /// The file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not a signed checkpoint.
    #[error("{path}:{line}: not a signed checkpoint: {why}")]
    Malformed {
        /// The file.
        path: String,
        /// The 1-based line.
        line: usize,
        /// Why.
        why: String,
    },
}

/// Appends `checkpoints` to the file at `path` (created readable by its owner only) and syncs it.
pub fn append(path: &Path, checkpoints: &[SignedCheckpoint]) -> Result<(), CheckpointFileError> {
    let io = |source| CheckpointFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    let mut lines = String::new();
    for checkpoint in checkpoints {
        let line = serde_json::to_string(checkpoint)
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        lines.push_str(&line);
        lines.push('\n');
    }
    file.write_all(lines.as_bytes()).map_err(io)?;
    file.sync_data().map_err(io)
}

/// Every checkpoint in the file at `path`, in file order.
pub fn read(path: &Path) -> Result<Vec<SignedCheckpoint>, CheckpointFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CheckpointFileError::Io {
        path: shown.clone(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|e| CheckpointFileError::Malformed {
                path: shown.clone(),
                line: index + 1,
                why: e.to_string(),
            })
        })
        .collect()
}

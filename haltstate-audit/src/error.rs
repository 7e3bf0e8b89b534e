//! What can stop an audit: the workspace cannot be read, a file does not parse, the configuration is wrong.

use std::path::PathBuf;

/// Why an audit could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// `cargo metadata` failed on the path (no `Cargo.toml`, a broken manifest, no cargo).
    #[error("cannot read the workspace at {path}: {message}")]
    Workspace {
        /// The path audited.
        path: PathBuf,
        /// What cargo said.
        message: String,
    },
    /// A source file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A source file is not Rust `syn` can parse.
    #[error("{path}:{line}:{column}: does not parse: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where.
        line: usize,
        /// Where.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// `haltstate-audit.toml` is not what the audit reads.
    #[error("{path}: {message}")]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong, with its line when known.
        message: String,
    },
}

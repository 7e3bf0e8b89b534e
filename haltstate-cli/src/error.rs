//! What can go wrong in a command: one error type for every command but `serve`.

use haltstate_authority::AuthorityError;
use haltstate_types::RequestError;

use crate::remote::RemoteError;

/// What can go wrong in a CLI command.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The authority refused or failed.
    #[error(transparent)]
    Authority(#[from] AuthorityError),
    /// A name or agent set on the command line is not valid.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The server refused or could not be reached.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The command line is incomplete.
    #[error("{0}")]
    Usage(String),
    /// The MCP proxy could not start, or stopped.
    #[error(transparent)]
    Proxy(#[from] haltstate_mcp::ProxyError),
    /// The client of the authority could not be made.
    #[error(transparent)]
    Client(#[from] haltstate::GuardError),
    /// Stdout could not be written (its reader leaving is not an error: `output.rs`).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

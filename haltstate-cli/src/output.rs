//! What a command prints on stdout, line by line.
//!
//! `println!` panics when stdout is a pipe whose reader has gone (`haltstate ledger verify | head -1`): Rust
//! ignores SIGPIPE, so the write fails and the macro panics with a backtrace. A reader that stops reading has
//! what it wanted, so a line written after it left is dropped and the command carries on to its own exit code
//! (a `policy test` whose cases fail still exits 1). Any other failure to write (a full disk under a redirect)
//! is an error.

use std::io::Write;

/// Writes one line to stdout; a closed pipe drops it.
pub(crate) fn line(line: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    dropped_if_closed(writeln!(std::io::stdout().lock(), "{line}"))
}

/// Writes `text` to stdout as it is; a closed pipe drops it.
pub(crate) fn text(text: &str) -> std::io::Result<()> {
    dropped_if_closed(std::io::stdout().lock().write_all(text.as_bytes()))
}

fn dropped_if_closed(written: std::io::Result<()>) -> std::io::Result<()> {
    match written {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// `println!` that drops its line when stdout's reader has gone and hands any other write error to `?`.
macro_rules! out {
    ($($arg:tt)*) => {
        crate::output::line(format_args!($($arg)*))?
    };
}
pub(crate) use out;

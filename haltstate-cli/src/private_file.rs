//! Files the CLI writes that hold keys or evidence: new (never overwriting), readable by their owner only, synced.

use std::io::Write;
use std::path::Path;

use crate::error::CliError;

/// Writes `contents` to the new file `path`, mode 0600; an existing file is refused.
pub(crate) fn create(path: &Path, contents: &[u8]) -> Result<(), CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| CliError::Usage(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::Usage(format!("cannot write {}: {e}", path.display())))
}

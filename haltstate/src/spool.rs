//! The fail-open spool: evidence of actions that ran without the authority's decision, kept on disk until the
//! authority has it.
//!
//! One file per evidence, written to a temporary name, synced and renamed, so a crash leaves either a whole
//! record or none. A background task delivers the files when the authority answers again and deletes each only
//! after the authority acknowledged it; the authority records each evidence id once, so a file delivered twice
//! (a crash between acknowledgement and deletion) is still one record. Nothing lost, nothing recorded twice,
//! across process restarts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use haltstate_types::UnverifiedOutcome;
use sha2::{Digest, Sha256};

use crate::error::GuardError;

/// The spool directory.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    pub(crate) wake: tokio::sync::Notify,
}

/// How often the deliverer looks at the spool when nothing woke it.
pub(crate) const DELIVERY_INTERVAL: Duration = Duration::from_secs(1);

fn io(what: &str, path: &Path, error: std::io::Error) -> GuardError {
    GuardError::Spool(format!("{what} {}: {error}", path.display()))
}

impl Spool {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            wake: tokio::sync::Notify::new(),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps `evidence` durably; returns once it is on disk.
    pub(crate) fn write(&self, evidence: &UnverifiedOutcome) -> Result<(), GuardError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io("cannot create", &self.dir, e))?;
        let bytes = serde_json::to_vec(evidence).map_err(|e| GuardError::Spool(e.to_string()))?;
        let temporary = self.dir.join(format!(".{}.tmp", evidence.evidence_id));
        let target = self.dir.join(format!("{}.json", evidence.evidence_id));
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&temporary)
                .map_err(|e| io("cannot create", &temporary, e))?;
            file.write_all(&bytes)
                .map_err(|e| io("cannot write", &temporary, e))?;
            file.sync_all()
                .map_err(|e| io("cannot sync", &temporary, e))?;
        }
        std::fs::rename(&temporary, &target).map_err(|e| io("cannot rename", &target, e))?;
        // Make the rename itself durable.
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        self.wake.notify_one();
        Ok(())
    }

    /// The spooled files, oldest name first.
    pub(crate) fn pending(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        files.sort();
        files
    }

    /// Reads one spooled file; a file that does not parse is set aside (renamed `.bad`) and reported.
    pub(crate) fn read(&self, path: &Path) -> Option<UnverifiedOutcome> {
        let parsed = std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        if parsed.is_none() {
            tracing::error!(path = %path.display(), "spooled evidence is unreadable; set aside as .bad");
            let _ = std::fs::rename(path, path.with_extension("bad"));
        }
        parsed
    }

    /// Removes a delivered file.
    pub(crate) fn delivered(&self, path: &Path) {
        if let Err(error) = std::fs::remove_file(path) {
            // It will be delivered again and deduplicated by the authority.
            tracing::warn!(path = %path.display(), %error, "cannot remove delivered evidence");
        }
    }

    /// Sets aside a file the authority refused as malformed, so it is not retried forever.
    pub(crate) fn refused(&self, path: &Path, why: &GuardError) {
        tracing::error!(path = %path.display(), error = %why, "the authority refused spooled evidence; set aside as .rejected");
        let _ = std::fs::rename(path, path.with_extension("rejected"));
    }
}

/// The default spool directory: `$HALTSTATE_SPOOL_DIR`, else `<temp dir>/haltstate-spool/<authority>/<tenant>`,
/// where `<authority>` is a digest of the base URL: two apps of the same tenant name on different authorities
/// (staging and production, say) never deliver each other's evidence.
pub(crate) fn default_dir(base_url: &str, tenant: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("HALTSTATE_SPOOL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let safe: String = tenant
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let authority = &hex::encode(Sha256::digest(base_url.as_bytes()))[..16];
    std::env::temp_dir()
        .join("haltstate-spool")
        .join(authority)
        .join(safe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_directory_is_scoped_by_authority_and_tenant() {
        let staging = default_dir("https://staging.example", "acme");
        let production = default_dir("https://haltstate.example", "acme");
        assert_ne!(staging, production);
        assert_ne!(
            default_dir("https://haltstate.example", "globex"),
            production
        );
    }
}

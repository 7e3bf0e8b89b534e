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

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::GuardError;

/// One spooled evidence, in the shape the authority's `action/guard/unverified` endpoint takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SpooledEvidence {
    pub(crate) evidence_id: String,
    pub(crate) agent_id: String,
    pub(crate) action: String,
    pub(crate) idempotency_key: String,
    pub(crate) outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) body_latency: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) resource_refs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) redacted_fields: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) occurred_at: OffsetDateTime,
}

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
    pub(crate) fn write(&self, evidence: &SpooledEvidence) -> Result<(), GuardError> {
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
    pub(crate) fn read(&self, path: &Path) -> Option<SpooledEvidence> {
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

/// The default spool directory: `$HALTSTATE_SPOOL_DIR`, else `<temp dir>/haltstate-spool/<tenant>`.
pub(crate) fn default_dir(tenant: &str) -> PathBuf {
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
    std::env::temp_dir().join("haltstate-spool").join(safe)
}

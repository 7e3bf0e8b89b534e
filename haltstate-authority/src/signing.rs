//! The authority's Ed25519 signing key: made from the OS's randomness, kept in a file only its owner can read,
//! shown as its public half and id, never in `Debug` output or logs.

use std::io::Write;
use std::path::Path;

use ed25519_dalek::Signer;
use rand::RngCore;

use haltstate_types::proof::{
    Checkpoint, ProofError, SignedCheckpoint, VerifyingKey, key_id, public_key_text,
};

/// Why a signing key could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    /// The file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file already exists (a key is never overwritten).
    #[error("{0} exists: a signing key is never overwritten")]
    Exists(String),
    /// Others may read the file.
    #[error("{0} is readable by others (mode {1:o}); make it 0600")]
    Exposed(String, u32),
    /// The file does not hold a key.
    #[error("{0} does not hold a HaltState signing key")]
    Malformed(String),
}

const HEADER: &str = "# HaltState Ed25519 signing key. Keep it secret; its public half verifies checkpoints and proof packs.";

/// The signing key.
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new key from the OS's randomness.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        Self {
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        }
    }

    /// A new key written to `path` (created readable by its owner only; an existing file is refused).
    pub fn create_file(path: &Path) -> Result<Self, SigningKeyError> {
        let shown = path.display().to_string();
        let io = |source| SigningKeyError::Io {
            path: shown.clone(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                SigningKeyError::Exists(shown.clone())
            } else {
                io(e)
            }
        })?;
        let key = Self::generate();
        writeln!(file, "{HEADER}\n{}", hex::encode(key.key.to_bytes())).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(key)
    }

    /// The key in `path`; refused when others may read the file.
    pub fn from_file(path: &Path) -> Result<Self, SigningKeyError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SigningKeyError::Io {
            path: shown.clone(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|source| SigningKeyError::Io {
                    path: shown.clone(),
                    source,
                })?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(SigningKeyError::Exposed(shown, mode & 0o777));
            }
        }
        let seed: [u8; 32] = text
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.starts_with('#'))
            .and_then(|line| hex::decode(line).ok())
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(SigningKeyError::Malformed(shown))?;
        Ok(Self {
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// The public half, which verifies what this key signs.
    pub fn public(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public half as text: `ed25519:` and 64 hex digits.
    pub fn public_text(&self) -> String {
        public_key_text(&self.public())
    }

    /// The key's id (first 16 hex digits of the SHA-256 of its public half).
    pub fn key_id(&self) -> String {
        key_id(&self.public())
    }

    /// An Ed25519 signature of `message` (for the signed notes of tree heads, `tree_checkpoint.rs`).
    pub(crate) fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// Signs `checkpoint` (whose `key_id` is set to this key's).
    ///
    /// # Errors
    /// When the checkpoint cannot be serialized to its signed form (never for a well-formed one).
    pub fn sign(&self, mut checkpoint: Checkpoint) -> Result<SignedCheckpoint, ProofError> {
        checkpoint.key_id = self.key_id();
        let signature = self.key.sign(&checkpoint.signed_bytes()?);
        Ok(SignedCheckpoint {
            checkpoint,
            signature: hex::encode(signature.to_bytes()),
            tree: None,
        })
    }
}

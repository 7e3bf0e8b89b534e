//! Evidence that holds without the database: signed checkpoints and proof packs, and their verifier.
//!
//! A proof pack is one JSON document: the records asked for, with the fields auditors read; the chain from the
//! first of them to a signed checkpoint (every record's canonical bytes and hashes); and that checkpoint with its
//! Ed25519 signature. [`verify`] needs the pack and the authority's public key, nothing else: no database, no
//! network. Change any field of any record, any link, the checkpoint or its signature, and it fails.
//!
//! ```
//! use haltstate_types::proof::{ProofError, ProofPack, parse_public_key, verify};
//!
//! let key = parse_public_key("ed25519:3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29")?;
//! let pack: Result<ProofPack, _> = serde_json::from_str("{}");
//! assert!(pack.is_err()); // a pack is read from its file, then `verify(&pack, &key)`
//! # Ok::<(), ProofError>(())
//! ```

mod checkpoint;
mod pack;

pub use checkpoint::{Checkpoint, SignedCheckpoint, key_id, parse_public_key, public_key_text};
pub use ed25519_dalek::VerifyingKey;
pub use pack::{ChainLink, PACK_FORMAT, PackSummary, ProofPack, ProofRecord, proof_record, verify};

/// Why a checkpoint or a proof pack does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The public key given is not one.
    #[error("not an Ed25519 public key: {0}")]
    BadKey(String),
    /// Another key signed it.
    #[error("signed by key {signed_by}, not by the key given ({given})")]
    WrongKey {
        /// The signing key's id.
        signed_by: String,
        /// The given key's id.
        given: String,
    },
    /// The signature does not verify.
    #[error("the checkpoint's signature does not verify")]
    BadSignature,
    /// The pack is not in the expected form.
    #[error("not a proof pack: {0}")]
    Format(String),
    /// A link of the chain does not hold.
    #[error("chain broken at record {seq}: {why}")]
    ChainBroken {
        /// The record.
        seq: u64,
        /// What does not hold.
        why: String,
    },
    /// A record the pack lists is not what the chain holds.
    #[error("record {seq}: {why}")]
    RecordMismatch {
        /// The record.
        seq: u64,
        /// What differs.
        why: String,
    },
}

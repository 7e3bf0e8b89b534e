//! Evidence that holds without the database: signed tree heads, proof packs, and their verifiers.
//!
//! Each tenant's records are the leaves of a Merkle tree (RFC 9162 hashing). The authority signs the tree's head
//! (size and root) as a C2SP checkpoint, which witnesses may cosign after checking that it extends the last one
//! they saw. A proof pack is one JSON document: the records asked for, each with its canonical bytes and its
//! inclusion proof, and the signed head. [`verify`] needs the pack and the authority's public key, nothing else:
//! no database, no network. Change any field of any record, any proof hash, the head or its signature, and it
//! fails.
//!
//! ```
//! use haltstate_types::proof::{ProofError, ProofPack, parse_public_key, verify};
//!
//! let key = parse_public_key("ed25519:3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29")?;
//! let pack: Result<ProofPack, _> = serde_json::from_str("{}");
//! assert!(pack.is_err()); // a pack is read from its file, then `verify(&pack, &key)`
//! # Ok::<(), ProofError>(())
//! ```
//!
//! The first format (`haltstate.proof-pack/1`, [`ChainPack`]) proved records with the whole chain between them
//! and a JSON checkpoint; [`verify_chain_pack`] still checks such packs.

mod chain_pack;
mod checkpoint;
mod merkle;
mod note;
mod record;
mod tree_pack;
mod witness;

pub use chain_pack::{
    CHAIN_PACK_FORMAT, ChainLink, ChainPack, ChainPackSummary, verify_chain_pack,
};
pub use checkpoint::{Checkpoint, SignedCheckpoint, key_id, parse_public_key, public_key_text};
pub use ed25519_dalek::VerifyingKey;
pub use merkle::{TreeHead, verify_consistency, verify_inclusion};
pub use note::{
    TreeCheckpointError, VerifiedTreeHead, checkpoint_text, log_key_id, log_origin, note_origin,
    origin_names_tenant, origin_tenant, verifier_key, verify_cosigned_tree_head, verify_tree_head,
};
pub use record::{ProofRecord, proof_record};
pub use tree_pack::{
    IncludedRecord, PACK_FORMAT, PackSummary, ProofPack, verify, verify_with_witnesses,
};
pub use witness::{Witness, add_signatures, cosignature_line};

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
    /// The record is not in the tree the head names (or the proof or the record was changed).
    #[error("record {} is not in the tree of {size} records this head names", index + 1)]
    NotIncluded {
        /// The leaf (the record's sequence number less one).
        index: u64,
        /// The tree's size.
        size: u64,
    },
    /// The later tree does not extend the earlier one (or the proof was changed).
    #[error("the tree of {new} records does not extend the tree of {old}")]
    NotConsistent {
        /// The earlier size.
        old: u64,
        /// The later size.
        new: u64,
    },
    /// A signed tree head (a C2SP checkpoint) that does not hold.
    #[error(transparent)]
    TreeHead(#[from] TreeCheckpointError),
}

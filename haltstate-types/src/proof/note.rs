//! A tenant's tree head as a C2SP checkpoint (<https://c2sp.org/tlog-checkpoint>): the origin line, the tree size
//! and the base64 root, signed as a C2SP signed note (<https://c2sp.org/signed-note>) with the authority's Ed25519
//! key under the origin as the key's name, and cosigned by witnesses (<https://c2sp.org/tlog-cosignature>). The
//! formats' own crates write and read them (`tlog_tiles`'s checkpoint, `signed_note`), so a standard witness or
//! monitor reads what the authority signs.

use ed25519_dalek::VerifyingKey;
use signed_note::{Note, StandardVerifier, Verifier, VerifierList};

use super::TreeHead;
use super::witness::Witness;

/// Why a signed tree head does not hold (or could not be written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeCheckpointError {
    /// The origin is not a key name (empty, or holding a space or a `+`).
    #[error("{0:?} cannot name a log: it must be non-empty, without spaces or '+'")]
    Origin(String),
    /// Not a signed note, or its text not a checkpoint.
    #[error("not a checkpoint: {0}")]
    Format(String),
    /// No valid signature of the expected key.
    #[error("the checkpoint is not signed by this key: {0}")]
    Signature(String),
    /// Signed, but for another log.
    #[error("the checkpoint is of {found:?}, not {expected:?}")]
    OtherLog {
        /// The origin asked for.
        expected: String,
        /// The origin it names.
        found: String,
    },
    /// A witness the verifier requires did not cosign it.
    #[error("witness {0} did not cosign the checkpoint")]
    NotCosigned(String),
}

/// Bytes of a tenant name kept as they are in its log's origin; the rest is percent-encoded, so that every
/// tenant's origin is a valid key name (no spaces, no `+`) and no two tenants share one.
const ORIGIN_SAFE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The origin (log name) of `tenant`'s log under `prefix`: `prefix/tenant`, the tenant percent-encoded.
///
/// ```
/// use haltstate_types::proof::log_origin;
///
/// assert_eq!(log_origin("haltstate", "acme"), "haltstate/acme");
/// assert_eq!(log_origin("ledger.example.com", "acme corp+1"), "ledger.example.com/acme%20corp%2B1");
/// ```
pub fn log_origin(prefix: &str, tenant: &str) -> String {
    format!(
        "{prefix}/{}",
        percent_encoding::utf8_percent_encode(tenant, ORIGIN_SAFE)
    )
}

/// Whether `origin` names `tenant`'s log (under any prefix).
pub fn origin_names_tenant(origin: &str, tenant: &str) -> bool {
    origin
        .rsplit_once('/')
        .is_some_and(|(prefix, _)| !prefix.is_empty() && log_origin(prefix, tenant) == origin)
}

/// The tenant whose log `origin` names (the inverse of [`log_origin`]), if it names one.
pub fn origin_tenant(origin: &str) -> Option<String> {
    let (_, encoded) = origin.rsplit_once('/')?;
    let tenant = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .ok()?
        .into_owned();
    origin_names_tenant(origin, &tenant).then_some(tenant)
}

/// The C2SP encoding of an Ed25519 log key: its algorithm byte, then the key.
pub(crate) fn encoded(key: &VerifyingKey) -> Vec<u8> {
    [&[1u8][..], key.as_bytes()].concat()
}

/// The verifier key a witness or monitor is configured with for the log `origin`:
/// `origin+keyid+base64(0x01 || key)`.
pub fn verifier_key(origin: &str, key: &VerifyingKey) -> String {
    signed_note::new_ed25519_verifier_key(origin, key)
}

/// The C2SP key id of the log key `key` under the name `origin`.
pub fn log_key_id(origin: &str, key: &VerifyingKey) -> u32 {
    signed_note::key_id(origin, &encoded(key))
}

/// The checkpoint's text (unsigned): the origin line, the size, the base64 root.
///
/// # Errors
/// [`TreeCheckpointError::Origin`] when `origin` cannot name a log.
pub fn checkpoint_text(origin: &str, head: &TreeHead) -> Result<String, TreeCheckpointError> {
    if !signed_note::is_key_name_valid(origin) {
        return Err(TreeCheckpointError::Origin(origin.to_owned()));
    }
    let checkpoint =
        tlog_tiles::Checkpoint::new(origin, head.size, tlog_tiles::Hash(head.root), "")
            .map_err(|e| TreeCheckpointError::Format(e.to_string()))?;
    String::from_utf8(checkpoint.to_bytes()).map_err(|e| TreeCheckpointError::Format(e.to_string()))
}

/// The tree head a signed checkpoint of the log `origin` names, once its signature by `key` verifies (other
/// signatures, such as witnesses' cosignatures, are not looked at).
///
/// # Errors
/// What does not hold: the note's form, the signature, the origin.
pub fn verify_tree_head(
    note: &str,
    origin: &str,
    key: &VerifyingKey,
) -> Result<TreeHead, TreeCheckpointError> {
    Ok(verify_cosigned_tree_head(note, origin, key, &[])?.head)
}

/// A tree head whose signatures verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTreeHead {
    /// The head.
    pub head: TreeHead,
    /// The witnesses asked for, each with the time (Unix seconds) it cosigned.
    pub cosigned: Vec<(String, u64)>,
}

/// Verifies a signed checkpoint of the log `origin`: the log's signature by `key`, and a valid cosignature from
/// every one of `witnesses` (other signatures are ignored, as C2SP verifiers do).
///
/// # Errors
/// What does not hold; [`TreeCheckpointError::NotCosigned`] names the first witness whose cosignature is missing.
pub fn verify_cosigned_tree_head(
    note: &str,
    origin: &str,
    key: &VerifyingKey,
    witnesses: &[Witness],
) -> Result<VerifiedTreeHead, TreeCheckpointError> {
    let log = StandardVerifier::new(&verifier_key(origin, key))
        .map_err(|e| TreeCheckpointError::Signature(e.to_string()))?;
    let log_id = log.key_id();
    let mut verifiers: Vec<Box<dyn Verifier>> = vec![Box::new(log)];
    verifiers.extend(
        witnesses
            .iter()
            .map(|w| Box::new(w.verifier()) as Box<dyn Verifier>),
    );
    let parsed = Note::from_bytes(note.as_bytes())
        .map_err(|e| TreeCheckpointError::Format(e.to_string()))?;
    let (verified, _) = parsed
        .verify(&VerifierList::new(verifiers))
        .map_err(|e| TreeCheckpointError::Signature(e.to_string()))?;
    // A note that only a witness signed verifies as a note; the log's own signature is what makes it a head.
    if !verified
        .iter()
        .any(|s| s.name() == origin && s.id() == log_id)
    {
        return Err(TreeCheckpointError::Signature(format!(
            "no signature of {origin}'s key"
        )));
    }
    let checkpoint = tlog_tiles::Checkpoint::from_bytes(parsed.text())
        .map_err(|e| TreeCheckpointError::Format(e.to_string()))?;
    if checkpoint.origin() != origin {
        return Err(TreeCheckpointError::OtherLog {
            expected: origin.to_owned(),
            found: checkpoint.origin().to_owned(),
        });
    }
    let mut cosigned = Vec::with_capacity(witnesses.len());
    for witness in witnesses {
        let signature = verified
            .iter()
            .find(|s| s.name() == witness.name() && s.id() == witness.key_id())
            .ok_or_else(|| TreeCheckpointError::NotCosigned(witness.name().to_owned()))?;
        cosigned.push((
            witness.name().to_owned(),
            witness.time_of(signature.signature()),
        ));
    }
    Ok(VerifiedTreeHead {
        head: TreeHead {
            size: checkpoint.size(),
            root: checkpoint.hash().0,
        },
        cosigned,
    })
}

/// The origin a signed checkpoint names (its first line), unverified: to pick the key to verify it with.
pub fn note_origin(note: &str) -> Option<&str> {
    note.split_once('\n').map(|(first, _)| first)
}

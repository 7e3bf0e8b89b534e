//! A tenant's tree head as a C2SP checkpoint (<https://c2sp.org/tlog-checkpoint>): the origin line, the tree size
//! and the base64 root, signed as a C2SP signed note (<https://c2sp.org/signed-note>) with the authority's Ed25519
//! key, under the origin as the key's name. The formats' own crates write and read them (`tlog_tiles`'s
//! checkpoint, `signed_note`), so a standard witness or monitor reads what this signs.
//!
//! ```
//! use haltstate_authority::SigningKey;
//! use haltstate_authority::merkle::TreeHead;
//! use haltstate_authority::tree_checkpoint::{sign_tree_head, verify_tree_head};
//!
//! let key = SigningKey::generate();
//! let head = TreeHead { size: 3, root: [7; 32] };
//! let note = sign_tree_head(&key, "haltstate.example/acme", &head)?;
//! assert!(note.starts_with("haltstate.example/acme\n3\nBwcH"));
//! assert_eq!(verify_tree_head(&note, "haltstate.example/acme", &key.public())?, head);
//! # Ok::<(), haltstate_authority::tree_checkpoint::TreeCheckpointError>(())
//! ```

use signed_note::{Note, Signer, StandardVerifier, VerifierList};

use crate::merkle::TreeHead;
use crate::signing::SigningKey;

/// Why a tree head could not be signed, or a signed one does not verify.
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
}

/// The C2SP encoding of an Ed25519 public key: its algorithm byte, then the key.
fn encoded(key: &ed25519_dalek::VerifyingKey) -> Vec<u8> {
    [&[1u8][..], key.as_bytes()].concat()
}

/// The verifier key a witness or monitor is configured with: `origin+keyid+base64(0x01 || key)`.
pub fn verifier_key(origin: &str, key: &ed25519_dalek::VerifyingKey) -> String {
    signed_note::new_ed25519_verifier_key(origin, key)
}

struct NoteSigner<'k> {
    origin: &'k str,
    key: &'k SigningKey,
    id: u32,
}

impl Signer for NoteSigner<'_> {
    fn name(&self) -> &str {
        self.origin
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(self.key.sign_bytes(msg).to_vec())
    }
}

/// The checkpoint's text (unsigned): the origin line, the size, the base64 root.
pub fn checkpoint_text(origin: &str, head: &TreeHead) -> Result<String, TreeCheckpointError> {
    if !signed_note::is_key_name_valid(origin) {
        return Err(TreeCheckpointError::Origin(origin.to_owned()));
    }
    let checkpoint =
        tlog_tiles::Checkpoint::new(origin, head.size, tlog_tiles::Hash(head.root), "")
            .map_err(|e| TreeCheckpointError::Format(e.to_string()))?;
    String::from_utf8(checkpoint.to_bytes()).map_err(|e| TreeCheckpointError::Format(e.to_string()))
}

/// The signed checkpoint of `head` in the log `origin` (a schema-less URL-like name, e.g. `haltstate.example/acme`).
pub fn sign_tree_head(
    key: &SigningKey,
    origin: &str,
    head: &TreeHead,
) -> Result<String, TreeCheckpointError> {
    let text = checkpoint_text(origin, head)?;
    let mut note =
        Note::new(text.as_bytes(), &[]).map_err(|e| TreeCheckpointError::Format(e.to_string()))?;
    let signer = NoteSigner {
        origin,
        key,
        id: signed_note::key_id(origin, &encoded(&key.public())),
    };
    note.add_sigs(&[&signer])
        .map_err(|e| TreeCheckpointError::Format(e.to_string()))?;
    String::from_utf8(note.to_bytes()).map_err(|e| TreeCheckpointError::Format(e.to_string()))
}

/// The tree head a signed checkpoint of the log `origin` names, once its signature by `key` verifies.
pub fn verify_tree_head(
    note: &str,
    origin: &str,
    key: &ed25519_dalek::VerifyingKey,
) -> Result<TreeHead, TreeCheckpointError> {
    let verifier = StandardVerifier::new(&verifier_key(origin, key))
        .map_err(|e| TreeCheckpointError::Signature(e.to_string()))?;
    let parsed = Note::from_bytes(note.as_bytes())
        .map_err(|e| TreeCheckpointError::Format(e.to_string()))?;
    parsed
        .verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| TreeCheckpointError::Signature(e.to_string()))?;
    let checkpoint = tlog_tiles::Checkpoint::from_bytes(parsed.text())
        .map_err(|e| TreeCheckpointError::Format(e.to_string()))?;
    if checkpoint.origin() != origin {
        return Err(TreeCheckpointError::OtherLog {
            expected: origin.to_owned(),
            found: checkpoint.origin().to_owned(),
        });
    }
    Ok(TreeHead {
        size: checkpoint.size(),
        root: checkpoint.hash().0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of Go's `sumdb/note` (golang.org/x/mod), which the C2SP signed-note format is: a note signed by
    /// the key `PeterNeumann`, read by the same verifier this module uses.
    #[test]
    fn the_reference_note_verifies_and_an_edited_one_does_not() {
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let text = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n\
                    \n\
                    — PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        let verifiers = || VerifierList::new(vec![Box::new(StandardVerifier::new(vkey).unwrap())]);
        let note = Note::from_bytes(text.as_bytes()).unwrap();
        assert!(note.verify(&verifiers()).is_ok());
        let edited = text.replace("cryptography", "cryptographi");
        assert!(
            Note::from_bytes(edited.as_bytes())
                .unwrap()
                .verify(&verifiers())
                .is_err()
        );
    }

    #[test]
    fn a_signed_tree_head_verifies_only_as_signed() {
        let key = SigningKey::generate();
        let origin = "haltstate.example/acme";
        let head = TreeHead {
            size: 20852163,
            root: [0x0a; 32],
        };
        let note = sign_tree_head(&key, origin, &head).unwrap();
        let lines: Vec<&str> = note.lines().collect();
        assert_eq!(
            lines[..3],
            [
                origin,
                "20852163",
                "CgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgo="
            ]
        );
        assert_eq!(lines[3], "");
        assert!(lines[4].starts_with(&format!("— {origin} ")), "{note}");
        assert_eq!(
            verify_tree_head(&note, origin, &key.public()).unwrap(),
            head
        );
        // Another key, another log, an edited size or root: refused.
        let other = SigningKey::generate();
        assert!(matches!(
            verify_tree_head(&note, origin, &other.public()),
            Err(TreeCheckpointError::Signature(_))
        ));
        assert!(verify_tree_head(&note, "haltstate.example/globex", &key.public()).is_err());
        let bigger = note.replacen("20852163", "20852164", 1);
        assert!(verify_tree_head(&bigger, origin, &key.public()).is_err());
        let rooted = note.replacen("CgoK", "CgoL", 1);
        assert!(verify_tree_head(&rooted, origin, &key.public()).is_err());
        assert!(matches!(
            sign_tree_head(&key, "bad origin", &head),
            Err(TreeCheckpointError::Origin(_))
        ));
        // The verifier key a witness is given names the log and the key.
        let vkey = verifier_key(origin, &key.public());
        assert!(vkey.starts_with(&format!("{origin}+")), "{vkey}");
    }
}

//! Signing a tenant's tree head as a C2SP checkpoint (<https://c2sp.org/tlog-checkpoint>): the origin line, the tree size
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

use signed_note::{Note, Signer};

pub use haltstate_types::proof::{
    TreeCheckpointError, checkpoint_text, log_key_id, verifier_key, verify_tree_head,
};

use crate::merkle::TreeHead;
use crate::signing::SigningKey;

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
        id: log_key_id(origin, &key.public()),
    };
    note.add_sigs(&[&signer])
        .map_err(|e| TreeCheckpointError::Format(e.to_string()))?;
    String::from_utf8(note.to_bytes()).map_err(|e| TreeCheckpointError::Format(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use signed_note::{StandardVerifier, VerifierList};

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

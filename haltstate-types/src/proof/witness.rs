//! Witnesses: who cosigns a log's checkpoints after checking that each extends the last one they cosigned (C2SP
//! `tlog-cosignature`, `cosignature/v1`): the signature covers `cosignature/v1\ntime <t>\n` and the checkpoint's
//! text, and carries the time.

use base64::Engine;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};

use super::TreeCheckpointError;

/// The C2SP signature type of an Ed25519 `cosignature/v1` key.
const ALG_COSIGNATURE_V1: u8 = 4;

/// A witness a verifier trusts: its name and its Ed25519 cosignature key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witness {
    name: String,
    key: VerifyingKey,
}

impl Witness {
    /// A witness from its name and key.
    ///
    /// # Errors
    /// [`TreeCheckpointError::Origin`] when `name` cannot name a key.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, TreeCheckpointError> {
        if !signed_note::is_key_name_valid(name) {
            return Err(TreeCheckpointError::Origin(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            key,
        })
    }

    /// A witness from its verifier key, `name+keyid+base64(0x04 || key)` as witnesses publish them.
    ///
    /// ```
    /// use haltstate_types::proof::Witness;
    ///
    /// let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    /// let witness = Witness::new("witness.example/w1", key)?;
    /// assert_eq!(Witness::parse(&witness.verifier_key())?, witness);
    /// assert!(Witness::parse("witness.example/w1+00000000+AQ==").is_err());
    /// # Ok::<(), haltstate_types::proof::TreeCheckpointError>(())
    /// ```
    ///
    /// # Errors
    /// [`TreeCheckpointError::Format`] when it is not one.
    pub fn parse(vkey: &str) -> Result<Self, TreeCheckpointError> {
        let bad = |why: &str| TreeCheckpointError::Format(format!("witness key {vkey:?}: {why}"));
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected name+keyid+key"));
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(key)
            .map_err(|_| bad("the key is not base64"))?;
        let [alg, key @ ..] = raw.as_slice() else {
            return Err(bad("empty key"));
        };
        if *alg != ALG_COSIGNATURE_V1 {
            return Err(bad("not a cosignature/v1 (type 0x04) key"));
        }
        let key: [u8; 32] = key.try_into().map_err(|_| bad("not an Ed25519 key"))?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| bad("not an Ed25519 key"))?;
        let witness = Self::new(name, key)?;
        if id.len() != 8 || u32::from_str_radix(id, 16).ok() != Some(witness.key_id()) {
            return Err(bad("the key id does not match the name and key"));
        }
        Ok(witness)
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The witness's key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Its C2SP key id.
    pub fn key_id(&self) -> u32 {
        signed_note::key_id(&self.name, &encoded(&self.key))
    }

    /// Its verifier key: `name+keyid+base64(0x04 || key)`.
    pub fn verifier_key(&self) -> String {
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_id(),
            base64::engine::general_purpose::STANDARD.encode(encoded(&self.key))
        )
    }

    pub(crate) fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            id: self.key_id(),
            key: self.key,
        }
    }

    /// The time (Unix seconds) a cosignature's bytes carry (0 when too short to carry one).
    pub(crate) fn time_of(&self, signature: &[u8]) -> u64 {
        signature
            .get(..8)
            .and_then(|t| t.try_into().ok())
            .map_or(0, u64::from_be_bytes)
    }
}

fn encoded(key: &VerifyingKey) -> Vec<u8> {
    [&[ALG_COSIGNATURE_V1][..], key.as_bytes()].concat()
}

fn message(text: &[u8], time: u64) -> Vec<u8> {
    [format!("cosignature/v1\ntime {time}\n").as_bytes(), text].concat()
}

pub(crate) struct CosignatureVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl signed_note::Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Some((time, signature)) = sig.split_first_chunk::<8>() else {
            return false;
        };
        let Ok(signature) = <[u8; 64]>::try_from(signature) else {
            return false;
        };
        // C2SP: the time is seconds since the epoch and below 2^63.
        let time = u64::from_be_bytes(*time);
        time < (1 << 63)
            && self
                .key
                .verify(&message(msg, time), &Signature::from_bytes(&signature))
                .is_ok()
    }
}

/// A witness's cosignature line (`— name base64(keyid || time || signature)`, newline-terminated) over the
/// checkpoint text `text` (the note without its signatures), made at `time` (Unix seconds).
pub fn cosignature_line(name: &str, key: &SigningKey, text: &str, time: u64) -> String {
    let signature = key.sign(&message(text.as_bytes(), time));
    let id = signed_note::key_id(name, &encoded(&key.verifying_key()));
    let blob = [
        &id.to_be_bytes()[..],
        &time.to_be_bytes(),
        &signature.to_bytes(),
    ]
    .concat();
    format!(
        "— {name} {}\n",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// `note` with the signature `lines` added (each a well-formed signature line; one already in the note, by name
/// and key id, is not added twice). The lines are not verified here: verifiers check what they trust.
///
/// # Errors
/// [`TreeCheckpointError::Format`] when the note or a line is malformed.
pub fn add_signatures(note: &str, lines: &str) -> Result<String, TreeCheckpointError> {
    let malformed = |e: signed_note::NoteError| TreeCheckpointError::Format(e.to_string());
    signed_note::Note::from_bytes(note.as_bytes()).map_err(malformed)?;
    let (_, existing) = note
        .rsplit_once("\n\n")
        .ok_or_else(|| TreeCheckpointError::Format("a note without signatures".into()))?;
    let mut have: Vec<(String, u32)> = Vec::new();
    for line in existing.lines() {
        let signature = signed_note::Signature::from_bytes(line.as_bytes()).map_err(malformed)?;
        have.push((signature.name().to_owned(), signature.id()));
    }
    let mut out = note.to_owned();
    for line in lines.lines().filter(|l| !l.is_empty()) {
        let signature = signed_note::Signature::from_bytes(line.as_bytes()).map_err(malformed)?;
        let named = (signature.name().to_owned(), signature.id());
        if !have.contains(&named) {
            out.push_str(&String::from_utf8_lossy(&signature.to_bytes()));
            have.push(named);
        }
    }
    signed_note::Note::from_bytes(out.as_bytes()).map_err(malformed)?;
    Ok(out)
}

//! A transparency-log witness on loopback, written to the C2SP tlog-witness protocol
//! (<https://c2sp.org/tlog-witness>) with the formats' own crates (`signed_note`, `tlog_tiles`), not the code under
//! test: `POST /add-checkpoint` with `old <size>`, the consistency proof's base64 lines, a blank line and the
//! signed checkpoint. It cosigns (C2SP `cosignature/v1`) a checkpoint of a log it trusts only when it extends the
//! last one it cosigned for that log; it answers 409 with its size when the submitter's `old` is not it, 422 when
//! the proof does not hold, 403 for a bad signature, 404 for a log it does not know, 400 for a malformed body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use ed25519_dalek::Signer as _;

use crate::background::Background;

const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::STANDARD;

/// What the witness answered one submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The log.
    pub origin: String,
    /// The `old` size submitted.
    pub old: u64,
    /// The checkpoint's size, when it parsed.
    pub size: Option<u64>,
    /// The status answered.
    pub status: u16,
}

struct Log {
    verifier: String,
    size: u64,
    root: [u8; 32],
}

struct Shared {
    name: String,
    key: ed25519_dalek::SigningKey,
    logs: HashMap<String, Log>,
    submissions: Vec<Submission>,
}

/// The witness; it stops when dropped.
pub struct Witness {
    server: Background,
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witness")
            .field("addr", &self.server.addr)
            .finish_non_exhaustive()
    }
}

impl Witness {
    /// A witness named `name` with a fixed cosigning key from `seed`, trusting the logs of `logs` (each a C2SP
    /// verifier key, `origin+keyid+base64key`), listening on a free loopback port on a thread of its own.
    pub fn start(name: &str, seed: [u8; 32], logs: &[String]) -> Self {
        let logs = logs
            .iter()
            .map(|vkey| {
                let origin = vkey.split('+').next().unwrap_or_default().to_owned();
                let log = Log {
                    verifier: vkey.clone(),
                    size: 0,
                    root: tlog_tiles::EMPTY_HASH.0,
                };
                (origin, log)
            })
            .collect();
        let shared = Arc::new(Mutex::new(Shared {
            name: name.to_owned(),
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
            logs,
            submissions: Vec::new(),
        }));
        let router = Router::new()
            .route("/add-checkpoint", post(add_checkpoint))
            .with_state(shared.clone());
        Self {
            server: Background::serve(router, "witness"),
            shared,
        }
    }

    /// Its submission prefix: `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// Its verifier key, `name+keyid+base64(0x04 || key)`, as verifiers are configured with.
    pub fn verifier_key(&self) -> String {
        let shared = self.lock();
        let encoded = encoded(&shared.key.verifying_key());
        format!(
            "{}+{:08x}+{}",
            shared.name,
            signed_note::key_id(&shared.name, &encoded),
            B64.encode(&encoded)
        )
    }

    /// Every submission so far, in arrival order.
    pub fn submissions(&self) -> Vec<Submission> {
        self.lock().submissions.clone()
    }

    /// The size of the newest checkpoint of `origin` it cosigned.
    pub fn size_of(&self, origin: &str) -> u64 {
        self.lock().logs.get(origin).map_or(0, |log| log.size)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn encoded(key: &ed25519_dalek::VerifyingKey) -> Vec<u8> {
    [&[0x04][..], key.as_bytes()].concat()
}

fn answer(status: StatusCode, body: String) -> Response {
    (status, body).into_response()
}

/// `old N`, the proof, the note; or why not.
fn parse(body: &str) -> Result<(u64, Vec<tlog_tiles::Hash>, &str), String> {
    let (head, note) = body.split_once("\n\n").ok_or("no blank line")?;
    let mut lines = head.lines();
    let old = lines
        .next()
        .and_then(|l| l.strip_prefix("old "))
        .and_then(|n| n.parse().ok())
        .ok_or("no `old` line")?;
    let mut proof = Vec::new();
    for line in lines {
        let bytes = B64.decode(line).map_err(|_| "a proof line is not base64")?;
        proof.push(tlog_tiles::Hash(
            bytes.try_into().map_err(|_| "a proof line is not a hash")?,
        ));
    }
    if proof.len() > 63 {
        return Err("too many proof lines".into());
    }
    Ok((old, proof, note))
}

async fn add_checkpoint(State(shared): State<Arc<Mutex<Shared>>>, body: Bytes) -> Response {
    let mut shared = shared.lock().unwrap_or_else(|p| p.into_inner());
    let Ok(body) = std::str::from_utf8(&body) else {
        return answer(StatusCode::BAD_REQUEST, "not UTF-8\n".into());
    };
    let (old, proof, note_text) = match parse(body) {
        Ok(parsed) => parsed,
        Err(why) => return answer(StatusCode::BAD_REQUEST, format!("{why}\n")),
    };
    let origin = note_text.lines().next().unwrap_or_default().to_owned();
    let mut record = Submission {
        origin: origin.clone(),
        old,
        size: None,
        status: 0,
    };
    let (status, text) = decide(&mut shared, &origin, old, &proof, note_text, &mut record);
    record.status = status.as_u16();
    shared.submissions.push(record);
    let mut response = answer(status, text);
    if status == StatusCode::CONFLICT {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/x.tlog.size"),
        );
    }
    response
}

fn decide(
    shared: &mut Shared,
    origin: &str,
    old: u64,
    proof: &[tlog_tiles::Hash],
    note_text: &str,
    record: &mut Submission,
) -> (StatusCode, String) {
    let Some(log) = shared.logs.get(origin) else {
        return (StatusCode::NOT_FOUND, "unknown log\n".into());
    };
    let Ok(note) = signed_note::Note::from_bytes(note_text.as_bytes()) else {
        return (StatusCode::BAD_REQUEST, "not a signed note\n".into());
    };
    let Ok(verifier) = signed_note::StandardVerifier::new(&log.verifier) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "bad log key\n".into());
    };
    if note
        .verify(&signed_note::VerifierList::new(vec![Box::new(verifier)]))
        .is_err()
    {
        return (StatusCode::FORBIDDEN, "not signed by the log\n".into());
    }
    let Ok(checkpoint) = tlog_tiles::Checkpoint::from_bytes(note.text()) else {
        return (StatusCode::BAD_REQUEST, "not a checkpoint\n".into());
    };
    let (size, root) = (checkpoint.size(), checkpoint.hash());
    record.size = Some(size);
    if checkpoint.origin() != origin {
        return (StatusCode::BAD_REQUEST, "origin mismatch\n".into());
    }
    if old > size {
        return (
            StatusCode::BAD_REQUEST,
            "old is larger than the checkpoint\n".into(),
        );
    }
    if old != log.size {
        return (StatusCode::CONFLICT, format!("{}\n", log.size));
    }
    let consistent = if old == size {
        proof.is_empty() && root.0 == log.root
    } else if old == 0 {
        proof.is_empty()
    } else {
        tlog_tiles::check_tree(
            &proof.to_vec(),
            size,
            *root,
            old,
            tlog_tiles::Hash(log.root),
        )
        .is_ok()
    };
    if !consistent {
        return (StatusCode::UNPROCESSABLE_ENTITY, "not consistent\n".into());
    }
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs());
    let message = [
        format!("cosignature/v1\ntime {time}\n").as_bytes(),
        note.text(),
    ]
    .concat();
    let signature = shared.key.sign(&message);
    let id = signed_note::key_id(&shared.name, &encoded(&shared.key.verifying_key()));
    let blob = [
        &id.to_be_bytes()[..],
        &time.to_be_bytes(),
        &signature.to_bytes(),
    ]
    .concat();
    let line = format!("— {} {}\n", shared.name, B64.encode(blob));
    if let Some(log) = shared.logs.get_mut(origin) {
        log.size = size;
        log.root = root.0;
    }
    (StatusCode::OK, line)
}

//! Signing the logs while serving: every interval (and once more at shutdown) each tenant's new chain head and
//! tree head are signed, stored, appended to the checkpoint file and, when configured, submitted to witnesses by
//! the C2SP tlog-witness protocol (<https://c2sp.org/tlog-witness>); their cosignatures are stored with the head
//! and the cosigned checkpoint is appended to the file again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use tokio_util::sync::CancellationToken;

use haltstate_authority::{Authority, SigningKey, checkpoint_file};
use haltstate_types::proof::SignedCheckpoint;

/// Where checkpoints go besides the database.
#[derive(Debug)]
pub(crate) struct Sinks {
    pub(crate) file: PathBuf,
    /// The witnesses' submission prefixes.
    pub(crate) witnesses: Vec<String>,
    /// Whether a witness may be on a loopback, link-local or private address.
    pub(crate) allow_private: bool,
}

/// The most a witness's answer may hold: cosignature lines are about 150 bytes each.
const MAX_ANSWER: usize = 16 * 1024;

/// The most cosignature lines kept from one witness's answer (a witness signs with one key, or a few while it
/// rotates them): a hostile one cannot crowd the note's signatures.
const MAX_LINES: usize = 4;

pub(crate) async fn run(
    authority: Authority,
    key: SigningKey,
    sinks: Sinks,
    every: Duration,
    stop: CancellationToken,
) {
    let key = std::sync::Arc::new(key);
    // Never following a redirect, and (unless allowed) never posting to a non-public address.
    let client = match haltstate_server::outbound::client(
        sinks.allow_private,
        Duration::from_secs(10),
    ) {
        Ok(client) => Some(client),
        Err(error) => {
            tracing::error!(%error, "no HTTP client for the witnesses; checkpoints go to the file only");
            None
        }
    };
    let mut witnesses = Witnesses {
        urls: sinks.witnesses.clone(),
        known: HashMap::new(),
    };
    loop {
        let stopping = tokio::select! {
            () = stop.cancelled() => true,
            () = tokio::time::sleep(every) => false,
        };
        let signed = {
            let (authority, key) = (authority.clone(), key.clone());
            // Reads and a commit per tenant: off the runtime's workers.
            tokio::task::spawn_blocking(move || authority.checkpoint(&key)).await
        };
        match signed {
            Ok(Ok(signed)) if !signed.is_empty() => {
                if let Err(error) = checkpoint_file::append(&sinks.file, &signed) {
                    tracing::error!(%error, "checkpoints could not be written outside the database");
                }
                if let Some(client) = &client {
                    let cosigned = witnesses.submit(client, &authority, &signed).await;
                    if !cosigned.is_empty()
                        && let Err(error) = checkpoint_file::append(&sinks.file, &cosigned)
                    {
                        tracing::error!(%error, "cosigned checkpoints could not be written outside the database");
                    }
                }
                tracing::info!(count = signed.len(), "chain and tree heads signed");
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "signing the chain heads failed; will retry"),
            Err(error) => tracing::error!(%error, "the checkpoint task failed"),
        }
        if stopping {
            return;
        }
    }
}

/// The witnesses, and the size of the newest head of each log each one cosigned (as far as this process knows:
/// a witness that knows better says so with a 409, and is believed only within the log's size).
struct Witnesses {
    urls: Vec<String>,
    known: HashMap<(usize, String), u64>,
}

impl Witnesses {
    /// Submits each checkpoint's tree head to every witness; answers the checkpoints that gained cosignatures,
    /// as now stored.
    async fn submit(
        &mut self,
        client: &reqwest::Client,
        authority: &Authority,
        signed: &[SignedCheckpoint],
    ) -> Vec<SignedCheckpoint> {
        let mut cosigned = Vec::new();
        for checkpoint in signed {
            let Some(note) = &checkpoint.tree else {
                continue;
            };
            let c = &checkpoint.checkpoint;
            let mut lines = String::new();
            for index in 0..self.urls.len() {
                if let Some(answer) = self.submit_one(client, authority, index, c, note).await {
                    lines.push_str(&answer);
                }
            }
            if lines.is_empty() {
                continue;
            }
            let (authority, tenant, key_id) =
                (authority.clone(), c.tenant.clone(), c.key_id.clone());
            let seq = c.seq;
            let stored = tokio::task::spawn_blocking(move || {
                authority.add_cosignatures(&tenant, seq, &key_id, &lines)
            })
            .await;
            match stored {
                Ok(Ok(note)) => {
                    let mut checkpoint = checkpoint.clone();
                    checkpoint.tree = Some(note);
                    cosigned.push(checkpoint);
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "a witness's cosignatures could not be kept")
                }
                Err(error) => tracing::error!(%error, "the cosignature task failed"),
            }
        }
        cosigned
    }

    /// One witness's cosignature lines for one head, or `None` (logged) when it gave none.
    async fn submit_one(
        &mut self,
        client: &reqwest::Client,
        authority: &Authority,
        index: usize,
        c: &haltstate_types::proof::Checkpoint,
        note: &str,
    ) -> Option<String> {
        let url = format!("{}/add-checkpoint", self.urls[index].trim_end_matches('/'));
        let origin = haltstate_types::proof::note_origin(note)?.to_owned();
        let mut old = self
            .known
            .get(&(index, origin.clone()))
            .copied()
            .unwrap_or(0);
        // At most once more, after the witness says which head it cosigned last.
        for _ in 0..2 {
            if old > c.seq {
                tracing::warn!(
                    witness = index,
                    tenant = %c.tenant,
                    witness_size = old,
                    size = c.seq,
                    "a witness claims a larger tree than this log holds: not submitted"
                );
                return None;
            }
            let proof = {
                let (authority, tenant, size) = (authority.clone(), c.tenant.clone(), c.seq);
                tokio::task::spawn_blocking(move || authority.consistency_proof(&tenant, old, size))
                    .await
            };
            let proof = match proof {
                Ok(Ok(proof)) => proof,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "no consistency proof for a witness");
                    return None;
                }
                Err(error) => {
                    tracing::error!(%error, "the consistency proof task failed");
                    return None;
                }
            };
            let mut body = format!("old {old}\n");
            for hash in &proof {
                body.push_str(&base64::engine::general_purpose::STANDARD.encode(hash));
                body.push('\n');
            }
            body.push('\n');
            body.push_str(note);
            let sent = client.post(&url).body(body).send().await;
            let response = match sent {
                Ok(response) => response,
                Err(error) => {
                    // The URL may carry a token: the error without it.
                    tracing::warn!(witness = index, error = %error.without_url(), "a witness could not be reached");
                    return None;
                }
            };
            let status = response.status();
            let is_size = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes() == b"text/x.tlog.size");
            let answer = read_capped(response).await?;
            match status.as_u16() {
                200 => {
                    self.known.insert((index, origin), c.seq);
                    // Only well-formed signature lines: one witness's junk must not cost another's cosignature.
                    let lines: Vec<String> = answer
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(|l| format!("{l}\n"))
                        .filter(|l| haltstate_types::proof::add_signatures(note, l).is_ok())
                        .take(MAX_LINES)
                        .collect();
                    if lines.is_empty() {
                        tracing::warn!(
                            witness = index,
                            "a witness answered 200 without a cosignature"
                        );
                    }
                    return Some(lines.concat());
                }
                409 if is_size => match answer.trim().parse::<u64>() {
                    Ok(size) => old = size,
                    Err(_) => {
                        tracing::warn!(witness = index, "a witness's 409 did not hold a size");
                        return None;
                    }
                },
                _ => {
                    tracing::warn!(
                        witness = index,
                        %status,
                        tenant = %c.tenant,
                        size = c.seq,
                        "a witness refused a tree head"
                    );
                    return None;
                }
            }
        }
        None
    }
}

/// The response's body as text, or `None` (logged) when it is longer than a witness's answer can be.
async fn read_capped(mut response: reqwest::Response) -> Option<String> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_ANSWER => {
                body.extend_from_slice(&chunk)
            }
            Ok(Some(_)) => {
                tracing::warn!("a witness's answer is longer than {MAX_ANSWER} bytes: ignored");
                return None;
            }
            Ok(None) => return Some(String::from_utf8_lossy(&body).into_owned()),
            Err(error) => {
                tracing::warn!(error = %error.without_url(), "a witness's answer could not be read");
                return None;
            }
        }
    }
}

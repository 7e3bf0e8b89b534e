//! Proof packs of one key and consistency proofs as the log grows: 10^4 to 10^7 records. A tenant's log is built
//! in memory (each record the canonical body of a real guard record with its own sequence number and key, every
//! complete subtree's hash kept, as the database keeps them), its head signed as the authority signs one; then a
//! pack of one key is made, written as JSON and verified with `haltstate_types::proof::verify`, and consistency
//! proofs from half the log are made and checked. The database's own cost of reading proofs is the `evidence`
//! bench. Figures go to BENCHMARKS.md.
//!
//! `cargo bench -p haltstate-authority --bench tlog_scale` (`-- 10000 100000` for some sizes only)

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use base64::Engine;
use haltstate_authority::proof::{
    IncludedRecord, PACK_FORMAT, ProofPack, TreeHead, log_origin, proof_record, verify,
    verify_consistency,
};
use haltstate_authority::tree_checkpoint::sign_tree_head;
use haltstate_authority::{ActionRequest, Authority, GuardRequest, SigningKey};
use haltstate_types::EvidenceRecord;
use serde_json::{Value, json};
use tlog_tiles::{Hash, HashReader};

/// Every stored hash, by stored index.
struct Memory(Vec<Hash>);

impl HashReader for Memory {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| {
                self.0
                    .get(i as usize)
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

/// One real guard record's body, to vary.
fn template() -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let authority = Authority::builder(dir.path().join("t.db"))
        .policy_source(
            "p.cedar",
            r#"@id("all") permit(principal, action, resource);"#,
        )
        .open()
        .expect("authority");
    let request = ActionRequest::new("billing-agent", "refund.create")
        .resource("order:1042")
        .param("amount_cents", json!(500));
    authority
        .guard("acme", GuardRequest::new(request, "refund:0"))
        .wait()
        .expect("guard");
    serde_json::from_slice(&authority.record_body("acme", 1).expect("body")).expect("json")
}

fn body(template: &Value, seq: u64) -> Vec<u8> {
    let mut record = template.clone();
    record["seq"] = json!(seq);
    record["idempotency_key"] = json!(format!("refund:{seq}"));
    haltstate_types::canonical::to_canonical_bytes(&record).expect("canonical")
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn timed<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(f());
                started.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000, 1_000_000, 10_000_000]
    } else {
        sizes
    };
    let template = template();
    let key = SigningKey::generate();
    let origin = log_origin("haltstate", "acme");
    println!(
        "| records | build (in memory) | pack of one key | proof hashes | pack verify (median) | consistency proof n/2 -> n: make / check (median) |"
    );
    println!("|---|---|---|---|---|---|");
    for &n in &sizes {
        let started = Instant::now();
        let mut store = Memory(Vec::with_capacity(2 * n as usize + 64));
        for i in 0..n {
            let hashes =
                tlog_tiles::stored_hashes(i, &body(&template, i + 1), &store).expect("append");
            store.0.extend(hashes);
        }
        let built = started.elapsed();
        let root = tlog_tiles::tree_hash(n, &store).expect("root");
        let head = TreeHead {
            size: n,
            root: root.0,
        };
        let note = sign_tree_head(&key, &origin, &head).expect("signed");

        // One key's record, from the middle of the log.
        let seq = n / 2 + 1;
        let bytes = body(&template, seq);
        let record: EvidenceRecord = serde_json::from_slice(&bytes).expect("record");
        let prev_hash = "0".repeat(64);
        let hash = haltstate_types::record_hash(&prev_hash, &bytes);
        let proof = tlog_tiles::prove_record(n, seq - 1, &store).expect("proof");
        let pack = ProofPack {
            format: PACK_FORMAT.to_owned(),
            tenant: "acme".to_owned(),
            origin: origin.clone(),
            checkpoint: note.clone(),
            records: vec![IncludedRecord {
                record: proof_record(&record, &hash),
                prev_hash,
                body: String::from_utf8(bytes).expect("utf-8"),
                inclusion: proof
                    .iter()
                    .map(|h| base64::engine::general_purpose::STANDARD.encode(h.0))
                    .collect(),
            }],
        };
        let text = serde_json::to_string_pretty(&pack).expect("json");
        let public = key.public();
        let verified = timed(200, || {
            let read: ProofPack = serde_json::from_str(&text).expect("pack");
            verify(&read, &public).expect("verifies")
        });

        let old = n / 2;
        let old_head = TreeHead {
            size: old,
            root: tlog_tiles::tree_hash(old, &store).expect("old root").0,
        };
        let made = timed(200, || {
            tlog_tiles::prove_tree(n, old, &store).expect("proof")
        });
        let consistency: Vec<[u8; 32]> = tlog_tiles::prove_tree(n, old, &store)
            .expect("proof")
            .iter()
            .map(|h| h.0)
            .collect();
        let checked = timed(200, || {
            verify_consistency(&consistency, &old_head, &head).expect("consistent")
        });
        println!(
            "| {n} | {:.1} s | {} bytes | {} | {} µs | {} µs / {} µs ({} hashes) |",
            built.as_secs_f64(),
            text.len(),
            proof.len(),
            verified.as_micros(),
            made.as_micros(),
            checked.as_micros(),
            consistency.len()
        );
    }
}

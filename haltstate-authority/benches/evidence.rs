//! Signed evidence: what a checkpoint costs (sign every tenant's chain and tree heads and store them); making and
//! verifying a chain pack of every one of 100,000 records; a tree pack of one key (made from the database, verified)
//! and a consistency proof read from the database. Figures go to BENCHMARKS.md.
//!
//! `cargo bench -p haltstate-authority --bench evidence`

// criterion_group! generates an undocumented fn.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use haltstate_authority::proof::{verify, verify_chain_pack};
use haltstate_authority::{
    ActionRequest, Authority, Durability, GuardRequest, ProofSelection, SigningKey,
};
use serde_json::json;

const RECORDS: u64 = 100_000;

/// An authority holding `RECORDS` guard records of one tenant (written by 8 threads, without fsync: only the
/// ledger's contents matter here).
fn filled(dir: &tempfile::TempDir) -> Authority {
    let authority = Authority::builder(dir.path().join("evidence.db"))
        .policy_source(
            "bench.cedar",
            r#"@id("all") permit(principal, action == Action::"refund.create", resource);"#,
        )
        .durability(Durability::Normal)
        .open()
        .expect("authority");
    let shared = Arc::new(authority.clone());
    let workers: Vec<_> = (0..8u64)
        .map(|worker| {
            let authority = shared.clone();
            std::thread::spawn(move || {
                for i in 0..RECORDS / 8 {
                    let request = ActionRequest::new("billing-agent", "refund.create")
                        .param("amount_cents", json!(i));
                    authority
                        .guard("acme", GuardRequest::new(request, format!("k{worker}:{i}")))
                        .wait()
                        .expect("guard");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    authority
}

fn evidence(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let authority = filled(&dir);
    let key = SigningKey::generate();
    authority.checkpoint(&key).expect("checkpoint");
    let mut group = c.benchmark_group("evidence");
    group.sample_size(10);

    // A head that moved since the last checkpoint: one guard, then sign and store (what each interval does
    // per active tenant).
    let mut n = 0u64;
    group.bench_function("checkpoint of one moved head (guard excluded)", |b| {
        b.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                n += 1;
                let request = ActionRequest::new("billing-agent", "refund.create")
                    .param("amount_cents", json!(1));
                authority
                    .guard("acme", GuardRequest::new(request, format!("c{n}")))
                    .wait()
                    .expect("guard");
                let started = std::time::Instant::now();
                assert_eq!(authority.checkpoint(&key).expect("checkpoint").len(), 1);
                spent += started.elapsed();
            }
            spent
        })
    });

    let all = ProofSelection {
        since: Some(time::OffsetDateTime::UNIX_EPOCH),
        ..ProofSelection::default()
    };
    group.bench_function("chain pack export, 100,000 records", |b| {
        b.iter(|| authority.chain_proof_pack("acme", &all).expect("pack"))
    });
    let pack = authority.chain_proof_pack("acme", &all).expect("pack");
    assert!(pack.records.len() as u64 >= RECORDS);
    let public = key.public();
    group.bench_function("chain pack verify, 100,000 records", |b| {
        b.iter(|| verify_chain_pack(&pack, &public).expect("verifies"))
    });
    let text = serde_json::to_string(&pack).expect("json");
    println!(
        "chain pack of {} records: {} MB of JSON",
        pack.records.len(),
        text.len() / 1_000_000
    );

    // One key of the middle of the log, as an auditor asks for it.
    let one = ProofSelection {
        key: Some(format!("k3:{}", RECORDS / 16)),
        ..ProofSelection::default()
    };
    group.bench_function("tree pack of one key: export", |b| {
        b.iter(|| authority.proof_pack("acme", &one).expect("pack"))
    });
    let pack = authority.proof_pack("acme", &one).expect("pack");
    let text = serde_json::to_string_pretty(&pack).expect("json");
    group.bench_function("tree pack of one key: parse and verify", |b| {
        b.iter(|| {
            let read: haltstate_authority::proof::ProofPack =
                serde_json::from_str(&text).expect("pack");
            verify(&read, &public).expect("verifies")
        })
    });
    let size = authority.tree_head("acme").expect("head").size;
    println!(
        "tree pack of one key in a log of {size} records: {} bytes of JSON, {} proof hashes",
        text.len(),
        pack.records[0].inclusion.len()
    );
    group.bench_function("consistency proof, half the log to all of it", |b| {
        b.iter(|| {
            authority
                .consistency_proof("acme", size / 2, size)
                .expect("proof")
        })
    });
    group.finish();
}

criterion_group!(benches, evidence);
criterion_main!(benches);

//! Guard latency as the ledger grows (issue 25: it must stay flat). Fills one tenant's ledger with guarded actions
//! (8 threads, two records each: the guard's and the outcome's), and at 10^4, 10^5, ... records up to the limit
//! times 2,000 guard + report pairs from one caller, each pair a fresh key, an evidence query by key and one by time
//! (from the moment before a pair: SQLite bisects the sequence numbers, schema 25).
//!
//! `cargo run --profile profiling -p haltstate-authority --example growth [records] [full|normal]`
//! (default 1,000,000 records, `normal`: without an fsync per commit the figures show what the tables' size costs,
//! not the disk's flush time, which is the same at every size).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use haltstate_authority::{Authority, Durability, EvidenceQuery};

use common::TENANT;

fn records(authority: &Authority) -> Result<u64, String> {
    Ok(authority
        .tenant_head(TENANT)
        .map_err(|e| e.to_string())?
        .seq)
}

/// Fills until the tenant's ledger holds `target` records, from 8 threads.
fn fill(authority: &Arc<Authority>, target: u64, round: usize) -> Result<(), String> {
    let threads: Vec<_> = (0..8)
        .map(|thread| {
            let authority = authority.clone();
            std::thread::spawn(move || {
                let mut i = 0u64;
                while records(&authority)? < target {
                    for _ in 0..100 {
                        common::act(&authority, &format!("fill{round}-{thread}-{i}"), i)?;
                        i += 1;
                    }
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| "a fill thread panicked")??;
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let limit: u64 = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let durability = common::durability(args.next().as_deref(), Durability::Normal);
    let dir = tempfile::tempdir()?;
    let authority = Arc::new(common::open(&dir, durability)?);
    println!(
        "durability {durability:?}; per size: 2,000 guard + report pairs from one caller, then 200 evidence queries by key and 200 by time"
    );
    println!(
        "{:>12} {:>10} {:>10} {:>12} {:>12} {:>12}",
        "records", "p50", "p99", "query p50", "by time p50", "file MB"
    );
    let mut size = 10_000;
    let mut round = 0;
    while size <= limit {
        fill(&authority, size, round)?;
        let mut pairs = Vec::with_capacity(2_000);
        let mut marks = Vec::with_capacity(200);
        for i in 0..2_000u64 {
            if i % 10 == 0 {
                marks.push(authority.now());
            }
            let started = Instant::now();
            common::act(&authority, &format!("measure{round}-{i}"), i)?;
            pairs.push(started.elapsed());
        }
        pairs.sort_unstable();
        let mut queries = Vec::with_capacity(200);
        for i in 0..200u64 {
            let query = EvidenceQuery {
                idempotency_key: Some(format!("measure{round}-{}", i * 10)),
                ..EvidenceQuery::default()
            };
            let started = Instant::now();
            let found = authority.evidence(TENANT, &query)?;
            queries.push(started.elapsed());
            if found.len() != 2 {
                return Err(format!("a key's evidence has {} records, not 2", found.len()).into());
            }
        }
        queries.sort_unstable();
        // By time: from the moment before every tenth pair, whose guard is among the first records found (the
        // record before it may share its microsecond).
        let mut by_time = Vec::with_capacity(200);
        for (i, mark) in (0u64..).step_by(10).zip(&marks) {
            let query = EvidenceQuery {
                from: Some(*mark),
                limit: Some(3),
                ..EvidenceQuery::default()
            };
            let started = Instant::now();
            let found = authority.evidence(TENANT, &query)?;
            by_time.push(started.elapsed());
            let key = format!("measure{round}-{i}");
            if !found
                .iter()
                .any(|r| r.idempotency_key.as_deref() == Some(&key))
            {
                return Err(format!("the records from {mark} do not begin with {key}'s").into());
            }
        }
        by_time.sort_unstable();
        let bytes = std::fs::metadata(dir.path().join("p.db"))?.len()
            + std::fs::metadata(dir.path().join("p.db-wal")).map_or(0, |m| m.len());
        println!(
            "{:>12} {:>10.1?} {:>10.1?} {:>12.1?} {:>12.1?} {:>12.0}",
            records(&authority)?,
            percentile(&pairs, 0.5),
            percentile(&pairs, 0.99),
            percentile(&queries, 0.5),
            percentile(&by_time, 0.5),
            bytes as f64 / 1e6
        );
        size *= 10;
        round += 1;
    }
    println!(
        "{:.1} operations per transaction while filling and measuring",
        common::operations_per_transaction(&authority)
    );
    Ok(())
}

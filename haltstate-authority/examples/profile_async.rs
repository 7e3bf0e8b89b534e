//! Async callers on one tokio runtime: guard + report from N tasks, 2,000 actions each by default.
//!
//! `cargo run --release -p haltstate-authority --example profile_async [tasks] [actions per task]
//!  [full|normal] [current|multi|multi1]` (multi1: a multi-thread runtime with one worker)
mod common;

use std::sync::Arc;

use haltstate_authority::{Durability, GuardRequest, Outcome, OutcomeReport};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let tasks: u64 = args.next().map_or(Ok(8), |a| a.parse())?;
    let per_task: u64 = args.next().map_or(Ok(2_000), |a| a.parse())?;
    let durability = common::durability(args.next().as_deref(), Durability::Full);
    let flavor = args.next().unwrap_or_else(|| "current".into());
    let runtime = match flavor.as_str() {
        "multi" => tokio::runtime::Builder::new_multi_thread().build()?,
        "multi1" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()?,
        _ => tokio::runtime::Builder::new_current_thread().build()?,
    };
    let dir = tempfile::tempdir()?;
    let authority = Arc::new(common::open(&dir, durability)?);
    let started = std::time::Instant::now();
    runtime.block_on(async {
        let workers: Vec<_> = (0..tasks)
            .map(|t| {
                let authority = authority.clone();
                tokio::spawn(async move {
                    for i in 0..per_task {
                        let key = format!("k{t}-{i}");
                        let answer = authority
                            .guard("acme", GuardRequest::new(common::refund(i), &key))
                            .await
                            .map_err(|e| e.to_string())?;
                        let token = answer.claim.ok_or("no claim")?.token;
                        authority
                            .report(
                                "acme",
                                OutcomeReport::new(&key, Outcome::Success).claim_token(token),
                            )
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for worker in workers {
            worker.await.map_err(|e| e.to_string())??;
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    let actions = tasks * per_task;
    println!(
        "{tasks} tasks, {flavor} runtime, {durability:?}: {:.1} µs per guard+report (amortised), {:.1} operations per transaction",
        started.elapsed().as_micros() as f64 / actions as f64,
        common::operations_per_transaction(&authority)
    );
    Ok(())
}

//! Async callers on one tokio runtime: guard + report from N tasks, 2,000 actions each by default.
//!
//! `cargo run --release -p haltstate-authority --example profile_async [tasks] [actions per task]
//!  [full|normal] [current|multi|multi1]` (multi1: a multi-thread runtime with one worker)
use std::sync::Arc;

use haltstate_authority::{
    ActionRequest, Authority, Durability, GuardRequest, Outcome, OutcomeReport,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let tasks: u64 = args.next().map_or(Ok(8), |a| a.parse())?;
    let per_task: u64 = args.next().map_or(Ok(2_000), |a| a.parse())?;
    let durability = match args.next().as_deref() {
        Some("normal") => Durability::Normal,
        _ => Durability::Full,
    };
    let flavor = args.next().unwrap_or_else(|| "current".into());
    let runtime = match flavor.as_str() {
        "multi" => tokio::runtime::Builder::new_multi_thread().build()?,
        "multi1" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()?,
        _ => tokio::runtime::Builder::new_current_thread().build()?,
    };
    let dir = tempfile::tempdir()?;
    let authority = Arc::new(
        Authority::builder(dir.path().join("p.db"))
            .policy_source(
                "p.cedar",
                r#"@id("all") permit(principal, action, resource);"#,
            )
            .durability(durability)
            .open()?,
    );
    let started = std::time::Instant::now();
    runtime.block_on(async {
        let workers: Vec<_> = (0..tasks)
            .map(|t| {
                let authority = authority.clone();
                tokio::spawn(async move {
                    for i in 0..per_task {
                        let key = format!("k{t}-{i}");
                        let request = ActionRequest::new("agent", "refund.create")
                            .param("amount", serde_json::json!(i));
                        let answer = authority
                            .guard("acme", GuardRequest::new(request, &key))
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
    let stats = authority.writer_stats();
    println!(
        "{tasks} tasks, {flavor} runtime, {durability:?}: {:.1} µs per guard+report (amortised), {:.1} operations per transaction",
        started.elapsed().as_micros() as f64 / actions as f64,
        stats.operations as f64 / stats.transactions.max(1) as f64
    );
    Ok(())
}

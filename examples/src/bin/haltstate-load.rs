//! `haltstate-load`: drives a running authority with N concurrent callers for T seconds through the
//! `haltstate` client and prints throughput and latency percentiles.
//!
//! ```text
//! haltstate-load --url http://127.0.0.1:8787 --tenant acme --key hs_... --connections 64 --seconds 10
//! ```
//! Each operation is one guarded action: `guard` (a fresh idempotency key) then `complete`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use haltstate::{Action, HaltStateClient};

/// Load-test a HaltState authority.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The authority's base URL.
    #[arg(long, env = "HALTSTATE_BASE_URL")]
    url: String,
    /// The tenant.
    #[arg(long, env = "HALTSTATE_TENANT_ID")]
    tenant: String,
    /// An agent key of the tenant.
    #[arg(long, env = "HALTSTATE_API_KEY")]
    key: String,
    /// Concurrent callers.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The action to guard (it must be allowed by policy).
    #[arg(long, default_value = "refund.create")]
    action: String,
    /// `amount_cents` sent as a param.
    #[arg(long, default_value_t = 100)]
    amount: u32,
}

fn percentile(sorted: &[u32], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Duration::from_micros(u64::from(sorted[index.min(sorted.len() - 1)]))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let client = HaltStateClient::builder()
        .base_url(&args.url)
        .tenant(&args.tenant)
        .api_key(&args.key)
        .agent_id("load")
        // The workers are tasks of this runtime: their requests run where they are made.
        .io_runtime(tokio::runtime::Handle::current())
        .build()?;
    let run = uuid_like();
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.connections)
        .map(|worker| {
            let (client, stop, errors) = (client.clone(), stop.clone(), errors.clone());
            let (action, amount, run) = (args.action.clone(), args.amount, run.clone());
            tokio::spawn(async move {
                let mut latencies: Vec<u32> = Vec::with_capacity(100_000);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let begun = Instant::now();
                    let guarded = Action::new(&action)
                        .key(format!("load:{run}:{worker}:{n}"))
                        .param("amount_cents", amount);
                    let done = match client.guard(guarded).await {
                        Ok(permit) => permit.complete().await.map(drop),
                        Err(e) => Err(e),
                    };
                    match done {
                        Ok(()) => latencies
                            .push(u32::try_from(begun.elapsed().as_micros()).unwrap_or(u32::MAX)),
                        Err(error) => {
                            if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!("error: {error}");
                            }
                        }
                    }
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await?);
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    println!("connections      {}", args.connections);
    println!("duration         {:.1} s", elapsed.as_secs_f64());
    println!("guarded actions  {} (guard + report each)", all.len());
    println!(
        "throughput       {:.0} actions/s",
        all.len() as f64 / elapsed.as_secs_f64()
    );
    println!("p50              {:?}", percentile(&all, 0.50));
    println!("p99              {:?}", percentile(&all, 0.99));
    println!("p999             {:?}", percentile(&all, 0.999));
    println!("max              {:?}", percentile(&all, 1.0));
    println!("errors           {}", errors.load(Ordering::Relaxed));
    Ok(())
}

/// A run id, so two runs against the same database never share keys.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}")
}

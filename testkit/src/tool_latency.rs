//! What the MCP benchmarks time: one `tools/call` of `write_file` with arguments never seen before (a new
//! operation each time), rounds of such calls from concurrent clients, and percentiles of the latencies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use serde_json::{Value, json};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// One call of `write_file` under `/data/public/` with a fresh path; its latency.
///
/// # Panics
/// When the call fails or answers `isError`: a benchmark of refusals would measure the wrong thing.
pub async fn write_call(client: &RunningService<RoleClient, ()>) -> Duration {
    let Value::Object(arguments): Value = json!({
        "path": format!("/data/public/{}.txt", NEXT.fetch_add(1, Ordering::Relaxed)),
        "content": "a line",
    }) else {
        unreachable!("a JSON object literal")
    };
    let started = Instant::now();
    let result = client
        .call_tool(CallToolRequestParams::new("write_file").with_arguments(arguments))
        .await
        .unwrap_or_else(|e| panic!("the call answers: {e}"));
    assert_ne!(result.is_error, Some(true), "{result:?}");
    started.elapsed()
}

/// `per_round` calls from each of `clients` at once; every call's latency.
///
/// # Panics
/// When a client's task fails.
pub async fn round(
    clients: &[Arc<RunningService<RoleClient, ()>>],
    per_round: usize,
) -> Vec<Duration> {
    let tasks: Vec<_> = clients
        .iter()
        .map(|client| {
            let client = Arc::clone(client);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_round);
                for _ in 0..per_round {
                    latencies.push(write_call(&client).await);
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap_or_else(|e| panic!("a client task: {e}")));
    }
    all
}

/// The `p` quantile (0 to 1) of latencies sorted ascending.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

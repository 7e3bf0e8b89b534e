//! What the guard adds to a `tools/call`: the same rmcp client and server, in process over a pipe, called
//! directly and through `Guarded` (on an embedded authority), in interleaved rounds. Prints p50 and p99 of each,
//! at 1 client and at 16 concurrent clients, and the ratio of the p50s.
//!
//! `cargo bench -p haltstate-mcp --bench tool_call` (`-- --durability full` for fsync at every commit; the default
//! `normal` measures the guard's own work rather than the disk's).

use std::sync::Arc;
use std::time::Duration;

use haltstate::HaltStateClient;
use haltstate_authority::{Authority, Durability};
use haltstate_mcp::{GuardConfig, Guarded};
use haltstate_testkit::tool_latency::{percentile, round};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::{RequestContext, RoleClient, RunningService};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

/// A tool that answers at once: what is measured is everything around it.
#[derive(Clone)]
struct Echo;

impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(request.name.to_string())]).into())
    }
}

async fn connect<S: ServerHandler>(server: S) -> RunningService<RoleClient, ()> {
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    ().serve(client_io).await.expect("the client connects")
}

/// `rounds` rounds of `per_round` calls from each of `clients` concurrent clients; every call's latency.
async fn measure(
    clients: &[Arc<RunningService<RoleClient, ()>>],
    rounds: usize,
    per_round: usize,
) -> Vec<Duration> {
    let mut all = Vec::new();
    for _ in 0..rounds {
        all.extend(round(clients, per_round).await);
    }
    all
}

fn main() {
    let durability = if std::env::args().any(|a| a == "full") {
        Durability::Full
    } else {
        Durability::Normal
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let authority = Authority::builder(dir.path().join("bench.db"))
            .policy_source(
                "p.cedar",
                r#"@id("w") permit(principal, action == Action::"mcp.bench.write_file", resource)
                   when { context.params.path like "/data/public/*" };"#,
            )
            .durability(durability)
            .open()
            .expect("authority");
        let haltstate = HaltStateClient::builder()
            .authority(authority)
            .tenant("acme")
            .build()
            .expect("client");
        let config = GuardConfig::new("bench")
            .expect("config")
            .agent("bench-agent")
            .resource_arg("write_file", "path");
        println!("durability {durability:?}; latency per tools/call (p50 / p99), interleaved rounds");
        for concurrency in [1usize, 16] {
            let mut direct_clients = Vec::new();
            let mut guarded_clients = Vec::new();
            for _ in 0..concurrency {
                direct_clients.push(Arc::new(connect(Echo).await));
                guarded_clients.push(Arc::new(
                    connect(Guarded::new(Echo, haltstate.clone(), config.clone())).await,
                ));
            }
            // Warm up both paths, then alternate rounds so both see the same machine.
            measure(&direct_clients, 1, 50).await;
            measure(&guarded_clients, 1, 50).await;
            let (mut direct, mut guarded) = (Vec::new(), Vec::new());
            let per_round = 2_000 / concurrency / 10;
            for _ in 0..10 {
                direct.extend(measure(&direct_clients, 1, per_round).await);
                guarded.extend(measure(&guarded_clients, 1, per_round).await);
            }
            direct.sort();
            guarded.sort();
            let (d50, d99) = (percentile(&direct, 0.5), percentile(&direct, 0.99));
            let (g50, g99) = (percentile(&guarded, 0.5), percentile(&guarded, 0.99));
            println!(
                "{concurrency:>2} client(s): direct {d50:>10.1?} / {d99:>10.1?}   guarded {g50:>10.1?} / {g99:>10.1?}   \
                 added p50 {:>10.1?}   ratio {:.2}   ({} calls each)",
                g50.saturating_sub(d50),
                g50.as_secs_f64() / d50.as_secs_f64(),
                direct.len()
            );
        }
    });
}

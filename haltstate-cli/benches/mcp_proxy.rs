//! What the `haltstate mcp proxy` process adds to a `tools/call` over streamable HTTP on loopback: an MCP server
//! whose tool answers at once (rmcp, in this process) called directly, through the proxy on an embedded authority
//! (`--db`, SQLite, fsync at every commit as the CLI opens it), and through the proxy asking a `haltstate serve`
//! with each caller's key. Interleaved rounds; p50 and p99 at 1 client and at 16 concurrent clients (each its own
//! session); every call has new arguments (a new operation: guard and outcome).
//!
//! `cargo bench -p haltstate-cli --bench mcp_proxy` (`-- --quick` for fewer rounds).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use haltstate_testkit::tool_latency::{percentile, round};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::{RequestContext, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{
    StreamableHttpClientTransport, StreamableHttpServerConfig, StreamableHttpService,
};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use tokio::io::AsyncBufReadExt;

const HALTSTATE: &str = env!("CARGO_BIN_EXE_haltstate");

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

/// The echo server on a loopback port: its `/mcp` URL.
async fn echo_server() -> String {
    let service = StreamableHttpService::new(
        || Ok(Echo),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let router = axum::Router::new().route_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}/mcp")
}

/// Starts `haltstate args..` and reads the URL from its first line (`listening on URL`); killed on drop.
async fn start(args: &[&str], env: &[(&str, &str)]) -> (tokio::process::Child, String) {
    let mut command = tokio::process::Command::new(HALTSTATE);
    command
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("haltstate starts");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("its stdout");
    tokio::io::BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .expect("its first line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("did not start: {line:?}"))
        .to_owned();
    (child, url)
}

/// An agent key for `name` made with the CLI on `db`.
fn agent_key(db: &Path, name: &str) -> String {
    let made = std::process::Command::new(HALTSTATE)
        .args(["keys", "create", "--db"])
        .arg(db)
        .args(["--tenant", "default", "--name", name, "--role", "agent"])
        .output()
        .expect("keys create");
    assert!(made.status.success(), "{made:?}");
    String::from_utf8_lossy(&made.stdout).trim().to_owned()
}

async fn client(url: &str, key: Option<&str>) -> RunningService<RoleClient, ()> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    if let Some(key) = key {
        config = config.auth_header(key);
    }
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("the client connects")
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, per_round) = if quick { (3, 20) } else { (10, 50) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let policy = dir.path().join("bench.cedar");
        std::fs::write(
            &policy,
            r#"@id("w") permit(principal, action == Action::"mcp.bench.write_file", resource)
               when { context.params.path like "/data/public/*" };"#,
        )
        .expect("policy");
        let policy = policy.display().to_string();
        let echo = echo_server().await;

        let embedded_db = dir.path().join("embedded.db").display().to_string();
        let (_embedded, embedded_url) = start(
            &[
                "mcp", "proxy", "--name", "bench", "--listen", "127.0.0.1:0", "--agent", "bench-agent",
                "--db", &embedded_db, "--policy", &policy, "--upstream-url", &echo,
            ],
            &[],
        )
        .await;

        let server_db = dir.path().join("server.db");
        let key = agent_key(&server_db, "bench-agent");
        let server_db = server_db.display().to_string();
        let (_server, server_url) = start(
            &["serve", "--db", &server_db, "--policy", &policy, "--listen", "127.0.0.1:0"],
            &[],
        )
        .await;
        let (_via_server, via_server_url) = start(
            &[
                "mcp", "proxy", "--name", "bench", "--listen", "127.0.0.1:0", "--server", &server_url,
                "--upstream-url", &echo,
            ],
            &[("HALTSTATE_TENANT_ID", "default")],
        )
        .await;

        let targets: [(&str, &str, Option<&str>); 3] = [
            ("direct", &echo, None),
            ("proxy, embedded", &embedded_url, None),
            ("proxy, server", &via_server_url, Some(&key)),
        ];
        println!(
            "latency per tools/call over streamable HTTP on loopback (p50 / p99), {rounds} interleaved rounds of \
             {per_round} calls per client"
        );
        for concurrency in [1usize, 16] {
            let mut clients = Vec::new();
            for (_, url, key) in &targets {
                let mut these = Vec::new();
                for _ in 0..concurrency {
                    these.push(Arc::new(client(url, *key).await));
                }
                // Warm: connections, sessions, the authority's caches.
                round(&these, 5).await;
                clients.push(these);
            }
            let mut latencies = vec![Vec::new(); targets.len()];
            for _ in 0..rounds {
                for (i, these) in clients.iter().enumerate() {
                    latencies[i].extend(round(these, per_round).await);
                }
            }
            let mut p50s = Vec::new();
            for ((label, _, _), mut measured) in targets.iter().zip(latencies) {
                measured.sort();
                let (p50, p99) = (percentile(&measured, 0.5), percentile(&measured, 0.99));
                p50s.push(p50);
                println!(
                    "{concurrency:>2} client(s)  {label:<16} p50 {:>9.1?}  p99 {:>9.1?}  ({} calls)",
                    p50,
                    p99,
                    measured.len()
                );
            }
            for (i, (label, _, _)) in targets.iter().enumerate().skip(1) {
                println!(
                    "{concurrency:>2} client(s)  {label:<16} adds {:>9.1?} at p50 (x{:.1})",
                    p50s[i].saturating_sub(p50s[0]),
                    p50s[i].as_secs_f64() / p50s[0].as_secs_f64()
                );
            }
        }
    });
}

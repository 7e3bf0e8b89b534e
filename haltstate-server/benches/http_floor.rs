//! The floor under a guarded action over HTTP: this crate's listener (`serve_router`, the same limits, timeouts
//! and connection accounting as `haltstate serve`), the same runtime and allocator, and the wire contract's own
//! types decoded and encoded, with no authority behind them: no key lookup, no policy, no storage, no metrics.
//! Every guard is allowed with a claim; every report answers `completed`.
//!
//! What a guarded action costs the server's CPU here is what it costs before the authority does anything: the
//! server's figure minus this one is ours (authentication, policy, the ledger's transaction, metrics).
//!
//! ```text
//! cargo build --release -p haltstate-server --bench http_floor
//! scripts/bench-http-floor   # this server against `haltstate serve`, interleaved, one load generator
//! ```
//! `http_floor [ADDR]` prints `listening on http://ADDR` once bound (as `haltstate serve` does) and serves until
//! killed; under `cargo bench` (`--bench`) it exits at once.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use axum::Json;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use haltstate_server::{ServeLimits, serve_router};
use haltstate_types::wire::{GuardBody, GuardReply, GuardReportBody, GuardReportReply, paths};
use haltstate_types::{Claim, GuardAnswer, GuardStatus, KeyState};
use time::OffsetDateTime;

/// How long the claim a guard answers lasts (the authority's default lease is of this order; only its encoding
/// matters here).
const LEASE: time::Duration = time::Duration::minutes(5);

async fn guard(body: Bytes) -> Result<Json<GuardReply>, StatusCode> {
    let body: GuardBody = serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
    let now = OffsetDateTime::now_utc();
    let answer = GuardAnswer {
        status: GuardStatus::Allowed,
        reason: "allowed by policy".to_owned(),
        policy_id: Some("refunds.small".to_owned()),
        approval_id: None,
        approver: None,
        approved_at: None,
        expires_at: None,
        // As long as the authority's: 32 random bytes, hex.
        claim: Some(Claim {
            token: format!("{:064x}", now.unix_timestamp_nanos()),
            lease_until: now + LEASE,
        }),
        completed_seq: None,
        generation: 1,
        decision_latency_us: 0,
        ledger_seq: 1_000_000,
        kill_switch: None,
    };
    Ok(Json(GuardReply::from_answer(
        &answer,
        &body.idempotency_key,
        now,
    )))
}

async fn guard_report(body: Bytes) -> Result<Json<GuardReportReply>, StatusCode> {
    let _: GuardReportBody = serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
    Ok(Json(GuardReportReply {
        ok: true,
        ledger_seq: 1_000_001,
        state: KeyState::Completed,
        duplicate: false,
    }))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` runs every bench target with `--bench`: a server that never exits would hang it.
    if args.iter().any(|arg| arg == "--bench") {
        println!("http_floor: a server for scripts/bench-http-floor, not run by `cargo bench`");
        return Ok(());
    }
    let listen = args
        .first()
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    // The runtime `haltstate serve` runs on: tokio's defaults, a worker per core.
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        println!("listening on http://{}", listener.local_addr()?);
        let mut router = axum::Router::new();
        for prefix in [paths::CANONICAL, paths::LEGACY] {
            router = router
                .route(&format!("{prefix}/{}", paths::GUARD), post(guard))
                .route(
                    &format!("{prefix}/{}", paths::GUARD_REPORT),
                    post(guard_report),
                );
        }
        serve_router(
            listener,
            router,
            ServeLimits::default(),
            std::future::pending(),
        )
        .await?;
        Ok(())
    })
}

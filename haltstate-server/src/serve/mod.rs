//! Serving connections within bounds: how long a client may take to send its headers, how long a kept-alive
//! connection may idle, how many connections are served at once, and how long shutdown waits.
//!
//! Each connection is one hyper HTTP/1 connection with a watchdog. The watchdog knows, from the connection's
//! reads and its requests, whether it is between requests (idle since when), in the middle of a request head
//! (since its first byte), or serving a request; it closes an idle connection after
//! [`ServeLimits::idle_timeout`], a slow head after [`ServeLimits::header_timeout`], and a request whose body
//! is still arriving after [`ServeLimits::body_timeout`] on any route (the JSON extractor answers 408 at the
//! limit; the watchdog closes the rest). Past [`ServeLimits::max_connections`], or past
//! [`ServeLimits::max_connections_per_address`] for one client address, a few more connections are served only
//! `/healthz` and a 503; past those, they are closed as they arrive.

mod watch;

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::limits::ServeLimits;
use crate::slots::Slots;
use crate::state::AppState;
use watch::{Activity, Noted, Watched};

/// Connections served only `/healthz` and a 503 once [`ServeLimits::max_connections`] are open.
const OVERFLOW_CONNECTIONS: usize = 64;
/// How often a connection's watchdog looks at it.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// How often refusals are summarised in the log and rate limiters forget quiet clients.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

/// Serves `state`'s router on `listener` until `shutdown` completes, within `state`'s limits; then stops
/// accepting, ends the approval streams, lets in-flight requests finish for up to
/// [`ServeLimits::shutdown_timeout`], and closes what is left.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let housekeeping = tokio::spawn(housekeeping(state.clone()));
    let bounded = Bounded {
        router: crate::router(state.clone()),
        health_only: crate::health_router(),
        limits: *state.limits(),
    };
    bounded.run(listener, shutdown, &state.shutdown).await;
    housekeeping.abort();
    state.refusals.log_summary();
    Ok(())
}

/// Serves `GET /metrics` ([`metrics_router`](crate::metrics_router)) on `listener` until `shutdown` completes,
/// under `limits`' header, body and idle timeouts and a small connection limit of its own (16, 8 per address): a
/// scraper needs one connection, and idle ones must not use up the file descriptors the API needs.
pub async fn serve_metrics(
    listener: TcpListener,
    authority: haltstate_authority::Authority,
    metrics: crate::Metrics,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let bounded = Bounded {
        router: crate::metrics_router(authority, metrics),
        health_only: crate::health_router(),
        limits: ServeLimits {
            max_connections: METRICS_CONNECTIONS,
            max_connections_per_address: METRICS_CONNECTIONS / 2,
            ..limits
        },
    };
    bounded
        .run(listener, shutdown, &CancellationToken::new())
        .await;
    Ok(())
}

/// Serves any `router` on `listener` until `shutdown` completes, within `limits`' timeouts and connection counts
/// (as [`serve`] does; `/healthz` for connections past the limit): for another listener of the same process, such
/// as the MCP gateway's.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let bounded = Bounded {
        router,
        health_only: crate::health_router(),
        limits,
    };
    bounded
        .run(listener, shutdown, &CancellationToken::new())
        .await;
    Ok(())
}

/// Connections the metrics listener serves at once.
pub const METRICS_CONNECTIONS: usize = 16;

/// A router served within limits.
struct Bounded {
    router: Router,
    health_only: Router,
    limits: ServeLimits,
}

impl Bounded {
    /// Accepts until `shutdown`; then cancels `streams` (they end at once), drains for the shutdown timeout and
    /// closes the rest.
    async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        streams: &CancellationToken,
    ) {
        let Self {
            router,
            health_only,
            limits,
        } = self;
        let serving = Arc::new(Semaphore::new(limits.max_connections));
        let overflow = Arc::new(Semaphore::new(OVERFLOW_CONNECTIONS));
        let addresses: Arc<Slots<IpAddr>> = Arc::default();
        let closing = CancellationToken::new();
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            // Out of file descriptors, say: back off instead of spinning, and keep serving.
                            tracing::warn!(%error, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    // One address holds at most its share of the connections: a client that opens many and
                    // sends slowly starves nobody else.
                    let share = addresses.take(peer.ip(), limits.max_connections_per_address);
                    let permit = share.as_ref().and_then(|_| serving.clone().try_acquire_owned().ok());
                    if let (Some(permit), Some(share)) = (permit, share) {
                        let (router, closing) = (router.clone(), closing.clone());
                        connections.spawn(async move {
                            connection(stream, peer, router, limits, closing, true).await;
                            drop((permit, share));
                        });
                    } else if let Ok(permit) = overflow.clone().try_acquire_owned() {
                        let (router, closing) = (health_only.clone(), closing.clone());
                        connections.spawn(async move {
                            connection(stream, peer, router, limits, closing, false).await;
                            drop(permit);
                        });
                    } else {
                        drop(stream);
                    }
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        streams.cancel();
        closing.cancel();
        let drained = tokio::time::timeout(limits.shutdown_timeout, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = connections.len(),
                "shutdown deadline reached; closing the remaining connections"
            );
            connections.shutdown().await;
        }
    }
}

async fn housekeeping(state: AppState) {
    loop {
        tokio::time::sleep(HOUSEKEEPING_EVERY).await;
        state.refusals.log_summary();
        state.rates.prune();
    }
}

/// Serves one connection until the client leaves, the watchdog closes it, or shutdown (then it finishes the
/// request in flight). `full` is false for an overflow connection: `/healthz` only, then close.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ServeLimits,
    closing: CancellationToken,
    full: bool,
) {
    let activity = Activity::new();
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: Request<Incoming>| {
            activity.request_started();
            request.extensions_mut().insert(ConnectInfo(peer));
            let request = request.map(|body| Body::new(Noted::request(body, &activity)));
            let (router, activity) = (router.clone(), activity.clone());
            async move {
                let response = match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                let (mut parts, body) = response.into_parts();
                if !full {
                    parts.headers.insert(
                        header::CONNECTION,
                        header::HeaderValue::from_static("close"),
                    );
                }
                Ok::<_, std::convert::Infallible>(Response::from_parts(
                    parts,
                    Noted::response(body, activity),
                ))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // The watchdog bounds heads and idling precisely; hyper's own timer would start at the idle wait.
        .header_read_timeout(None)
        .keep_alive(full);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut watch = tokio::time::interval(WATCH_EVERY);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(error) = served {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
                return;
            }
            () = closing.cancelled(), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = watch.tick() => {
                if let Some(why) = activity.overdue(&limits) {
                    tracing::debug!(%peer, why, "closing connection");
                    return;
                }
            }
        }
    }
}

/// What an overflow connection answers to anything but `/healthz`.
pub(crate) async fn too_many_connections() -> axum::response::Response {
    ApiError::retry_later(
        StatusCode::SERVICE_UNAVAILABLE,
        haltstate_types::ErrorCode::TooManyConnections,
        "the server is at its connection limit; retry shortly",
        1,
    )
    .into_response()
}

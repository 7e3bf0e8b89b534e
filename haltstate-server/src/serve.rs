//! Serving connections within bounds: how long a client may take to send its headers, how long a kept-alive
//! connection may idle, how many connections are served at once, and how long shutdown waits.
//!
//! Each connection is one hyper HTTP/1 connection with a watchdog. The watchdog knows, from the connection's
//! reads and its requests, whether it is between requests (idle since when), in the middle of a request head
//! (since its first byte), or serving a request; it closes an idle connection after
//! [`ServeLimits::idle_timeout`] and a slow head after [`ServeLimits::header_timeout`]. Bodies are bounded by the
//! JSON extractor ([`ServeLimits::body_timeout`]). Past [`ServeLimits::max_connections`], a few more
//! connections are served only `/healthz` and a 503; past those, they are closed as they arrive.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::limits::ServeLimits;
use crate::state::AppState;

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
    let limits = *state.limits();
    let router = crate::router(state.clone());
    let health_only = crate::health_router();
    let serving = Arc::new(Semaphore::new(limits.max_connections));
    let overflow = Arc::new(Semaphore::new(OVERFLOW_CONNECTIONS));
    let closing = CancellationToken::new();
    let mut connections = JoinSet::new();
    let housekeeping = tokio::spawn(housekeeping(state.clone()));
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
                if let Ok(permit) = serving.clone().try_acquire_owned() {
                    let (router, closing) = (router.clone(), closing.clone());
                    connections.spawn(async move {
                        connection(stream, peer, router, limits, closing, true).await;
                        drop(permit);
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
    state.shutdown.cancel();
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
    housekeeping.abort();
    state.refusals.log_summary();
    Ok(())
}

async fn housekeeping(state: AppState) {
    loop {
        tokio::time::sleep(HOUSEKEEPING_EVERY).await;
        state.refusals.log_summary();
        state.rates.prune();
    }
}

/// Where a connection stands, as its watchdog sees it. Times are milliseconds since the connection opened.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    /// Requests whose response has not finished.
    in_flight: AtomicUsize,
    /// When the connection last had no request in flight.
    idle_since: AtomicU64,
    /// When the first byte of the next request head arrived; `NONE` while none has.
    head_started: AtomicU64,
}

const NONE: u64 = u64::MAX;

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn read_bytes(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let _ = self.head_started.compare_exchange(
                NONE,
                self.now(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(NONE, Ordering::Release);
    }

    fn response_finished(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle_since.store(self.now(), Ordering::Release);
        }
    }

    /// Why the connection should be closed now, if it should.
    fn overdue(&self, limits: &ServeLimits) -> Option<&'static str> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let now = self.now();
        let since = |at: u64| Duration::from_millis(now.saturating_sub(at));
        match self.head_started.load(Ordering::Acquire) {
            NONE if since(self.idle_since.load(Ordering::Acquire)) > limits.idle_timeout => {
                Some("idle")
            }
            NONE => None,
            started if since(started) > limits.header_timeout => Some("slow request head"),
            _ => None,
        }
    }
}

/// The socket, noting when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read_bytes();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A response body that tells the watchdog when the response is over (finished or dropped).
struct Tracked {
    body: Body,
    finished: Option<Arc<Activity>>,
}

impl Tracked {
    fn finish(&mut self) {
        if let Some(activity) = self.finished.take() {
            activity.response_finished();
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.finish();
    }
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            self.finish();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
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
                    Tracked {
                        body,
                        finished: Some(activity),
                    },
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
        haltstate_authority::ErrorCode::TooManyConnections,
        "the server is at its connection limit; retry shortly",
        1,
    )
    .into_response()
}

//! What a connection's watchdog sees: when bytes arrive, when a request starts and its body ends, when its
//! response is over. The socket ([`Watched`]) and both bodies ([`Noted`]) report to one [`Activity`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body::Frame;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::limits::ServeLimits;

/// How long past [`ServeLimits::body_timeout`] the watchdog waits before closing a connection whose body is still
/// arriving: the JSON extractor answers such a body 408 at the limit itself; the watchdog is the backstop for
/// every other handler (the console's forms, routes that read no body).
const BODY_GRACE: Duration = Duration::from_secs(1);

/// Where a connection stands, as its watchdog sees it. Times are milliseconds since the connection opened.
#[derive(Debug)]
pub(crate) struct Activity {
    opened: Instant,
    /// Requests whose response has not finished.
    in_flight: AtomicUsize,
    /// When the connection last had no request in flight.
    idle_since: AtomicU64,
    /// When the first byte of the next request head arrived; `NONE` while none has.
    head_started: AtomicU64,
    /// When the request in flight started sending a body that has not ended yet; `NONE` while there is none.
    body_started: AtomicU64,
}

const NONE: u64 = u64::MAX;

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
            body_started: AtomicU64::new(NONE),
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

    pub(crate) fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(NONE, Ordering::Release);
    }

    pub(crate) fn response_finished(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle_since.store(self.now(), Ordering::Release);
        }
    }

    fn body_started(&self) {
        self.body_started.store(self.now(), Ordering::Release);
    }

    fn body_finished(&self) {
        self.body_started.store(NONE, Ordering::Release);
    }

    /// Why the connection should be closed now, if it should.
    pub(crate) fn overdue(&self, limits: &ServeLimits) -> Option<&'static str> {
        let now = self.now();
        let since = |at: u64| Duration::from_millis(now.saturating_sub(at));
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // A request is served for as long as it takes (a stream, a slow database), but its body must arrive
            // in time, whatever route it went to.
            return match self.body_started.load(Ordering::Acquire) {
                NONE => None,
                started if since(started) > limits.body_timeout + BODY_GRACE => {
                    Some("slow request body")
                }
                _ => None,
            };
        }
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
pub(crate) struct Watched {
    pub(crate) stream: TcpStream,
    pub(crate) activity: Arc<Activity>,
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

/// A body (a request's or a response's) that tells the watchdog when it is over: read to its end, failed, or
/// dropped unread (a request body hyper then drains or closes under the head timeout).
pub(crate) struct Noted<B> {
    body: B,
    activity: Option<Arc<Activity>>,
    over: fn(&Activity),
}

impl<B: http_body::Body> Noted<B> {
    /// A request body: the watchdog times it from now until it ends, if it has anything to send.
    pub(crate) fn request(body: B, activity: &Arc<Activity>) -> Self {
        let activity = (!body.is_end_stream()).then(|| {
            activity.body_started();
            activity.clone()
        });
        Self {
            body,
            activity,
            over: Activity::body_finished,
        }
    }

    /// A response body: the connection is between requests again once it ends.
    pub(crate) fn response(body: B, activity: Arc<Activity>) -> Self {
        Self {
            body,
            activity: Some(activity),
            over: Activity::response_finished,
        }
    }
}

impl<B> Noted<B> {
    fn finish(&mut self) {
        if let Some(activity) = self.activity.take() {
            (self.over)(&activity);
        }
    }
}

impl<B> Drop for Noted<B> {
    fn drop(&mut self) {
        self.finish();
    }
}

impl<B: http_body::Body + Unpin> http_body::Body for Noted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
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

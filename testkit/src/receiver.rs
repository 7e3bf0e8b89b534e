//! A webhook receiver (or any HTTP collector) on loopback: answers each request with the next scripted status (200 once the script
//! runs out) and keeps what it was sent, headers and bytes, for the test to check.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use crate::background::Background;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: String,
    /// `webhook-signature`.
    pub signature: String,
    /// `content-type`.
    pub content_type: String,
    /// The body's bytes, as sent.
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub answered: u16,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("webhook body is not JSON ({e}): {:?}", self.body))
    }
}

#[derive(Default)]
struct Shared {
    script: VecDeque<u16>,
    received: Vec<Received>,
}

/// The receiver; it stops when dropped.
pub struct WebhookReceiver {
    server: Background,
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookReceiver")
            .field("addr", &self.server.addr)
            .field("shared", &self.shared)
            .finish()
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("received", &self.received.len())
            .finish_non_exhaustive()
    }
}

impl WebhookReceiver {
    /// Listens on a free loopback port, on a thread and runtime of its own (so sync and async tests can use it
    /// alike).
    pub fn start() -> Self {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let router = Router::new()
            .fallback(post(receive))
            .with_state(shared.clone());
        Self {
            server: Background::serve(router, "receiver"),
            shared,
        }
    }

    /// `http://127.0.0.1:port/hook`.
    pub fn url(&self) -> String {
        self.url_at("/hook")
    }

    /// `http://127.0.0.1:port` and `path` (it answers a POST to any path alike).
    pub fn url_at(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr)
    }

    /// Answers the next requests with `statuses`, in order (then 200 again).
    pub fn answer_next(&self, statuses: &[u16]) {
        self.lock().script.extend(statuses);
    }

    /// Everything received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn receive(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut shared = shared.lock().unwrap_or_else(|p| p.into_inner());
    let answered = shared.script.pop_front().unwrap_or(200);
    shared.received.push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        content_type: header("content-type"),
        body: body.to_vec(),
        answered,
    });
    StatusCode::from_u16(answered).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

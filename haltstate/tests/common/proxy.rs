//! A fault-injecting HTTP proxy in front of the real server: requests pass through unless a planned fault
//! matches their path. Records every request it sees.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// What to do with a matching request.
#[derive(Clone)]
pub enum Fault {
    /// Answer this status (with `Retry-After` seconds when given) and a JSON error body.
    Status(u16, Option<u64>),
    /// Answer this status and raw body.
    Body(u16, &'static str),
    /// Never answer within the test's deadlines.
    Hang,
    /// Pass through, then rewrite the JSON answer.
    Rewrite(fn(Value) -> Value),
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
}

struct Plan {
    /// (path contains, fault, remaining uses; None = always)
    faults: Vec<(String, Fault, Option<u32>)>,
    seen: Vec<Seen>,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    plan: Arc<Mutex<Plan>>,
}

pub struct FaultProxy {
    pub base: String,
    plan: Arc<Mutex<Plan>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    pub fn start(upstream: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let plan = Arc::new(Mutex::new(Plan {
            faults: Vec::new(),
            seen: Vec::new(),
        }));
        let state = ProxyState {
            upstream: upstream.to_owned(),
            http: reqwest::Client::new(),
            plan: plan.clone(),
        };
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).unwrap()
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self {
            base,
            plan,
            runtime: Some(runtime),
        }
    }

    /// Applies `fault` to the next `times` requests whose path contains `path` (`None`: every one).
    pub fn fault(&self, path: &str, fault: Fault, times: Option<u32>) {
        self.plan
            .lock()
            .unwrap()
            .faults
            .push((path.to_owned(), fault, times));
    }

    /// Requests seen whose path contains `path`.
    pub fn seen(&self, path: &str) -> Vec<Seen> {
        self.plan
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.path.contains(path))
            .cloned()
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn forward(State(state): State<ProxyState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let fault = {
        let mut plan = state.plan.lock().unwrap();
        plan.seen.push(Seen {
            method: parts.method.clone(),
            path: path.clone(),
            headers: parts.headers.clone(),
        });
        let hit = plan
            .faults
            .iter_mut()
            .find(|(p, _, left)| path.contains(p.as_str()) && left.is_none_or(|n| n > 0));
        hit.map(|(_, fault, left)| {
            if let Some(n) = left {
                *n -= 1;
            }
            fault.clone()
        })
    };
    match fault {
        Some(Fault::Status(status, retry_after)) => {
            let mut response = (
                StatusCode::from_u16(status).unwrap(),
                axum::Json(serde_json::json!({"detail": "injected fault", "code": "injected"})),
            )
                .into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", seconds.to_string().parse().unwrap());
            }
            return response;
        }
        Some(Fault::Body(status, body)) => {
            return (StatusCode::from_u16(status).unwrap(), body).into_response();
        }
        Some(Fault::Hang) => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return StatusCode::GATEWAY_TIMEOUT.into_response();
        }
        _ => {}
    }
    let bytes: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let mut upstream = state
        .http
        .request(parts.method.clone(), format!("{}{path}", state.upstream))
        .body(bytes);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            upstream = upstream.header(name, value);
        }
    }
    let Ok(answer) = upstream.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let text = answer.text().await.unwrap_or_default();
    match fault {
        Some(Fault::Rewrite(rewrite)) => {
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            (status, axum::Json(rewrite(value))).into_response()
        }
        _ => (status, [("content-type", "application/json")], text).into_response(),
    }
}

//! Live inbox: `/ui/events` tells a signed-in page when its tenant's pending approvals changed (an approval
//! requested, decided or expired, here or on another instance), and `/ui/console.js` refreshes the inbox table
//! then. Without script the page still works; it just does not refresh by itself.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use haltstate_types::ApprovalStatus;
use tokio::sync::mpsc;

use crate::state::{AppState, Shared};

/// The script, on every signed-in page: on each change, fetch the inbox again and update the count of waiting
/// approvals in the navigation; on the inbox, swap its table in too, unless the operator has started a decision
/// (typed a reason or opened a rejection: their text would be lost, and the row they are deciding would move).
const SCRIPT: &str = r##""use strict";
(function () {
  if (!window.EventSource || !document.getElementById("pending-count")) { return; }
  var events = new EventSource("/ui/events");
  events.addEventListener("changed", function () {
    var busy = document.querySelectorAll("#inbox input[name=reason], #inbox details[open]");
    fetch("/ui/inbox", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var fetched = new DOMParser().parseFromString(html, "text/html");
        var count = fetched.getElementById("pending-count");
        var shown = document.getElementById("pending-count");
        if (count && shown) { shown.replaceWith(count); }
        for (var i = 0; i < busy.length; i++) {
          if (busy[i].tagName === "DETAILS" || busy[i].value !== "") { return; }
        }
        var next = fetched.getElementById("inbox");
        var here = document.getElementById("inbox");
        if (next && here) { here.replaceWith(next); }
      })
      .catch(function () {});
  });
})();
"##;

pub(crate) async fn script() -> Response {
    let mut response = (StatusCode::OK, SCRIPT).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /ui/events`: `changed` whenever the set of the tenant's pending approvals changes.
pub(crate) async fn events(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let Some(session) = state.sessions.find(&headers, &state.authority) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let slot = match crate::streams::open(
        &state.streams,
        &session.principal.tenant,
        &session.principal.key_id,
        state.limits.max_streams_per_key,
    ) {
        Ok(slot) => slot,
        Err(refused) => return refused.into_response(),
    };
    let (sender, receiver) = mpsc::channel::<Event>(8);
    let tenant = session.principal.tenant.clone();
    tokio::spawn(async move {
        let mut wake = state.authority.subscribe();
        let mut seen = pending_ids(&state, &tenant);
        loop {
            tokio::select! {
                () = sender.closed() => return,
                () = state.shutdown.cancelled() => return,
                _ = wake.recv() => {}
                // New requests are not events, and other instances' decisions may come by polling only.
                () = tokio::time::sleep(state.sse_poll) => {}
            }
            // A session that ended (signed out, key revoked) stops listening.
            if state.sessions.find(&headers, &state.authority).is_none() {
                return;
            }
            let now = pending_ids(&state, &tenant);
            if now != seen {
                seen = now;
                if sender
                    .send(Event::default().event("changed").data("inbox"))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    // The slot goes with the response body: a client that leaves frees it.
    let stream =
        futures_util::stream::unfold((receiver, slot), |(mut receiver, slot)| async move {
            receiver
                .recv()
                .await
                .map(|event| (Ok::<_, Infallible>(event), (receiver, slot)))
        });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The ids of the tenant's pending approvals (`None` when they cannot be read: no change is claimed then).
fn pending_ids(state: &AppState, tenant: &str) -> Option<Vec<String>> {
    state
        .authority
        .approvals(tenant, Some(ApprovalStatus::Pending), 500)
        .ok()
        .map(|approvals| approvals.into_iter().map(|a| a.id).collect())
}

//! The 2026-07-28 round trip for a call that needs a human. To a client that can send its user to a URL (URL
//! elicitation), a pending approval is answered `input_required`: one URL elicitation pointing at the approval's
//! page, and the request's state sealed (a keyed MAC over the approval, the call's argument digest, the agent and
//! the approval's expiry). The client retries the same request with the state; the guard then decides again (the
//! same key finds the approval: run once approved, answer the rejection, or ask again). A state that was forged,
//! has expired or belongs to another call or agent is refused. Never a form: whoever runs the agent would answer
//! it, so an approval is only ever decided on the authority's own page.

use std::time::Duration;

use rmcp::ErrorData as McpError;
use rmcp::model::{
    ElicitRequest, ElicitRequestParams, InputRequest, InputRequests, InputRequiredResult,
    InputResponses, RequestStateCodec, SealOptions,
};
use rmcp::service::{RequestContext, RoleServer};
use serde::{Deserialize, Serialize};

/// The name of the one input the proxy asks for.
pub(crate) const APPROVAL_INPUT: &str = "haltstate_approval";

/// What marks a state as the proxy's own: any other is an upstream's, passed to it untouched.
const PREFIX: &str = "haltstate.";

/// How long a state lives when the approval's expiry is unknown.
const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// Seals and opens request states with the proxy's key.
#[derive(Clone)]
pub(crate) struct Sealer {
    codec: RequestStateCodec,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key>)")
    }
}

/// What a sealed state holds: which approval the call waits for.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Held {
    pub(crate) approval_id: String,
}

impl Sealer {
    /// A sealer with `key`; `None` when it is shorter than 32 bytes.
    pub(crate) fn new(key: impl Into<Vec<u8>>) -> Option<Self> {
        RequestStateCodec::try_new(key)
            .ok()
            .map(|codec| Self { codec })
    }

    /// `input_required` for `approval_id`, decided at `url`, bound to `binding` (the agent and the call's
    /// argument digest) until the approval expires (`ttl`).
    pub(crate) fn ask(
        &self,
        approval_id: &str,
        url: String,
        ttl: Option<Duration>,
        binding: &[u8],
    ) -> Result<InputRequiredResult, McpError> {
        let held = Held {
            approval_id: approval_id.to_owned(),
        };
        let options = SealOptions::new()
            .associated_data(binding)
            .ttl(ttl.unwrap_or(DEFAULT_TTL));
        let sealed = self.codec.seal_json_with(&held, &options).map_err(|e| {
            McpError::internal_error(format!("sealing the request state: {e}"), None)
        })?;
        let state = format!("{PREFIX}{sealed}");
        let elicitation = ElicitRequest::new(ElicitRequestParams::UrlElicitationParams {
            meta: None,
            message: format!(
                "This call needs a human's approval ({approval_id}). Open the page to have it decided, then \
                 retry the same call."
            ),
            url,
            elicitation_id: approval_id.to_owned(),
        });
        let mut inputs = InputRequests::new();
        inputs.insert(
            APPROVAL_INPUT.to_owned(),
            InputRequest::Elicitation(elicitation),
        );
        Ok(InputRequiredResult::new(Some(inputs), Some(state)))
    }

    /// The approval a retried call's `state` names, if it is one this proxy sealed for this `binding` and it has
    /// not expired.
    pub(crate) fn open(&self, state: &str, binding: &[u8]) -> Result<Held, McpError> {
        let sealed = state.strip_prefix(PREFIX).unwrap_or(state);
        self.codec.open_json_with(sealed, binding).map_err(|_| {
            McpError::invalid_params(
                "requestState is not one this server gave for this call (forged, expired, or another call's); \
                 retry without it",
                None,
            )
        })
    }
}

/// Whether a retried call's state is one the proxy gave (else it is the upstream's own).
pub(crate) fn is_ours(state: &str) -> bool {
    state.starts_with(PREFIX)
}

/// Whether the client speaks 2026-07-28 or later and can send its user to a URL.
pub(crate) fn can_open_urls(context: &RequestContext<RoleServer>) -> bool {
    let multi_round_trip = context
        .protocol_version()
        .is_some_and(|version| !version.has_initialize());
    let urls = context
        .client_capabilities()
        .and_then(|capabilities| capabilities.elicitation)
        .is_some_and(|elicitation| elicitation.url.is_some());
    multi_round_trip && urls
}

/// Whether the client's user declined (or dismissed) the approval page: then the call answers pending rather than
/// asking again.
pub(crate) fn declined(responses: Option<&InputResponses>) -> bool {
    responses
        .and_then(|r| r.get(APPROVAL_INPUT))
        .and_then(|response| response.get("action"))
        .and_then(|action| action.as_str())
        .is_some_and(|action| action != "accept")
}

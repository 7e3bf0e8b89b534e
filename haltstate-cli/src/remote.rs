//! The operator API seen from the CLI's `--server` mode.

use haltstate_types::wire::paths::OPERATOR;
use haltstate_types::wire::{
    ApprovalsReply, DecideBody, ErrorBody, KeysReply, KillBody, KillReply, RevokedReply,
};
use haltstate_types::{Approval, ApprovalStatus, KeyInfo, KillState, Verdict};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a remote operator call failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// A required environment variable is missing.
    #[error(
        "{0} is not set; --server needs an operator key in HALTSTATE_TENANT_ID and HALTSTATE_API_KEY"
    )]
    MissingEnv(&'static str),
    /// The server could not be reached.
    #[error("cannot reach {url}: {source}")]
    Connect {
        /// Where.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error.
    #[error("server answered {status} ({code}): {detail}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's `code`.
        code: String,
        /// The server's `detail`.
        detail: String,
    },
    /// The answer was not what the operator API sends.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

/// An operator session against a running server.
pub struct Remote {
    base: String,
    tenant: String,
    key: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// Shows the server and tenant; the operator key as `<redacted>`.
impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("base", &self.base)
            .field("tenant", &self.tenant)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// A session against `base` with the operator key from the environment; `tenant` overrides
    /// `HALTSTATE_TENANT_ID`.
    pub fn from_env(base: &str, tenant: Option<String>) -> Result<Self, RemoteError> {
        let tenant = match tenant {
            Some(tenant) => tenant,
            None => std::env::var("HALTSTATE_TENANT_ID")
                .map_err(|_| RemoteError::MissingEnv("HALTSTATE_TENANT_ID"))?,
        };
        let key = std::env::var("HALTSTATE_API_KEY")
            .map_err(|_| RemoteError::MissingEnv("HALTSTATE_API_KEY"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RemoteError::Protocol(format!("cannot start a runtime: {e}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            tenant,
            key,
            http: reqwest::Client::new(),
            runtime,
        })
    }

    fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, RemoteError> {
        let url = format!("{}{OPERATOR}/{path}", self.base);
        let mut request = self
            .http
            .request(method, &url)
            .header("X-Tenant-Id", &self.tenant)
            .header("X-API-Key", &self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.runtime.block_on(async {
            let response = request
                .send()
                .await
                .map_err(|source| RemoteError::Connect {
                    url: url.clone(),
                    source,
                })?;
            let status = response.status();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| RemoteError::Protocol(e.to_string()))?;
            if !status.is_success() {
                let refusal: ErrorBody = serde_json::from_slice(&bytes).map_err(|e| {
                    RemoteError::Protocol(format!("{status} without an error body: {e}"))
                })?;
                let code = match refusal.code {
                    haltstate_types::Lenient::Known(code) => code.as_str().to_owned(),
                    haltstate_types::Lenient::Unknown(code) => code,
                };
                return Err(RemoteError::Refused {
                    status: status.as_u16(),
                    code,
                    detail: refusal.detail,
                });
            }
            serde_json::from_slice(&bytes).map_err(|e| RemoteError::Protocol(e.to_string()))
        })
    }

    /// Approvals, newest first.
    pub fn approvals(
        &self,
        status: Option<ApprovalStatus>,
        limit: u32,
    ) -> Result<Vec<Approval>, RemoteError> {
        let path = format!(
            "approvals?limit={limit}{}",
            status.map(|s| format!("&status={s}")).unwrap_or_default()
        );
        Ok(self
            .call::<ApprovalsReply>(reqwest::Method::GET, &path, NO_BODY)?
            .approvals)
    }

    /// One approval.
    pub fn approval(&self, id: &str) -> Result<Approval, RemoteError> {
        self.call(
            reqwest::Method::GET,
            &format!("approvals/{}", encode(id)),
            NO_BODY,
        )
    }

    /// Approves or rejects as the key's operator (`approver`, when given, must be that operator).
    pub fn decide(
        &self,
        id: &str,
        verdict: Verdict,
        approver: Option<String>,
        reason: Option<String>,
    ) -> Result<Approval, RemoteError> {
        let verb = match verdict {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        };
        self.call(
            reqwest::Method::POST,
            &format!("approvals/{}/{verb}", encode(id)),
            Some(&DecideBody { reason, approver }),
        )
    }

    /// Sets the kill switch; answers the effective state.
    pub fn set_kill(
        &self,
        agent_id: Option<String>,
        state: KillState,
        actor: Option<String>,
        reason: Option<String>,
    ) -> Result<KillState, RemoteError> {
        let body = KillBody {
            state,
            agent_id,
            actor,
            reason,
        };
        let answer: KillReply = self.call(reqwest::Method::POST, "kill-switch", Some(&body))?;
        Ok(answer.state)
    }

    /// The tenant's keys.
    pub fn keys(&self, live_only: bool) -> Result<Vec<KeyInfo>, RemoteError> {
        Ok(self
            .call::<KeysReply>(
                reqwest::Method::GET,
                &format!("keys?live={live_only}"),
                NO_BODY,
            )?
            .keys)
    }

    /// Revokes a key; answers it and whether it was live.
    pub fn rotate_key(&self, id: &str) -> Result<(KeyInfo, String), RemoteError> {
        let answer: haltstate_types::wire::KeyCreated = self.call(
            reqwest::Method::POST,
            &format!("keys/{}/rotate", encode(id)),
            NO_BODY,
        )?;
        Ok((answer.key, answer.secret))
    }

    pub fn revoke_key(&self, id: &str) -> Result<(KeyInfo, bool), RemoteError> {
        let answer: RevokedReply = self.call(
            reqwest::Method::POST,
            &format!("keys/{}/revoke", encode(id)),
            NO_BODY,
        )?;
        Ok((answer.key, answer.revoked))
    }
}

/// No request body.
const NO_BODY: Option<&()> = None;

/// Percent-encodes a path segment (approval ids are ours, but never trust a path built from input).
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_shows_no_operator_key() {
        let remote = Remote {
            base: "http://127.0.0.1:1".into(),
            tenant: "acme".into(),
            key: "hs_operator_do_not_print".into(),
            http: reqwest::Client::new(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
        };
        let shown = format!("{remote:?}");
        assert!(!shown.contains("hs_operator_do_not_print"), "{shown}");
        assert!(shown.contains("acme"), "{shown}");
    }
}

//! Shared set-up for the examples: an embedded authority in a temp dir by default, or the server named by
//! `HALTSTATE_BASE_URL` (with `HALTSTATE_TENANT_ID`, `HALTSTATE_API_KEY`, and `HALTSTATE_OPERATOR_KEY` for
//! the examples that approve).

use std::path::PathBuf;

use haltstate::authority::{Authority, EvidenceQuery, EvidenceRecord};
use haltstate::{GuardError, HaltStateClient};

/// The policies the examples run under: the same rules as `examples/policies/haltstate.cedar`, without its
/// schedule windows, so the examples behave the same at any hour.
pub const POLICIES: &str = r#"
@id("refunds.small") @reason("refunds up to 100.00 are routine")
permit(principal, action == Action::"refund.create", resource)
when { context.params has amount_cents && context.params.amount_cents <= 10000 };

@id("refunds.large") @reason("refunds over 100.00 need a human approver") @approval("required")
permit(principal, action == Action::"refund.create", resource)
when { context.params has amount_cents && context.params.amount_cents > 10000 && context.params.amount_cents <= 500000 };

@id("export.bounded") @reason("bounded exports by the exporter agent")
permit(principal == Agent::"exporter", action == Action::"data.export", resource)
when { context.params has count && context.params.count <= 10000 };

@id("llm.approved-models") @reason("calls to approved models")
permit(principal, action in [Action::"llm.ask", Action::"chat.complete"], resource)
when { context.params has model && ["gpt-4o-mini", "local-llama"].contains(context.params.model) };
"#;

/// Where the examples run.
#[derive(Debug)]
pub enum Setup {
    /// An authority in this process.
    Embedded {
        /// The authority, for the operator's side of the story.
        authority: Authority,
        /// The temp dir holding its database.
        dir: tempfile::TempDir,
    },
    /// A running server.
    Server {
        /// Its base URL.
        base_url: String,
        /// The tenant.
        tenant: String,
        /// An operator key, when the example needs to approve.
        operator_key: Option<String>,
    },
}

/// Errors of the examples' own set-up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The client refused.
    #[error(transparent)]
    Guard(#[from] GuardError),
    /// The authority refused.
    #[error(transparent)]
    Authority(#[from] haltstate::authority::AuthorityError),
    /// The file system refused.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The operator API refused.
    #[error("operator API: {0}")]
    Operator(String),
}

impl Setup {
    /// An embedded authority in a fresh temp dir, unless `HALTSTATE_BASE_URL` names a server.
    pub fn from_env() -> Result<Self, SetupError> {
        if let Ok(base_url) = std::env::var("HALTSTATE_BASE_URL") {
            return Ok(Setup::Server {
                base_url,
                tenant: std::env::var("HALTSTATE_TENANT_ID").unwrap_or_default(),
                operator_key: std::env::var("HALTSTATE_OPERATOR_KEY").ok(),
            });
        }
        let dir = tempfile::tempdir()?;
        let policy: PathBuf = dir.path().join("policies.cedar");
        std::fs::write(&policy, POLICIES)?;
        let authority = Authority::builder(dir.path().join("haltstate.db"))
            .policy_file(&policy)
            .open()?;
        Ok(Setup::Embedded { authority, dir })
    }

    /// A client for `agent_id`.
    pub fn client(&self, agent_id: &str) -> Result<HaltStateClient, SetupError> {
        Ok(match self {
            Setup::Embedded { authority, dir } => HaltStateClient::builder()
                .authority(authority.clone())
                .tenant("acme")
                .agent_id(agent_id)
                .spool_dir(dir.path().join("spool"))
                .build()?,
            Setup::Server { .. } => haltstate::ClientBuilder::from_env()?
                .agent_id(agent_id)
                .build()?,
        })
    }

    /// Approves as the operator "alice": through the authority's API in-process, or the server's operator API.
    pub async fn approve(&self, approval_id: &str) -> Result<(), SetupError> {
        match self {
            Setup::Embedded { authority, .. } => {
                authority
                    .approve(
                        "acme",
                        approval_id,
                        "alice",
                        Some("customer verified".into()),
                    )
                    .await?;
            }
            Setup::Server {
                base_url,
                tenant,
                operator_key,
            } => {
                let key = operator_key
                    .as_deref()
                    .ok_or_else(|| SetupError::Operator("set HALTSTATE_OPERATOR_KEY".into()))?;
                let response = reqwest::Client::new()
                    .post(format!(
                        "{base_url}/api/haltstate/v1/approvals/{approval_id}/approve"
                    ))
                    .header("X-Tenant-Id", tenant)
                    .header("X-API-Key", key)
                    .json(&serde_json::json!({ "reason": "customer verified" }))
                    .send()
                    .await
                    .map_err(|e| SetupError::Operator(e.to_string()))?;
                if !response.status().is_success() {
                    return Err(SetupError::Operator(
                        response.text().await.unwrap_or_default(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The evidence for one idempotency key (embedded only; a server's operator API has the same query).
    pub fn evidence(&self, key: &str) -> Vec<EvidenceRecord> {
        match self {
            Setup::Embedded { authority, .. } => authority
                .evidence(
                    "acme",
                    &EvidenceQuery {
                        idempotency_key: Some(key.into()),
                        ..Default::default()
                    },
                )
                .unwrap_or_default(),
            Setup::Server { .. } => Vec::new(),
        }
    }
}

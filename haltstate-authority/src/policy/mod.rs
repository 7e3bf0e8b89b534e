//! Policies in Cedar: loaded from a file, validated at load, swapped atomically at runtime.
//!
//! The mapping is pinned because operators and docs rely on it:
//! principal `Agent::"<agent_id>"`, action `Action::"<action>"`, resource `Resource::"<ref>"` (`"none"` when the
//! call names none), context `{ tenant, params, risk, hour (UTC 0-23), weekday (0 = Monday) }`.
//!
//! A satisfied `forbid` denies; no satisfied `permit` denies ("no policy permits this action"); a satisfied
//! permit annotated `@approval("required")` requires approval; anything else allows. A policy whose condition
//! fails to evaluate (a missing attribute, a type mismatch) denies too: Cedar would skip it, and a skipped
//! `forbid` would fail open.
//!
//! ```
//! use haltstate_authority::{ActionRequest, Decision, PolicyEngine};
//! use serde_json::json;
//!
//! let engine = PolicyEngine::from_source("refunds.cedar", r#"
//!     @id("refunds.small") @reason("small refunds are routine")
//!     permit(principal, action == Action::"refund.create", resource)
//!     when { context.params has amount_cents && context.params.amount_cents <= 10000 };
//! "#)?;
//! let now = time::OffsetDateTime::now_utc();
//! let small = ActionRequest::new("billing", "refund.create").param("amount_cents", json!(4_500));
//! assert_eq!(engine.decide("acme", &small, now).decision, Decision::Allow);
//! let large = ActionRequest::new("billing", "refund.create").param("amount_cents", json!(90_000));
//! assert_eq!(engine.decide("acme", &large, now).decision, Decision::Deny);
//! # Ok::<(), haltstate_authority::PolicyError>(())
//! ```

mod analysis;
mod compile;
mod context;
mod diagnostic;
mod reads;
mod usage;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::{ArcSwap, ArcSwapOption};
use cedar_policy::{Authorizer, Entities, Request};
use time::OffsetDateTime;

pub use analysis::PolicyWarning;
pub use compile::CompiledPolicies;
pub use diagnostic::{PolicyDiagnostic, PolicyError};
pub use usage::{Usage, UsageWindow};

use crate::policy_decision::PolicyDecision;
use haltstate_types::ActionRequest;
use haltstate_types::Decision;

/// The reason given when nothing permits an action.
pub const NO_POLICY_PERMITS: &str = "no policy permits this action";

/// The live policy set. Cheap to share; decisions never block on a reload.
#[derive(Debug)]
pub struct PolicyEngine {
    current: ArcSwap<CompiledPolicies>,
    /// A whole candidate set decided beside the live one (`serve --shadow FILE`); without it, the live set's own
    /// `@mode("shadow")` policies are.
    shadow: ArcSwapOption<CompiledPolicies>,
    authorizer: Authorizer,
    entities: Entities,
}

impl PolicyEngine {
    /// An engine with no policies: every decision is DENY.
    pub fn empty() -> Self {
        Self::with(CompiledPolicies::empty())
    }

    /// An engine over the policies in `source`; `name` appears in diagnostics.
    pub fn from_source(name: &str, source: &str) -> Result<Self, PolicyError> {
        Ok(Self::with(CompiledPolicies::compile(name, source)?))
    }

    /// An engine over the policy file at `path`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        Ok(Self::with(load_file(path.as_ref())?))
    }

    fn with(policies: CompiledPolicies) -> Self {
        Self {
            current: ArcSwap::from_pointee(policies),
            shadow: ArcSwapOption::empty(),
            authorizer: Authorizer::new(),
            entities: Entities::empty(),
        }
    }

    /// Replaces the live set with the file at `path`. On any error the old set stays in force and the error
    /// is returned; decisions in flight finish on whichever set they started with. A set of no policies does not
    /// replace one that has some ([`PolicyError::Empty`]): a file truncated or emptied by mistake (or by someone
    /// who can write it) would deny every action of every tenant; the kill switch is the way to stop them all.
    pub fn reload_file(&self, path: impl AsRef<Path>) -> Result<usize, PolicyError> {
        self.replace(load_file(path.as_ref())?)
    }

    /// Replaces the live set with `source`, under the same rule as [`reload_file`](Self::reload_file).
    pub fn reload_source(&self, name: &str, source: &str) -> Result<usize, PolicyError> {
        self.replace(CompiledPolicies::compile(name, source)?)
    }

    fn replace(&self, policies: CompiledPolicies) -> Result<usize, PolicyError> {
        let count = policies.len();
        let current = self.current.load().len();
        if count == 0 && current > 0 {
            return Err(PolicyError::Empty { current });
        }
        self.current.store(Arc::new(policies));
        Ok(count)
    }

    /// Decides every action beside the live set under the policies of `path` too, recording what they would
    /// decide (never enforcing it); replaces the live set's own `@mode("shadow")` policies as the shadow.
    pub fn set_shadow_file(&self, path: impl AsRef<Path>) -> Result<usize, PolicyError> {
        let policies = load_file(path.as_ref())?;
        let count = policies.len();
        self.shadow.store(Some(Arc::new(policies)));
        Ok(count)
    }

    /// The shadow set in force: the `--shadow` file's, or the live set's with its shadow policies live.
    pub fn shadow(&self) -> Option<Arc<CompiledPolicies>> {
        self.shadow
            .load_full()
            .or_else(|| self.current.load().shadow.clone())
    }

    /// Whether deciding `action` reads `context.usage`, in the live or the shadow set: then the decision is made
    /// inside the transaction that counts usage.
    pub fn reads_usage(&self, action: &str) -> bool {
        self.current.load().reads_usage(action)
            || self
                .shadow()
                .is_some_and(|shadow| shadow.reads_usage(action))
    }

    /// The set in force now.
    pub fn current(&self) -> Arc<CompiledPolicies> {
        self.current.load_full()
    }

    /// Decides one action for `tenant` at `now`.
    pub fn decide(
        &self,
        tenant: &str,
        request: &ActionRequest,
        now: OffsetDateTime,
    ) -> PolicyDecision {
        self.decide_with_usage(tenant, request, now, None)
    }

    /// Decides one action given the agent's usage of it; a policy reading `context.usage` without usage given
    /// fails to evaluate, which denies.
    pub fn decide_with_usage(
        &self,
        tenant: &str,
        request: &ActionRequest,
        now: OffsetDateTime,
        usage: Option<&Usage>,
    ) -> PolicyDecision {
        let started = Instant::now();
        let live = self.current.load_full();
        let mut decision = self.evaluate(&live, tenant, request, now, usage);
        if let Some(shadow) = self.shadow() {
            let would = self.evaluate(&shadow, tenant, request, now, usage);
            decision.shadow = Some(crate::policy_decision::ShadowDecision {
                decision: would.decision,
                policy_id: would.policy_id,
            });
        }
        decision.latency = started.elapsed();
        decision
    }

    fn evaluate(
        &self,
        policies: &CompiledPolicies,
        tenant: &str,
        request: &ActionRequest,
        now: OffsetDateTime,
        usage: Option<&Usage>,
    ) -> PolicyDecision {
        let slice = policies.slice(&request.action);
        if slice.set.is_empty() {
            return PolicyDecision::deny(NO_POLICY_PERMITS);
        }
        let usage = usage.map(|usage| (usage, &slice.usage));
        let context = match context::build_context(tenant, request, now, slice.reads, usage) {
            Ok(context) => context,
            Err(why) => return PolicyDecision::deny(format!("invalid params: {why}")),
        };
        let types = &policies.types;
        let cedar_request = match Request::new(
            types.agent_uid(&request.agent_id),
            types.action_uid(&request.action),
            types.resource_uid(request.resource.as_deref()),
            context,
            None,
        ) {
            Ok(r) => r,
            Err(why) => return PolicyDecision::deny(format!("invalid request: {why}")),
        };
        let response = self
            .authorizer
            .is_authorized(&cedar_request, &slice.set, &self.entities);
        let diagnostics = response.diagnostics();

        // An erroring policy is skipped by Cedar; an erroring forbid must not fail open.
        if let Some(error) = diagnostics.errors().next() {
            let cedar_policy::AuthorizationError::PolicyEvaluationError(failed) = error;
            let policy_id = policies.meta.get(failed.policy_id()).map(|m| m.id.clone());
            tracing::warn!(policy_id = policy_id.as_deref(), error = %error, "policy failed to evaluate; denying");
            return PolicyDecision {
                decision: Decision::Deny,
                reason: format!(
                    "policy {} failed to evaluate: {error}",
                    policy_id.as_deref().unwrap_or("?")
                ),
                policy_id,
                latency: Default::default(),
                approvals_required: 1,
                policy_version: Some(policies.version.clone()),
                shadow: None,
            };
        }

        let mut satisfied: Vec<_> = diagnostics
            .reason()
            .filter_map(|id| policies.meta.get(id))
            .collect();
        satisfied.sort_by_key(|meta| meta.order);
        let chosen = match response.decision() {
            cedar_policy::Decision::Deny => satisfied.first().copied(),
            cedar_policy::Decision::Allow => satisfied
                .iter()
                .find(|meta| meta.approval_required)
                .or(satisfied.first())
                .copied(),
        };
        let Some(meta) = chosen else {
            return PolicyDecision::deny(NO_POLICY_PERMITS);
        };
        let decision = match response.decision() {
            cedar_policy::Decision::Deny => Decision::Deny,
            cedar_policy::Decision::Allow if meta.approval_required => Decision::ApprovalRequired,
            cedar_policy::Decision::Allow => Decision::Allow,
        };
        let reason = meta.reason.clone().unwrap_or_else(|| match decision {
            Decision::Deny => format!("forbidden by policy {}", meta.id),
            Decision::ApprovalRequired => format!("policy {} requires approval", meta.id),
            Decision::Allow => format!("permitted by policy {}", meta.id),
        });
        PolicyDecision {
            decision,
            policy_id: Some(meta.id.clone()),
            reason,
            latency: Default::default(),
            approvals_required: meta.approvals.max(1),
            policy_version: Some(policies.version.clone()),
            shadow: None,
        }
    }
}

fn load_file(path: &Path) -> Result<CompiledPolicies, PolicyError> {
    let source = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
        path: path.to_owned(),
        source,
    })?;
    CompiledPolicies::compile(&path.display().to_string(), &source)
}

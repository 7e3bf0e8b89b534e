//! What the guard macros expand to call. Not a public API: names and signatures here change without notice.

use std::sync::{Arc, LazyLock};

use sha2::{Digest, Sha256};

pub use crate::action::Action;
pub use crate::client::HaltStateClient;
pub use crate::error::GuardError;
pub use crate::fail_mode::FailMode;
pub use crate::guarded::{GuardedReturn, KeyArg, ReturnKit, checked_return};
pub use crate::permit::Permit;
pub use crate::redact::secret;
pub use haltstate_types::Outcome;

/// Anything a macro's `client = ...` may name: a client, a reference to one, a `LazyLock`, an `Arc`, or the
/// `Result` a constructor answered (`LazyLock::new(HaltStateClient::from_env)`): a client that could not be made is
/// every guarded call's error, never a panic.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a HaltState client",
    label = "expected a `HaltStateClient` (or a reference, `Arc`, `LazyLock` or `Result<_, GuardError>` of one)"
)]
pub trait GuardClient {
    /// The client, or why there is none.
    fn guard_client(&self) -> Result<&HaltStateClient, &GuardError>;
}

impl GuardClient for HaltStateClient {
    fn guard_client(&self) -> Result<&HaltStateClient, &GuardError> {
        Ok(self)
    }
}

impl GuardClient for Result<HaltStateClient, GuardError> {
    fn guard_client(&self) -> Result<&HaltStateClient, &GuardError> {
        self.as_ref()
    }
}

impl<T: GuardClient + ?Sized> GuardClient for &T {
    fn guard_client(&self) -> Result<&HaltStateClient, &GuardError> {
        (**self).guard_client()
    }
}

impl<T: GuardClient + ?Sized> GuardClient for &mut T {
    fn guard_client(&self) -> Result<&HaltStateClient, &GuardError> {
        (**self).guard_client()
    }
}

impl<T: GuardClient + ?Sized> GuardClient for Arc<T> {
    fn guard_client(&self) -> Result<&HaltStateClient, &GuardError> {
        (**self).guard_client()
    }
}

impl<T: GuardClient + ?Sized> GuardClient for Box<T> {
    fn guard_client(&self) -> Result<&HaltStateClient, &GuardError> {
        (**self).guard_client()
    }
}

impl<T: GuardClient, F: FnOnce() -> T> GuardClient for LazyLock<T, F> {
    fn guard_client(&self) -> Result<&HaltStateClient, &GuardError> {
        (**self).guard_client()
    }
}

/// The client a macro uses: a handle of the named one (cheap: an `Arc`), so no borrow outlives this call.
pub fn client_of<C: GuardClient + ?Sized>(client: &C) -> Result<HaltStateClient, GuardError> {
    client.guard_client().cloned().map_err(Clone::clone)
}

/// The global client, for macros that name none.
pub fn global_client() -> Result<HaltStateClient, GuardError> {
    crate::global::global().cloned()
}

/// Builds the action from the macro's arguments.
pub fn action(name: &str, agent: Option<&str>, key: Option<String>) -> Action {
    let mut action = Action::new(name);
    if let Some(agent) = agent {
        action = action.agent(agent);
    }
    if let Some(key) = key {
        action = action.key(key);
    }
    action
}

/// The digest of a guarded call's arguments, computed in the process (the values never leave it): the same
/// arguments are the same operation, different ones a different operation.
#[derive(Debug)]
pub struct ArgDigest {
    hasher: Sha256,
    failed: Option<String>,
}

impl ArgDigest {
    /// An empty digest.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self {
            hasher: Sha256::new(),
            failed: None,
        }
    }

    /// Adds one argument, by name.
    pub fn add(&mut self, name: &str, value: &dyn KeyArg) {
        match value.canonical() {
            Ok(bytes) => {
                // Lengths first, so no two (name, value) sequences give the same bytes.
                for part in [name.as_bytes(), &bytes] {
                    self.hasher
                        .update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
                    self.hasher.update(part);
                }
            }
            Err(why) => {
                self.failed.get_or_insert_with(|| {
                    format!("argument `{name}` cannot be digested into the key: {why}")
                });
            }
        }
    }

    fn finish(self) -> Result<String, GuardError> {
        match self.failed {
            Some(why) => Err(GuardError::Config(why)),
            None => Ok(hex::encode(self.hasher.finalize())),
        }
    }
}

/// The key `haltstate_guard` (and `guard` without a key) derives: a digest of the action, the agent and every
/// argument's value, so a different call is a different operation and the same call the same one.
pub fn derived_key(
    action: &Action,
    client: &HaltStateClient,
    arguments: ArgDigest,
) -> Result<String, GuardError> {
    let request = client.action_request(action)?;
    let mut hasher = Sha256::new();
    for part in [
        request.action.as_bytes(),
        request.agent_id.as_bytes(),
        arguments.finish()?.as_bytes(),
    ] {
        hasher.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        hasher.update(part);
    }
    Ok(format!(
        "hs:{}:{}",
        request.action,
        &hex::encode(hasher.finalize())[..32]
    ))
}

/// A key of its own for each call: what `openai_guard` uses when given no `idempotency_key`, because two LLM
/// calls with the same model and different prompts are different operations (and the prompt never leaves
/// the process, so it cannot be part of a derived key).
pub fn fresh_key(action: &str) -> String {
    format!("{action}:{}", uuid::Uuid::new_v4().simple())
}

/// Parses one approvals-stream line as the subscriber does; for the fuzz target. Never panics.
pub fn parse_sse_line(line: &str) -> bool {
    crate::transport::cursor::parse_line_for_fuzzing(line)
}

/// Guards, from async code.
pub async fn guard(client: &HaltStateClient, action: Action) -> Result<Permit, GuardError> {
    client.guard(action).await
}

/// Guards, and when approval is pending waits up to `timeout_s` for a human, then guards again.
pub async fn guard_waiting(
    client: &HaltStateClient,
    action: Action,
    timeout_s: u64,
) -> Result<Permit, GuardError> {
    match client.guard(action.clone()).await {
        Err(GuardError::ApprovalPending { approval_id, .. }) => {
            client
                .wait_for_approval(&approval_id, std::time::Duration::from_secs(timeout_s))
                .await?;
            client.guard(action).await
        }
        other => other,
    }
}

/// Guards, from sync code.
pub fn guard_blocking(client: &HaltStateClient, action: Action) -> Result<Permit, GuardError> {
    crate::runtime::block_on(client.guard(action))
}

/// Reports the body's outcome, from async code. A report failure is logged: the body's own result is what
/// the caller gets.
pub async fn finish(permit: Permit, (outcome, error): (Outcome, Option<String>)) {
    if let Err(error) = permit.finish(outcome, error).await {
        tracing::error!(%error, "outcome of a guarded fn could not be reported");
    }
}

/// Reports the body's outcome, from sync code.
pub fn finish_blocking(permit: Permit, (outcome, error): (Outcome, Option<String>)) {
    if let Err(error) = permit.finish_blocking(outcome, error) {
        tracing::error!(%error, "outcome of a guarded fn could not be reported");
    }
}

/// Runs the body as an `FnOnce`, so it may move out of (and return borrows of) its captures.
#[inline(always)]
pub fn call_once<R, F: FnOnce() -> R>(body: F) -> R {
    body()
}

/// Looks for LLM usage in a guarded fn's output: `(&UsageProbe(&out)).usage_of()` finds it when the `Ok` value
/// implements [`Usage`](crate::openai::Usage), and answers `None` otherwise (autoref specialization: the
/// first impl applies by value, the fallback only through one more reference).
#[allow(missing_debug_implementations)]
pub struct UsageProbe<'a, T>(pub &'a T);

/// The probe's answer when the `Ok` value has usage.
pub trait HasUsage {
    /// The usage.
    fn usage_of(&self) -> Option<haltstate_types::LlmUsage>;
}

impl<T: crate::openai::Usage, E> HasUsage for UsageProbe<'_, Result<T, E>> {
    fn usage_of(&self) -> Option<haltstate_types::LlmUsage> {
        self.0
            .as_ref()
            .ok()
            .and_then(crate::openai::Usage::llm_usage)
    }
}

/// The probe's answer otherwise.
pub trait NoUsage {
    /// Nothing.
    fn usage_of(&self) -> Option<haltstate_types::LlmUsage> {
        None
    }
}

impl<T> NoUsage for &UsageProbe<'_, T> {}

/// Reports the body's outcome with the LLM usage found in it, from async code.
pub async fn finish_with_usage(
    mut permit: Permit,
    ended: (Outcome, Option<String>),
    usage: Option<haltstate_types::LlmUsage>,
) {
    if let Some(usage) = usage {
        permit.set_usage(usage);
    }
    finish(permit, ended).await;
}

/// Reports the body's outcome with the LLM usage found in it, from sync code.
pub fn finish_blocking_with_usage(
    mut permit: Permit,
    ended: (Outcome, Option<String>),
    usage: Option<haltstate_types::LlmUsage>,
) {
    if let Some(usage) = usage {
        permit.set_usage(usage);
    }
    finish_blocking(permit, ended);
}

/// Marks the permit of an async body: dropped mid-body means the future was cancelled.
pub fn cancellable(mut permit: Permit) -> Permit {
    permit.set_drop_outcome(Outcome::Cancelled);
    permit
}

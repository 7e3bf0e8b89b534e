//! Who a tool call over HTTP acts as. Whatever authenticated the HTTP request puts a [`Caller`] in its
//! extensions; [`Guarded`](crate::Guarded) guards the call as that caller's agent, through that caller's client.
//! Without one (stdio, or a server that authenticates nobody) the call is the configured agent's.

use std::future::Future;
use std::pin::Pin;

use haltstate::HaltStateClient;
use rmcp::model::Extensions;

/// The agent a request acts as, and the client its guard goes through (the caller's own key, when the authority
/// is a server).
#[derive(Debug, Clone)]
pub struct Caller {
    agent: String,
    client: HaltStateClient,
}

impl Caller {
    /// `agent`, guarded through `client`.
    pub fn new(agent: impl Into<String>, client: HaltStateClient) -> Self {
        Self {
            agent: agent.into(),
            client,
        }
    }

    /// The agent.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The client its calls are guarded through.
    pub fn client(&self) -> &HaltStateClient {
        &self.client
    }

    /// The caller an HTTP request's authentication left in a tool call's context, if any.
    pub(crate) fn of(extensions: &Extensions) -> Option<&Caller> {
        extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Caller>())
    }
}

/// Why a request is refused before any tool is called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No key, a wrong one, a revoked one, or one that acts as no single agent: all look the same to the caller.
    #[error("an agent's API key is required (X-API-Key or Authorization: Bearer)")]
    Unauthenticated,
    /// The authority could not be asked.
    #[error("the authority cannot be reached to check the key: {0}")]
    Unavailable(String),
}

/// A boxed future, as [`Callers`] answers.
pub type CallerFuture<'a> = Pin<Box<dyn Future<Output = Result<Caller, Refusal>> + Send + 'a>>;

/// How a request's API key (if it sent one) becomes the caller it acts as.
pub trait Callers: Send + Sync + 'static {
    /// The caller `key` is; `None` when the request sent no key.
    fn caller<'a>(&'a self, key: Option<&'a str>) -> CallerFuture<'a>;
}

/// Every request acts as one agent, keys or not: a listener only this machine reaches, standing in for stdio.
#[derive(Debug, Clone)]
pub struct OneAgent(pub Caller);

impl Callers for OneAgent {
    fn caller<'a>(&'a self, _key: Option<&'a str>) -> CallerFuture<'a> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

/// How [`ServerKeys`] makes the client of a key.
type BuildClient = dyn Fn(&str) -> Result<HaltStateClient, haltstate::GuardError> + Send + Sync;

/// Callers whose keys are agent keys of an authority server: each caller's calls are guarded with its own key
/// (the server decides who it is and what it may do; the proxy holds no key of its own). A caller's client is
/// kept for its next requests, up to [`ServerKeys::KEPT`] callers.
pub struct ServerKeys {
    build: Box<BuildClient>,
    kept: std::sync::Mutex<std::collections::HashMap<[u8; 32], Caller>>,
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKeys").finish_non_exhaustive()
    }
}

impl ServerKeys {
    /// Callers kept at once (each holds a client with its own connections).
    pub const KEPT: usize = 64;

    /// `build` makes the client a key's calls go through (the server's URL and tenant, and that key).
    pub fn new(
        build: impl Fn(&str) -> Result<HaltStateClient, haltstate::GuardError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            build: Box::new(build),
            kept: std::sync::Mutex::default(),
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<[u8; 32], Caller>> {
        // The map holds no invariant a panic could break halfway.
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Callers for ServerKeys {
    fn caller<'a>(&'a self, key: Option<&'a str>) -> CallerFuture<'a> {
        Box::pin(async move {
            let key = key.ok_or(Refusal::Unauthenticated)?;
            let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(key.as_bytes()).into();
            if let Some(caller) = self.kept().get(&digest) {
                return Ok(caller.clone());
            }
            let client = (self.build)(key).map_err(|_| Refusal::Unauthenticated)?;
            let agent = client.key_agent().await.map_err(|error| match error {
                haltstate::GuardError::Connection(why) => Refusal::Unavailable(why),
                _ => Refusal::Unauthenticated,
            })?;
            let caller = Caller::new(agent, client);
            let mut kept = self.kept();
            if kept.len() >= Self::KEPT
                && let Some(old) = kept.keys().next().copied()
            {
                kept.remove(&old);
            }
            kept.insert(digest, caller.clone());
            Ok(caller)
        })
    }
}

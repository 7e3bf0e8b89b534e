//! Configuration from the environment, as the other HaltState SDKs read it.
//!
//! | variable | meaning |
//! |---|---|
//! | `HALTSTATE_TENANT_ID` | the tenant (required for HTTP) |
//! | `HALTSTATE_API_KEY` | the API key (required for HTTP) |
//! | `HALTSTATE_BASE_URL` | the authority's URL; when unset, the embedded authority is used if `HALTSTATE_POLICY` is set, else `https://haltstate.ai` |
//! | `HALTSTATE_AGENT_ID` | the default agent id |
//! | `HALTSTATE_TIMEOUT` | per-request timeout in seconds (a positive number) |
//! | `HALTSTATE_FAIL_OPEN` | `true`/`1` to fail open, `false`/`0` (default) to fail closed |
//! | `HALTSTATE_POLICY` | the Cedar policy file of the embedded authority |
//! | `HALTSTATE_DB` | the SQLite file of the embedded authority (default `haltstate.db`) |
//! | `HALTSTATE_REDACTION_KEY` | the key `secret()` values are digested under |
//!
//! A malformed value is a [`GuardError::Config`] naming the variable.

use std::time::Duration;

use crate::builder::ClientBuilder;
use crate::error::GuardError;
use crate::fail_mode::FailMode;

impl ClientBuilder {
    /// A builder configured from the process environment (see [`crate::env`]).
    pub fn from_env() -> Result<Self, GuardError> {
        builder_from(&|name| std::env::var(name).ok())
    }

    /// A builder configured from these variables instead of the process environment, by the same rules
    /// as [`from_env`](Self::from_env): for tests, and for configuration kept elsewhere.
    ///
    /// ```
    /// let error = haltstate::ClientBuilder::from_vars([("HALTSTATE_TENANT_ID", "acme")]).unwrap_err();
    /// assert!(error.to_string().contains("set HALTSTATE_POLICY"));
    /// assert!(error.to_string().contains("HALTSTATE_API_KEY and HALTSTATE_TENANT_ID"));
    /// ```
    pub fn from_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Result<Self, GuardError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let vars: std::collections::HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        builder_from(&|name| vars.get(name).cloned())
    }
}

/// Where variables come from: the process environment, or a map in tests.
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn builder_from(lookup: Lookup<'_>) -> Result<ClientBuilder, GuardError> {
    let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let required = |name: &'static str| {
        var(name).ok_or_else(|| GuardError::Config(format!("{name} is not set")))
    };
    let mut builder = ClientBuilder::default();
    if let Some(agent) = var("HALTSTATE_AGENT_ID") {
        builder = builder.agent_id(agent);
    }
    if let Some(timeout) = var("HALTSTATE_TIMEOUT") {
        let seconds: f64 = timeout
            .trim()
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite() && *s > 0.0)
            .ok_or_else(|| {
                GuardError::Config(format!(
                    "HALTSTATE_TIMEOUT must be a positive number of seconds, got {timeout:?}"
                ))
            })?;
        builder = builder.request_timeout(Duration::from_secs_f64(seconds));
    }
    if let Some(fail_open) = var("HALTSTATE_FAIL_OPEN") {
        let mode = match fail_open.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => FailMode::Open,
            "0" | "false" | "no" | "off" => FailMode::Closed,
            _ => {
                return Err(GuardError::Config(format!(
                    "HALTSTATE_FAIL_OPEN must be true or false, got {fail_open:?}"
                )));
            }
        };
        builder = builder.fail_mode(mode);
    }
    if let Some(key) = var("HALTSTATE_REDACTION_KEY") {
        builder = builder.redaction_key(key);
    }
    if let Some(tenant) = var("HALTSTATE_TENANT_ID") {
        builder = builder.tenant(tenant);
    }
    if let Some(base) = var("HALTSTATE_BASE_URL") {
        return Ok(builder
            .base_url(base)
            .api_key(required("HALTSTATE_API_KEY")?)
            .tenant(required("HALTSTATE_TENANT_ID")?));
    }
    if let Some(policy) = var("HALTSTATE_POLICY") {
        let db = var("HALTSTATE_DB").unwrap_or_else(|| "haltstate.db".to_owned());
        return embedded(builder, policy, db);
    }
    // Neither a server's URL nor a policy file: a server at the default URL, if a key says so. With nothing at
    // all, both ways are named: a first run should not have to guess that an embedded authority exists.
    let Some(key) = var("HALTSTATE_API_KEY") else {
        return Err(GuardError::Config(NOTHING_CONFIGURED.into()));
    };
    Ok(builder
        .api_key(key)
        .tenant(required("HALTSTATE_TENANT_ID")?))
}

/// What `from_env` says when no variable chooses an authority.
const NOTHING_CONFIGURED: &str = "no authority is configured: set HALTSTATE_POLICY (a Cedar policy file; \
     HALTSTATE_DB, default haltstate.db) for the embedded authority, or HALTSTATE_API_KEY and HALTSTATE_TENANT_ID \
     (and HALTSTATE_BASE_URL, default https://haltstate.ai) for a server";

#[cfg(feature = "embedded")]
fn embedded(
    builder: ClientBuilder,
    policy: String,
    db: String,
) -> Result<ClientBuilder, GuardError> {
    // A PostgreSQL URL is shown without its password.
    let db = haltstate_authority::Database::parse(&db);
    let authority = haltstate_authority::Authority::builder(db.clone())
        .policy_file(&policy)
        .open()
        .map_err(|e| {
            GuardError::Config(format!("HALTSTATE_POLICY={policy} HALTSTATE_DB={db}: {e}"))
        })?;
    Ok(builder.authority(authority))
}

#[cfg(not(feature = "embedded"))]
fn embedded(
    _builder: ClientBuilder,
    _policy: String,
    _db: String,
) -> Result<ClientBuilder, GuardError> {
    Err(GuardError::Config(
        "HALTSTATE_POLICY needs the `embedded` feature of the haltstate crate".into(),
    ))
}

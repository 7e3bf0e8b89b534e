//! The process-wide default client, used by code (and the guard macros) that names no client.

use std::sync::OnceLock;

use crate::client::HaltStateClient;
use crate::error::GuardError;

static GLOBAL: OnceLock<HaltStateClient> = OnceLock::new();

/// Sets the default client. Answers `false` (and changes nothing) when one is already set.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let authority = haltstate_authority::Authority::builder(dir.path().join("hs.db")).open()?;
/// let client = haltstate::HaltStateClient::embedded(authority)?;
/// assert!(haltstate::init(client));
/// assert!(haltstate::global().is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn init(client: HaltStateClient) -> bool {
    GLOBAL.set(client).is_ok()
}

/// The default client: the one given to [`init`], else one built from the environment on first use
/// (see [`crate::env`]). A configuration error is returned each time until fixed, never cached as a client.
pub fn global() -> Result<&'static HaltStateClient, GuardError> {
    if let Some(client) = GLOBAL.get() {
        return Ok(client);
    }
    let client = HaltStateClient::from_env()?;
    // Another thread may have won the race; either client is fine, the first one stays.
    Ok(GLOBAL.get_or_init(|| client))
}

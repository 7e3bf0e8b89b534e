//! The secrets key that seals webhook secrets at rest: made by `keys secrets create`, given to `serve` as a file
//! (or, from the environment or a credential, as the key's text).

use std::path::Path;

use haltstate_authority::webhooks::{Keyring, SecretsKey};

use crate::error::CliError;

/// Creates a key in the new file `out` (mode 0600, never overwritten).
pub(crate) fn create(out: &Path) -> Result<SecretsKey, CliError> {
    let key = SecretsKey::generate();
    crate::private_file::create(out, format!("{}\n", key.expose()).as_bytes())?;
    Ok(key)
}

/// A key given as its text (`hssk_...`) or as the path of a file holding it.
fn read(given: &str) -> Result<SecretsKey, CliError> {
    if given.trim_start().starts_with("hssk_") {
        return SecretsKey::parse(given).map_err(|e| CliError::Usage(e.to_string()));
    }
    let text = std::fs::read_to_string(given)
        .map_err(|e| CliError::Usage(format!("cannot read the secrets key {given}: {e}")))?;
    SecretsKey::parse(&text).map_err(|e| CliError::Usage(format!("{given}: {e}")))
}

/// The keyring of `serve --secrets-key` and `--secrets-key-previous`.
pub(crate) fn keyring(current: Option<&str>, previous: &[String]) -> Result<Keyring, CliError> {
    match current {
        None if previous.is_empty() => Ok(Keyring::default()),
        None => Err(CliError::Usage(
            "--secrets-key-previous needs --secrets-key: the key secrets are resealed with".into(),
        )),
        Some(current) => Ok(Keyring::new(
            read(current)?,
            previous.iter().map(|p| read(p)).collect::<Result<_, _>>()?,
        )),
    }
}

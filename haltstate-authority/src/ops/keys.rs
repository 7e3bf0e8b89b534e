//! API keys, applied: a new key's name is unique among the tenant's live keys; only its hash is stored.

use haltstate_types::{KeySpec, NewKey, Role};

use crate::error::{AuthorityError, Result};
use crate::secrets;
use crate::store::tx::{StoredKey, Tx};

pub(crate) fn create(tx: &mut dyn Tx, tenant: &str, spec: &KeySpec) -> Result<NewKey> {
    let (name, agents) = spec.resolved()?;
    if tx.key_name_taken(tenant, &name)? {
        return Err(AuthorityError::DuplicateKeyName { name });
    }
    let key = secrets::generate();
    tx.insert_api_key(
        tenant,
        &StoredKey {
            id: key.id.clone(),
            name,
            role: spec.role,
            hash: secrets::hash(&key.secret),
            agents: (spec.role == Role::Agent).then(|| agents.to_strings()),
            rate_limit: spec.rate_limit.map(|n| n.get()),
        },
    )?;
    Ok(key)
}

pub(crate) fn revoke(tx: &mut dyn Tx, tenant: &str, id: &str) -> Result<bool> {
    tx.revoke_api_key(tenant, id)
}

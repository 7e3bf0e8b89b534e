//! API keys, applied: a new key's name was never any other key's in the tenant (names are identities: a name
//! that approved once must not approve again through another key); only its hash is stored; every creation,
//! rotation and revocation is in the ledger with who made it.

use haltstate_types::{EvidenceKind, EvidenceRecord, KeySpec, NewKey, Role};

use crate::error::{AuthorityError, Result};
use crate::secrets;
use crate::store::tx::{StoredKey, Tx};

pub(crate) fn create(tx: &mut dyn Tx, tenant: &str, spec: &KeySpec, actor: &str) -> Result<NewKey> {
    let (name, agents) = spec.resolved()?;
    if tx.key_name_taken(tenant, &name)? {
        return Err(AuthorityError::DuplicateKeyName { name });
    }
    let key = secrets::generate();
    tx.insert_api_key(
        tenant,
        &StoredKey {
            id: key.id.clone(),
            name: name.clone(),
            role: spec.role,
            hash: secrets::hash(&key.secret),
            agents: (spec.role == Role::Agent).then(|| agents.to_strings()),
            rate_limit: spec.rate_limit.map(|n| n.get()),
        },
    )?;
    let acting = match spec.role {
        Role::Agent => format!(", acting as {agents}"),
        Role::Operator | Role::Admin => String::new(),
    };
    record(
        tx,
        tenant,
        "created",
        actor,
        &key.id,
        format!("{} key {name}{acting}", spec.role),
    )?;
    Ok(key)
}

pub(crate) fn rotate(tx: &mut dyn Tx, tenant: &str, id: &str, actor: &str) -> Result<NewKey> {
    let secret = secrets::generate().secret;
    if !tx.rotate_api_key(tenant, id, &secrets::hash(&secret))? {
        return Err(AuthorityError::KeyNotFound { id: id.to_owned() });
    }
    // Whoever signed in with the old secret signs in again with the new one.
    tx.end_key_sessions(tenant, id)?;
    record(
        tx,
        tenant,
        "rotated",
        actor,
        id,
        "a new secret; the old one stops working".into(),
    )?;
    Ok(NewKey {
        id: id.to_owned(),
        secret,
    })
}

/// Revokes a live key, with the revoker's reason when given; the console sessions it signed in end with it.
pub(crate) fn revoke(
    tx: &mut dyn Tx,
    tenant: &str,
    id: &str,
    actor: &str,
    reason: Option<&str>,
) -> Result<bool> {
    let revoked = tx.revoke_api_key(tenant, id)?;
    if revoked {
        tx.end_key_sessions(tenant, id)?;
        let text = reason.map_or_else(|| "revoked".to_owned(), |why| format!("revoked: {why}"));
        record(tx, tenant, "revoked", actor, id, text)?;
    }
    Ok(revoked)
}

fn record(
    tx: &mut dyn Tx,
    tenant: &str,
    status: &str,
    actor: &str,
    id: &str,
    reason: String,
) -> Result<()> {
    let mut record = EvidenceRecord::new(EvidenceKind::Key, tenant, tx.now());
    record.status = Some(status.to_owned());
    record.actor = Some(actor.to_owned());
    record.reason = Some(reason);
    let subject = format!("key:{id}");
    record.resource_refs = vec![subject.clone()];
    let seq = tx.append(record)?;
    tx.note_change(tenant, &subject, seq)?;
    Ok(())
}

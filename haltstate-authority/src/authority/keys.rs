//! API keys through the authority: who may ask it anything.
//!
//! - Making: [`create_key`](Authority::create_key), [`create_key_with`](Authority::create_key_with),
//!   [`create_key_as`](Authority::create_key_as) (the secret is in the answer and nowhere else).
//! - Changing: [`rotate_key`](Authority::rotate_key), [`revoke_key`](Authority::revoke_key),
//!   [`revoke_key_as`](Authority::revoke_key_as).
//! - Reading: [`keys`](Authority::keys), [`key`](Authority::key) (never their secrets).
//! - [`authenticate`](Authority::authenticate): who a secret is (remembered for a second).

use haltstate_types::{KeyInfo, KeySpec, NewKey, Principal, Role, validate_name};

use super::Authority;
use crate::error::{AuthorityError, Result};
use crate::ops;
use crate::store::pending::Pending;
use crate::store::tx::Tx;

/// Who the ledger says made a key created or revoked without an admin's name: someone with the database itself
/// (the CLI on `--db`, or a program embedding the authority), which is the root of trust.
pub const LOCAL_ACTOR: &str = "(database)";

impl Authority {
    /// Creates an API key named `name` (for an agent key, acting as the agent of that name), recorded as made by
    /// [`LOCAL_ACTOR`] (whoever holds the database); its secret is in the answer and nowhere else.
    pub fn create_key(&self, tenant: &str, name: &str, role: Role) -> Pending<NewKey> {
        self.create_key_with(tenant, KeySpec::new(name, role))
    }

    /// Creates an API key as `spec` says, recorded as made by [`LOCAL_ACTOR`].
    pub fn create_key_with(&self, tenant: &str, spec: KeySpec) -> Pending<NewKey> {
        self.create_key_as(tenant, spec, LOCAL_ACTOR)
    }

    /// Creates an API key as `spec` says, made by `actor` (an admin's name): the ledger records who made which
    /// key. Names are canonical and never given to a second key of the tenant, not even a revoked one's
    /// ([`AuthorityError::DuplicateKeyName`](crate::AuthorityError::DuplicateKeyName)).
    pub fn create_key_as(&self, tenant: &str, spec: KeySpec, actor: &str) -> Pending<NewKey> {
        if let Err(e) = validate_name("tenant", tenant).and_then(|()| spec.resolved().map(drop)) {
            return Pending::ready(Err(e.into()));
        }
        let (tenant, actor) = (tenant.to_owned(), actor.to_owned());
        self.submit(tenant, move |b, tenant| {
            ops::keys::create(b, tenant, &spec, &actor)
        })
    }

    /// Gives a live key a new secret (same id, name, role and agents), made by `actor`; the old secret stops
    /// working as [`revoke_key`](Self::revoke_key) describes. The way to replace a leaked key without a new
    /// name.
    pub fn rotate_key(&self, tenant: &str, key_id: &str, actor: &str) -> Pending<NewKey> {
        let actor = actor.to_owned();
        self.change_key(tenant, key_id, move |tx, tenant, key_id| {
            ops::keys::rotate(tx, tenant, key_id, &actor)
        })
    }

    /// Revokes a key by id, recorded as done by [`LOCAL_ACTOR`].
    pub fn revoke_key(&self, tenant: &str, key_id: &str) -> Pending<bool> {
        self.revoke_key_as(tenant, key_id, LOCAL_ACTOR)
    }

    /// Revokes a key by id, done by `actor`; answers whether a live key was revoked. This authority forgets the
    /// key as the revocation is written; a request authenticating at that moment, or through another process on
    /// the same database, may still be served for at most [`KEY_CACHE_TTL`](crate::KEY_CACHE_TTL).
    pub fn revoke_key_as(&self, tenant: &str, key_id: &str, actor: &str) -> Pending<bool> {
        self.revoke_key_because(tenant, key_id, actor, None)
    }

    /// Revokes a key as [`revoke_key_as`](Self::revoke_key_as) does, with the revoker's reason in its ledger
    /// record (at most [`MAX_ERROR_TEXT`](haltstate_types::limits::MAX_ERROR_TEXT) bytes). The console sessions the
    /// key signed in end with it.
    pub fn revoke_key_because(
        &self,
        tenant: &str,
        key_id: &str,
        actor: &str,
        reason: Option<&str>,
    ) -> Pending<bool> {
        let reason = match super::given_reason(reason) {
            Ok(reason) => reason,
            Err(e) => return Pending::ready(Err(e)),
        };
        let actor = actor.to_owned();
        self.change_key(tenant, key_id, move |tx, tenant, key_id| {
            ops::keys::revoke(tx, tenant, key_id, &actor, reason.as_deref())
        })
    }

    /// Runs `change` on key `key_id`, forgetting the key's cached authentication before and after: a request
    /// authenticating meanwhile may have put it back.
    fn change_key<T: Send + 'static>(
        &self,
        tenant: &str,
        key_id: &str,
        change: impl FnMut(&mut dyn Tx, &str, &str) -> Result<T> + Send + 'static,
    ) -> Pending<T> {
        self.inner.key_cache.forget(key_id);
        let (tenant, key_id) = (tenant.to_owned(), key_id.to_owned());
        // Only the cache: a queued operation holding the whole authority would keep it alive past its last handle.
        let cache = self.inner.key_cache.clone();
        let mut change = change;
        self.submit(tenant, move |tx, tenant| {
            let changed = change(tx, tenant, &key_id);
            cache.forget(&key_id);
            changed
        })
    }

    /// The tenant's keys, newest first; revoked ones too unless `live_only`. Never their secrets.
    pub fn keys(&self, tenant: &str, live_only: bool) -> Result<Vec<KeyInfo>> {
        self.inner.reads.keys(tenant, live_only)
    }

    /// One key of the tenant.
    pub fn key(&self, tenant: &str, key_id: &str) -> Result<KeyInfo> {
        self.inner
            .reads
            .key_info(tenant, key_id)?
            .ok_or_else(|| AuthorityError::KeyNotFound {
                id: key_id.to_owned(),
            })
    }

    /// Who `secret` authenticates as within `tenant`. Every failure is the same
    /// [`AuthorityError::Unauthenticated`](crate::AuthorityError::Unauthenticated), whether the tenant is unknown or the key wrong. A success is
    /// remembered for [`KEY_CACHE_TTL`](crate::KEY_CACHE_TTL).
    pub fn authenticate(&self, tenant: &str, secret: &str) -> Result<Principal> {
        if tenant.is_empty() || secret.is_empty() || tenant.len() > 128 || secret.len() > 256 {
            return Err(AuthorityError::Unauthenticated);
        }
        if let Some(principal) = self.inner.key_cache.get(tenant, secret) {
            return Ok(principal);
        }
        let principal = self.inner.reads.authenticate(tenant, secret)?;
        self.inner.key_cache.put(tenant, secret, &principal);
        Ok(principal)
    }
}

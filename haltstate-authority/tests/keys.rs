//! API keys: shown once, stored only as hashes, scoped to a tenant, with a role.

#![allow(clippy::unwrap_used)]

mod common;

use common::env;
use haltstate_authority::{AuthorityError, Role};

#[test]
fn a_created_key_authenticates_with_its_tenant_and_role() {
    let env = env();
    let operator = env
        .authority
        .create_key("acme", "alice", Role::Operator)
        .wait()
        .unwrap();
    assert!(operator.secret.starts_with("hs_"));
    let principal = env
        .authority
        .authenticate("acme", &operator.secret)
        .unwrap();
    assert_eq!(
        (
            principal.tenant.as_str(),
            principal.name.as_str(),
            principal.role
        ),
        ("acme", "alice", Role::Operator)
    );
    let agent = env
        .authority
        .create_key("acme", "billing-agent", Role::Agent)
        .wait()
        .unwrap();
    assert_eq!(
        env.authority
            .authenticate("acme", &agent.secret)
            .unwrap()
            .role,
        Role::Agent
    );
}

#[test]
fn wrong_key_unknown_tenant_and_another_tenants_key_all_fail_the_same_way() {
    let env = env();
    let key = env
        .authority
        .create_key("acme", "agent", Role::Agent)
        .wait()
        .unwrap();
    for (tenant, secret) in [
        ("acme", "hs_wrong"),
        ("nobody", key.secret.as_str()),
        ("globex", key.secret.as_str()),
        ("acme", ""),
    ] {
        let error = env.authority.authenticate(tenant, secret).unwrap_err();
        assert!(
            matches!(error, AuthorityError::Unauthenticated),
            "{tenant}: {error}"
        );
    }
}

#[test]
fn each_of_many_keys_of_a_tenant_is_its_own_principal() {
    let env = env();
    let keys: Vec<_> = (0..50)
        .map(|i| {
            let role = if i % 2 == 0 {
                Role::Agent
            } else {
                Role::Operator
            };
            let key = env
                .authority
                .create_key("acme", &format!("agent-{i}"), role)
                .wait()
                .unwrap();
            (i, role, key)
        })
        .collect();
    let other = env
        .authority
        .create_key("globex", "agent-0", Role::Agent)
        .wait()
        .unwrap();
    for (i, role, key) in &keys {
        let principal = env.authority.authenticate("acme", &key.secret).unwrap();
        assert_eq!(principal.name, format!("agent-{i}"));
        assert_eq!(principal.role, *role);
        assert!(env.authority.authenticate("globex", &key.secret).is_err());
    }
    assert_eq!(
        env.authority
            .authenticate("globex", &other.secret)
            .unwrap()
            .tenant,
        "globex"
    );
    // Revoking one key leaves its neighbours alone.
    assert!(
        env.authority
            .revoke_key("acme", &keys[7].2.id)
            .wait()
            .unwrap()
    );
    assert!(
        env.authority
            .authenticate("acme", &keys[7].2.secret)
            .is_err()
    );
    assert!(
        env.authority
            .authenticate("acme", &keys[8].2.secret)
            .is_ok()
    );
}

#[test]
fn revoked_keys_stop_working() {
    let env = env();
    let key = env
        .authority
        .create_key("acme", "agent", Role::Agent)
        .wait()
        .unwrap();
    assert!(env.authority.revoke_key("acme", &key.id).wait().unwrap());
    assert!(!env.authority.revoke_key("acme", &key.id).wait().unwrap());
    assert!(env.authority.authenticate("acme", &key.secret).is_err());
}

#[test]
fn secrets_are_stored_only_as_hashes() {
    let env = env();
    let key = env
        .authority
        .create_key("acme", "agent", Role::Agent)
        .wait()
        .unwrap();
    assert!(
        !format!("{key:?}").contains(&key.secret),
        "Debug must not print the secret"
    );
    let path = env.db_path();
    drop(env.authority);
    let bytes = std::fs::read(&path).unwrap();
    let wal = std::fs::read(path.with_extension("db-wal")).unwrap_or_default();
    let needle = key.secret.as_bytes();
    let contains = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(
        !contains(&bytes) && !contains(&wal),
        "the secret is in the database file"
    );
}

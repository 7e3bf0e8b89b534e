//! API keys: shown once, stored only as hashes, scoped to a tenant, with a role.

#![allow(clippy::unwrap_used)]

mod common;

use common::{env, sqlite_env};
use haltstate_authority::RequestError;
use haltstate_authority::{AgentSet, Authority, AuthorityError, KeySpec, Role};

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
    let env = sqlite_env();
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

#[test]
fn a_key_is_one_identity_its_name_canonical_and_never_reused() {
    let env = env();
    let create = |name: &str, role: Role| env.authority.create_key("acme", name, role).wait();
    let alice = create("Alice", Role::Operator).unwrap();
    let principal = env.authority.authenticate("acme", &alice.secret).unwrap();
    assert_eq!(principal.name, "alice");
    assert!(principal.agents.patterns().is_empty());
    for duplicate in ["alice", "ALICE"] {
        assert!(matches!(
            create(duplicate, Role::Agent),
            Err(AuthorityError::DuplicateKeyName { .. })
        ));
    }
    assert!(matches!(
        create("al\u{200b}ice", Role::Operator),
        Err(AuthorityError::Request(
            haltstate_authority::RequestError::Invalid(_)
        ))
    ));
    // The same name in another tenant is another identity.
    assert!(
        env.authority
            .create_key("globex", "alice", Role::Operator)
            .wait()
            .is_ok()
    );
    // Hostile (issue 21): a revoked key's name is never given to another key: `alice` approved things, and a
    // new `alice` would count as her for approvals she never made.
    env.authority.revoke_key("acme", &alice.id).wait().unwrap();
    assert!(matches!(
        create("alice", Role::Operator),
        Err(AuthorityError::DuplicateKeyName { .. })
    ));
    let listed = env.authority.keys("acme", false).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(env.authority.keys("acme", true).unwrap().is_empty());
    assert!(
        listed
            .iter()
            .any(|k| k.id == alice.id && k.revoked_at.is_some())
    );
}

/// A leaked key is replaced by rotation: same id, name and role, a new secret; the old one stops working; the
/// ledger records each key change and who made it.
#[test]
fn rotation_replaces_a_secret_and_the_ledger_names_who_changed_which_key() {
    let env = env();
    let bob = env
        .authority
        .create_key_as("acme", KeySpec::new("bob", Role::Operator), "root")
        .wait()
        .unwrap();
    let rotated = env
        .authority
        .rotate_key("acme", &bob.id, "root")
        .wait()
        .unwrap();
    assert_eq!(rotated.id, bob.id);
    assert_ne!(rotated.secret, bob.secret);
    assert!(env.authority.authenticate("acme", &bob.secret).is_err());
    let principal = env.authority.authenticate("acme", &rotated.secret).unwrap();
    assert_eq!(
        (principal.name.as_str(), principal.role),
        ("bob", Role::Operator)
    );
    env.authority
        .revoke_key_as("acme", &bob.id, "root")
        .wait()
        .unwrap();
    assert!(matches!(
        env.authority.rotate_key("acme", &bob.id, "root").wait(),
        Err(AuthorityError::KeyNotFound { .. })
    ));
    let changes: Vec<(String, String, Vec<String>)> = env
        .authority
        .evidence("acme", &haltstate_authority::EvidenceQuery::default())
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == haltstate_authority::EvidenceKind::Key)
        .map(|r| (r.status.unwrap(), r.actor.unwrap(), r.resource_refs))
        .collect();
    let key_ref = vec![format!("key:{}", bob.id)];
    assert_eq!(
        changes,
        vec![
            ("created".into(), "root".into(), key_ref.clone()),
            ("rotated".into(), "root".into(), key_ref.clone()),
            ("revoked".into(), "root".into(), key_ref),
        ]
    );
    env.authority.verify_ledger().unwrap();
}

#[test]
fn an_agent_key_acts_as_its_set_and_an_operator_key_as_no_agent() {
    let env = env();
    let fleet = env
        .authority
        .create_key_with(
            "acme",
            KeySpec::new("fleet", Role::Agent)
                .agents(AgentSet::parse(["billing-*", "Exporter"]).unwrap()),
        )
        .wait()
        .unwrap();
    let principal = env.authority.authenticate("acme", &fleet.secret).unwrap();
    assert_eq!(principal.act_as(Some("billing-eu")).unwrap(), "billing-eu");
    assert_eq!(principal.act_as(None).unwrap(), "exporter");
    assert!(matches!(
        principal.act_as(Some("fleet")),
        Err(RequestError::AgentMismatch { .. })
    ));
    assert!(matches!(
        env.authority
            .create_key_with(
                "acme",
                KeySpec::new("op", Role::Operator).agents(AgentSet::one("x").unwrap())
            )
            .wait(),
        Err(AuthorityError::Request(
            haltstate_authority::RequestError::Invalid(_)
        ))
    ));
    let op = env
        .authority
        .create_key("acme", "op", Role::Operator)
        .wait()
        .unwrap();
    let operator = env.authority.authenticate("acme", &op.secret).unwrap();
    assert!(matches!(
        operator.act_as(None),
        Err(RequestError::Forbidden(_))
    ));
    assert_eq!(operator.operator(Some("OP")).unwrap(), "op");
    assert!(matches!(
        operator.operator(Some("someone")),
        Err(RequestError::IdentityMismatch { .. })
    ));
}

#[test]
fn migrating_to_identities_lowercases_names_and_renames_live_duplicates() {
    let env = sqlite_env();
    let path = env.db_path();
    let first = env
        .authority
        .create_key("acme", "bot", Role::Agent)
        .wait()
        .unwrap();
    let second = env
        .authority
        .create_key("acme", "other", Role::Agent)
        .wait()
        .unwrap();
    drop(env.authority);
    common::downgrade_to_schema_5(&path);
    {
        // The shape before identities (schema 4): no agent sets, names as typed, duplicates allowed.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "DROP INDEX api_keys_live_name;
             ALTER TABLE api_keys DROP COLUMN agents;
             ALTER TABLE api_keys DROP COLUMN rate_limit;
             ALTER TABLE idempotency DROP COLUMN claimed_by;
             ALTER TABLE idempotency DROP COLUMN client_token;
             DROP TABLE check_requests;
             UPDATE api_keys SET name = 'Bot' WHERE id = '{}';
             UPDATE api_keys SET name = 'BOT' WHERE id = '{}';
             PRAGMA user_version = 4;",
            first.id, second.id
        ))
        .unwrap();
    }
    let authority = Authority::builder(&path).open().unwrap();
    let one = authority.authenticate("acme", &first.secret).unwrap();
    let two = authority.authenticate("acme", &second.secret).unwrap();
    assert_eq!(one.name, "bot");
    assert_eq!(two.name, format!("bot-{}", &second.id[4..]));
    // A key from before agent sets acts as the agent its (now canonical) name says.
    assert_eq!(one.act_as(None).unwrap(), "bot");
}

#[test]
fn console_sessions_are_shared_by_every_handle_bounded_and_end_with_their_key() {
    use haltstate_authority::{SessionId, SessionLimits};
    use std::time::Duration;
    let env = env();
    let key = env
        .authority
        .create_key("acme", "alice", Role::Operator)
        .wait()
        .unwrap();
    let alice = env.authority.authenticate("acme", &key.secret).unwrap();
    let limits = SessionLimits {
        per_tenant: 2,
        total: 3,
    };
    let ttl = Duration::from_secs(3600);
    let ids: Vec<SessionId> = (0..3)
        .map(|i| SessionId::of_token(&format!("token-{i}")))
        .collect();
    for id in &ids {
        assert!(
            env.authority
                .start_console_session(&alice, id.clone(), ttl, limits)
                .wait()
                .unwrap()
        );
        env.clock.advance(Duration::from_secs(1));
    }
    // Past the tenant's share, its session closest to expiry ended.
    assert!(env.authority.console_session(&ids[0]).unwrap().is_none());
    // Another handle on the database (another instance) knows the same sessions.
    let other = env.second_handle();
    let found = other.console_session(&ids[2]).unwrap().unwrap();
    assert_eq!(
        (found.tenant.as_str(), found.key_id.as_str()),
        ("acme", key.id.as_str())
    );
    assert!(!format!("{:?}", ids[2]).contains("token"), "{:?}", ids[2]);

    // Past the total, another tenant's sign-in is refused; acme's sessions stay.
    let globex_key = env
        .authority
        .create_key("globex", "gina", Role::Operator)
        .wait()
        .unwrap();
    let gina = env
        .authority
        .authenticate("globex", &globex_key.secret)
        .unwrap();
    let g = |i: u32| SessionId::of_token(&format!("globex-{i}"));
    assert!(
        env.authority
            .start_console_session(&gina, g(1), ttl, limits)
            .wait()
            .unwrap()
    );
    assert!(
        !env.authority
            .start_console_session(&gina, g(2), ttl, limits)
            .wait()
            .unwrap()
    );
    assert!(env.authority.console_session(&ids[1]).unwrap().is_some());
    assert!(env.authority.console_session(&g(2)).unwrap().is_none());

    // Ended through one handle, gone for every one; another tenant cannot end it.
    assert!(
        !other
            .end_console_session("globex", ids[1].clone())
            .wait()
            .unwrap()
    );
    assert!(
        other
            .end_console_session("acme", ids[1].clone())
            .wait()
            .unwrap()
    );
    assert!(env.authority.console_session(&ids[1]).unwrap().is_none());

    // Revoking the key ends the sessions it signed in; the history says who and why.
    assert!(
        env.authority
            .revoke_key_because("acme", &key.id, "root", Some("left the team"))
            .wait()
            .unwrap()
    );
    assert!(env.authority.console_session(&ids[2]).unwrap().is_none());
    let history = env.authority.key_history("acme", &key.id, 10).unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0].status.as_deref(), Some("revoked"));
    assert_eq!(history[0].actor.as_deref(), Some("root"));
    assert_eq!(history[0].reason.as_deref(), Some("revoked: left the team"));
    assert_eq!(history[1].status.as_deref(), Some("created"));
    assert!(
        env.authority
            .key_history("globex", &key.id, 10)
            .unwrap()
            .is_empty()
    );

    // A session past its time is gone.
    assert!(
        env.authority
            .start_console_session(&gina, g(3), ttl, limits)
            .wait()
            .is_ok()
    );
    env.clock.advance(ttl + Duration::from_secs(1));
    assert!(env.authority.console_session(&g(1)).unwrap().is_none());
    // An overlong reason is refused, nothing revoked.
    let other_key = env
        .authority
        .create_key("acme", "bob", Role::Operator)
        .wait()
        .unwrap();
    let refused = env
        .authority
        .revoke_key_because("acme", &other_key.id, "root", Some(&"x".repeat(600)))
        .wait();
    assert!(
        matches!(refused, Err(AuthorityError::Request(_))),
        "{refused:?}"
    );
    assert!(
        env.authority
            .authenticate("acme", &other_key.secret)
            .is_ok()
    );
}

#[test]
fn migrating_to_schema_15_finds_the_history_already_in_the_ledger() {
    let env = sqlite_env();
    let path = env.db_path();
    let key = env
        .authority
        .create_key("acme", "alice", Role::Operator)
        .wait()
        .unwrap();
    env.authority
        .revoke_key_because("acme", &key.id, "root", Some("rotated staff"))
        .wait()
        .unwrap();
    env.authority
        .set_kill_switch(
            haltstate_authority::KillScope::Tenant("acme".into()),
            haltstate_authority::KillState::Pause,
            "oncall",
        )
        .wait()
        .unwrap();
    drop(env.authority);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE change_history; DROP TABLE console_sessions; ALTER TABLE ledger DROP COLUMN tree; DROP TABLE tree_checkpoints;\n             PRAGMA user_version = 14;",
        )
        .unwrap();
    let authority = Authority::builder(&path).open().unwrap();
    let keys = authority.key_history("acme", &key.id, 10).unwrap();
    assert_eq!(
        keys.iter()
            .map(|r| r.status.as_deref().unwrap())
            .collect::<Vec<_>>(),
        ["revoked", "created"]
    );
    let kills = authority.kill_switch_history("acme", 10).unwrap();
    assert_eq!(kills.len(), 1);
    assert_eq!(kills[0].actor.as_deref(), Some("oncall"));
}

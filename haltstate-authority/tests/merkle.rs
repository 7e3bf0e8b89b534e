//! Each tenant's evidence as a Merkle tree: every record's inclusion proof verifies at every size and fails for
//! an edited record or proof; every pair of sizes has a consistency proof that verifies and fails for a rewritten
//! earlier head; another tenant's records are not in the tree; trees of an older database are built on migration,
//! and a broken chain stops that migration.

#![allow(clippy::unwrap_used)]

mod common;

use common::{TENANT, env, guard_refund, sqlite_env};
use haltstate_authority::merkle::{TreeHead, verify_consistency, verify_inclusion};
use haltstate_authority::{Authority, AuthorityError};
use proptest::prelude::*;

fn log_of(records: usize) -> common::Env {
    let env = env();
    for i in 0..records {
        env.authority
            .guard(TENANT, guard_refund(100, &format!("r:{i}")))
            .wait()
            .unwrap();
        env.authority
            .guard("globex", guard_refund(100, &format!("g:{i}")))
            .wait()
            .unwrap();
    }
    env
}

#[test]
fn every_record_is_provably_in_every_tree_that_holds_it_and_every_tree_extends_the_ones_before() {
    let env = log_of(20);
    let authority = &env.authority;
    let size = authority.tree_head(TENANT).unwrap().size;
    assert_eq!(size, 20);
    let bodies: Vec<Vec<u8>> = (1..=size)
        .map(|seq| authority.record_body(TENANT, seq).unwrap())
        .collect();
    let heads: Vec<TreeHead> = (0..=size)
        .map(|n| authority.tree_head_at(TENANT, n).unwrap())
        .collect();
    for n in 1..=size {
        let head = heads[n as usize];
        for index in 0..n {
            let proof = authority.inclusion_proof(TENANT, index, n).unwrap();
            verify_inclusion(&proof, &head, index, &bodies[index as usize]).unwrap();
            // An edited record, or a proof for another leaf, does not verify.
            let mut edited = bodies[index as usize].clone();
            edited[10] ^= 1;
            assert!(verify_inclusion(&proof, &head, index, &edited).is_err());
            if n > 1 {
                assert!(
                    verify_inclusion(&proof, &head, (index + 1) % n, &bodies[index as usize])
                        .is_err()
                );
                let mut forged = proof.clone();
                forged[0][0] ^= 1;
                assert!(verify_inclusion(&forged, &head, index, &bodies[index as usize]).is_err());
            }
        }
        for old in 0..=n {
            let proof = authority.consistency_proof(TENANT, old, n).unwrap();
            verify_consistency(&proof, &heads[old as usize], &head).unwrap();
            if old > 0 && old < n {
                let mut rewritten = heads[old as usize];
                rewritten.root[0] ^= 1;
                assert!(verify_consistency(&proof, &rewritten, &head).is_err());
            }
        }
    }
    // Another tenant's record is not a leaf of this tenant's tree.
    let theirs = authority.record_body("globex", 3).unwrap();
    let proof = authority.inclusion_proof(TENANT, 2, size).unwrap();
    assert!(verify_inclusion(&proof, &heads[size as usize], 2, &theirs).is_err());
    // Sizes past the log are refused.
    assert!(matches!(
        authority.tree_head_at(TENANT, size + 1),
        Err(AuthorityError::Request(_))
    ));
    assert!(matches!(
        authority.inclusion_proof(TENANT, size, size),
        Err(AuthorityError::Request(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn random_logs_prove_random_records_and_prefixes(records in 1usize..70, picks in proptest::collection::vec((any::<u64>(), any::<u64>()), 4)) {
        let env = log_of(records);
        let authority = &env.authority;
        let size = records as u64;
        for (a, b) in picks {
            let new = 1 + a % size;
            let index = b % new;
            let head = authority.tree_head_at(TENANT, new).unwrap();
            let body = authority.record_body(TENANT, index + 1).unwrap();
            let proof = authority.inclusion_proof(TENANT, index, new).unwrap();
            prop_assert!(verify_inclusion(&proof, &head, index, &body).is_ok());
            let old = b % (new + 1);
            let earlier = authority.tree_head_at(TENANT, old).unwrap();
            let proof = authority.consistency_proof(TENANT, old, new).unwrap();
            prop_assert!(verify_consistency(&proof, &earlier, &head).is_ok());
            prop_assert!(verify_consistency(&proof, &head, &earlier).is_err() || old == new);
        }
    }
}

#[test]
fn an_older_database_gets_its_trees_on_migration_and_a_broken_chain_stops_it() {
    let env = sqlite_env();
    for i in 0..9 {
        env.authority
            .guard(TENANT, guard_refund(100, &format!("m:{i}")))
            .wait()
            .unwrap();
    }
    let head = env.authority.tree_head(TENANT).unwrap();
    let path = env.db_path();
    drop(env.authority);
    let downgrade =
        "DROP TABLE tlog_hashes; DROP TABLE tree_checkpoints; PRAGMA user_version = 15;";
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(downgrade)
        .unwrap();
    let authority = Authority::builder(&path).open().unwrap();
    assert_eq!(
        authority.tree_head(TENANT).unwrap(),
        head,
        "the same tree, built from the chain"
    );
    drop(authority);

    // An edited record: the chain does not verify, and no tree is built over it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(downgrade).unwrap();
    conn.execute(
        "UPDATE ledger SET body = CAST(replace(CAST(body AS TEXT), 'm:4', 'm:X') AS BLOB) WHERE tenant = ?1 AND seq = 5",
        [TENANT],
    )
    .unwrap();
    drop(conn);
    let refused = Authority::builder(&path).open();
    assert!(
        matches!(refused, Err(AuthorityError::LedgerBroken { .. })),
        "{refused:?}"
    );
}

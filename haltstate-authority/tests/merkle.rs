//! Each tenant's evidence as a Merkle tree: every record's inclusion proof verifies at every size and fails for
//! an edited record or proof; every pair of sizes has a consistency proof that verifies and fails for a rewritten
//! earlier head; another tenant's records are not in the tree; trees of an older database are built on migration,
//! and a broken chain stops that migration. Proof packs hold exactly the records asked for; signed tree heads carry
//! witnesses' cosignatures; a forgery re-signed with another key is caught.

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
    let downgrade = "ALTER TABLE ledger DROP COLUMN tree; DROP TABLE tree_checkpoints; PRAGMA user_version = 15;";
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

/// Schema 24 moves each record's stored hashes from `tlog_hashes` (one row per hash) into the record's row, as
/// they were: an intact tree keeps its head and proofs; a record missing a hash keeps those before it (its tree
/// reads as damaged, as before); an altered hash moves altered (the move recomputes nothing).
#[test]
fn a_schema_23_files_tree_hashes_move_into_their_records_rows_as_they_were() {
    use tlog_tiles::stored_hash_index;
    let env = sqlite_env();
    for i in 0..9 {
        env.authority
            .guard(TENANT, guard_refund(100, &format!("v:{i}")))
            .wait()
            .unwrap();
    }
    let head = env.authority.tree_head(TENANT).unwrap();
    let proof = env.authority.inclusion_proof(TENANT, 2, 9).unwrap();
    let path = env.db_path();
    drop(env.authority);
    // The file as schema 23 kept it, and `damage` done to its hashes.
    let set_back = |damage: &str| {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(haltstate_testkit::ledger::SQLITE_TLOG_HASHES_TABLE)
            .unwrap();
        let rows: Vec<(String, u64, Vec<u8>)> = conn
            .prepare("SELECT tenant, seq, tree FROM ledger")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        for (tenant, seq, tree) in rows {
            let start = stored_hash_index(0, seq - 1);
            for (index, hash) in (start..).zip(tree.chunks(32)) {
                conn.execute(
                    "INSERT INTO tlog_hashes (tenant, idx, hash) VALUES (?1, ?2, ?3)",
                    rusqlite::params![tenant, index, hash],
                )
                .unwrap();
            }
        }
        conn.execute_batch(&format!(
            "ALTER TABLE ledger DROP COLUMN tree; {damage} PRAGMA user_version = 23;"
        ))
        .unwrap();
    };
    let tree_of = |seq: u64| -> Option<Vec<u8>> {
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT tree FROM ledger WHERE tenant = ?1 AND seq = ?2",
                rusqlite::params![TENANT, seq],
                |row| row.get(0),
            )
            .unwrap()
    };
    set_back("");
    let reopened = Authority::builder(&path).open().unwrap();
    assert_eq!(reopened.tree_head(TENANT).unwrap(), head);
    assert_eq!(reopened.inclusion_proof(TENANT, 2, 9).unwrap(), proof);
    drop(reopened);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (empty, table): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM ledger WHERE tree IS NULL), \
             (SELECT count(*) FROM sqlite_schema WHERE name = 'tlog_hashes')",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (empty, table),
        (0, 0),
        "every row holds its hashes, the table is gone"
    );
    // Record 6 (leaf 5) stored two hashes: its leaf's and the subtree of leaves 4 and 5.
    let six = tree_of(6).unwrap();
    assert_eq!(six.len(), 64);
    let four = tree_of(4).unwrap();
    assert_eq!(
        four.len(),
        96,
        "leaf 3 completes subtrees of 2 and 4 leaves"
    );
    // Record 5's only hash gone, record 4's second of three gone, and the second hash of record 6 altered.
    set_back(&format!(
        "DELETE FROM tlog_hashes WHERE tenant = '{TENANT}' AND idx IN ({}, {}); \
         UPDATE tlog_hashes SET hash = zeroblob(32) WHERE tenant = '{TENANT}' AND idx = {};",
        stored_hash_index(0, 4),
        stored_hash_index(1, 1),
        stored_hash_index(1, 2),
    ));
    let reopened = Authority::builder(&path).open().unwrap();
    assert_eq!(
        tree_of(5),
        None,
        "a record missing its only hash keeps none"
    );
    assert_eq!(
        tree_of(4).unwrap(),
        &four[..32],
        "the hashes before a missing one"
    );
    assert_eq!(tree_of(6).unwrap(), [&six[..32], &[0u8; 32]].concat());
    assert_eq!(tree_of(8).unwrap().len(), 128, "the others as they were");
    // A proof through a missing hash is refused, not made up.
    assert!(reopened.inclusion_proof(TENANT, 0, 9).is_err());
}

mod packs {
    use super::*;
    use haltstate_authority::proof::{
        ProofError, TreeCheckpointError, Witness, cosignature_line, verify, verify_with_witnesses,
    };
    use haltstate_authority::{ProofSelection, SigningKey};

    fn key_name(i: usize) -> String {
        // No name is part of another (`key:1:end` is not in `key:11:end`).
        format!("key:{i}:end")
    }

    fn selection(key: &str) -> ProofSelection {
        ProofSelection {
            key: Some(key.to_owned()),
            ..ProofSelection::default()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// Whatever the log, a key's pack holds that key's records, each proven, and nothing of any other key.
        #[test]
        fn a_keys_pack_holds_its_records_and_nothing_of_any_other_key(
            order in proptest::collection::vec(0usize..6, 1..40)
        ) {
            let env = env();
            let signing = SigningKey::generate();
            for &k in &order {
                // A key's first guard, then its retries: each one a record.
                env.authority.guard(TENANT, guard_refund(100, &key_name(k))).wait().unwrap();
            }
            env.authority.checkpoint(&signing).unwrap();
            for k in 0..6 {
                let name = key_name(k);
                let expected = order.iter().filter(|&&o| o == k).count();
                let pack = env.authority.proof_pack(TENANT, &selection(&name));
                if expected == 0 {
                    prop_assert!(pack.is_err());
                    continue;
                }
                let pack = pack.unwrap();
                prop_assert_eq!(pack.records.len(), expected);
                let summary = verify(&pack, &signing.public()).unwrap();
                prop_assert_eq!(summary.tree_size, order.len() as u64);
                let text = serde_json::to_string(&pack).unwrap();
                for other in (0..6).filter(|&o| o != k) {
                    prop_assert!(!text.contains(&key_name(other)), "{} in the pack of {}", key_name(other), name);
                }
            }
        }
    }

    #[test]
    fn a_pack_stays_a_few_kilobytes_however_long_the_log() {
        let env = log_of(300);
        let signing = SigningKey::generate();
        env.authority.checkpoint(&signing).unwrap();
        let pack = env
            .authority
            .proof_pack(TENANT, &selection("r:17"))
            .unwrap();
        let size = serde_json::to_vec(&pack).unwrap().len();
        assert!(size < 8 * 1024, "{size} bytes");
        // Nine hashes prove one record of 300.
        assert_eq!(pack.records[0].inclusion.len(), 9);
        verify(&pack, &signing.public()).unwrap();
    }

    #[test]
    fn witnesses_cosignatures_are_kept_with_the_head_and_required_on_request() {
        let env = log_of(5);
        let signing = SigningKey::generate();
        let signed = env.authority.checkpoint(&signing).unwrap();
        let ours = signed
            .iter()
            .find(|c| c.checkpoint.tenant == TENANT)
            .unwrap();
        let note = ours.tree.clone().unwrap();
        let text = &note[..note.find("\n\n").unwrap() + 1];
        let witness_key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let witness = Witness::new("witness.example/w1", witness_key.verifying_key()).unwrap();
        let line = cosignature_line(witness.name(), &witness_key, text, 1_700_000_000);
        let stored = env
            .authority
            .add_cosignatures(TENANT, 5, &ours.checkpoint.key_id, &line)
            .unwrap();
        assert!(stored.ends_with(&line));
        assert_eq!(
            env.authority.newest_tree_head(TENANT).unwrap(),
            Some(stored.clone())
        );
        // Kept: the pack made now carries it, and a verifier that requires the witness accepts it.
        let pack = env.authority.proof_pack(TENANT, &selection("r:2")).unwrap();
        let summary =
            verify_with_witnesses(&pack, &signing.public(), std::slice::from_ref(&witness))
                .unwrap();
        assert_eq!(
            summary.cosigned,
            [("witness.example/w1".to_owned(), 1_700_000_000)]
        );
        // Adding it again changes nothing.
        let again = env
            .authority
            .add_cosignatures(TENANT, 5, &ours.checkpoint.key_id, &line)
            .unwrap();
        assert_eq!(again, stored);
        // A witness that did not cosign is missing; a cosignature line whose signature was changed is refused.
        let other_key = ed25519_dalek::SigningKey::from_bytes(&[10; 32]);
        let other = Witness::new("witness.example/w2", other_key.verifying_key()).unwrap();
        assert!(matches!(
            verify_with_witnesses(&pack, &signing.public(), &[other]),
            Err(ProofError::TreeHead(TreeCheckpointError::NotCosigned(_)))
        ));
        let mut forged = pack.clone();
        let tampered = cosignature_line(witness.name(), &witness_key, text, 1_700_000_001);
        let (_, sig) = tampered.trim_end().rsplit_once(' ').unwrap();
        let (_, good) = line.trim_end().rsplit_once(' ').unwrap();
        // The later time's signature under the earlier time's bytes: the key id and time parse, the signature fails.
        let mixed = format!("{}{}", &good[..16], &sig[16..]);
        forged.checkpoint = forged.checkpoint.replace(good, &mixed);
        assert!(
            verify_with_witnesses(&forged, &signing.public(), std::slice::from_ref(&witness))
                .is_err()
        );
        // A line that is not a signature is refused before anything is stored.
        assert!(
            env.authority
                .add_cosignatures(TENANT, 5, &ours.checkpoint.key_id, "not a signature\n")
                .is_err()
        );
    }

    /// Heads signed over time: the database's trees agree with each and each extends the one before.
    #[test]
    fn signed_tree_heads_agree_with_the_database_and_each_extends_the_one_before() {
        let env = env();
        let signing = SigningKey::generate();
        let mut kept = Vec::new();
        for round in 0..4 {
            for i in 0..3 {
                env.authority
                    .guard(TENANT, guard_refund(100, &format!("h:{round}:{i}")))
                    .wait()
                    .unwrap();
            }
            kept.extend(env.authority.checkpoint(&signing).unwrap());
        }
        assert_eq!(kept.len(), 4);
        assert_eq!(
            env.authority
                .verify_tree_checkpoints(&kept, &signing.public())
                .unwrap(),
            4
        );
        // Another key's heads, or a head whose note was edited, are refused.
        let other = SigningKey::generate();
        assert!(
            env.authority
                .verify_tree_checkpoints(&kept, &other.public())
                .is_err()
        );
        let mut edited = kept.clone();
        let note = edited[1].tree.take().unwrap();
        edited[1].tree = Some(note.replacen("\n6\n", "\n7\n", 1));
        assert!(matches!(
            env.authority
                .verify_tree_checkpoints(&edited, &signing.public()),
            Err(AuthorityError::CheckpointMismatch { seq: 6, .. })
        ));
    }
}

/// The forger rewrites a record, recomputes the chain and rebuilds the tree, then signs new heads with a key of
/// their own: the heads kept outside (signed with the authority's key) catch it, and the forger's heads do not
/// verify with the authority's public key.
#[test]
fn a_forgery_with_every_hash_recomputed_and_re_signed_by_another_key_is_caught() {
    use haltstate_authority::SigningKey;
    use haltstate_authority::proof::verify;
    let env = sqlite_env();
    let signing = SigningKey::generate();
    let mut kept = Vec::new();
    for round in 0..3 {
        for i in 0..4 {
            env.authority
                .guard(TENANT, guard_refund(100, &format!("f:{round}:{i}")))
                .wait()
                .unwrap();
        }
        kept.extend(env.authority.checkpoint(&signing).unwrap());
    }
    let path = env.db_path();
    let clock = env.clock.clone();
    drop(env.authority);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        haltstate_testkit::ledger::rehash_sqlite_chain(&conn, TENANT, |seq, value| {
            if seq == 6 {
                value["status"] = serde_json::json!("denied");
            }
        });
        // The stored tree and heads, rebuilt from the forged records by the migration that builds trees.
        conn.execute_batch(haltstate_testkit::ledger::SQLITE_TREES_DROPPED)
            .unwrap();
    }
    let forged = Authority::builder(&path)
        .clock(clock)
        .policy_file(common::sample_policy_path())
        .open()
        .unwrap();
    assert_eq!(
        forged.verify_ledger().unwrap().records,
        12,
        "self-consistent"
    );
    let forger = SigningKey::generate();
    let forged_heads = forged.checkpoint(&forger).unwrap();
    // Self-consistent under the forger's key...
    assert!(
        forged
            .verify_tree_checkpoints(&forged_heads, &forger.public())
            .is_ok()
    );
    let pack = forged
        .proof_pack(
            TENANT,
            &haltstate_authority::ProofSelection {
                key: Some("f:1:1".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(verify(&pack, &forger.public()).is_ok());
    // ... but not under the authority's: its pack and heads are refused, and the heads kept outside catch the
    // change, in the span between the head before it (4 records) and the first after it (8).
    assert!(verify(&pack, &signing.public()).is_err());
    assert!(
        forged
            .verify_tree_checkpoints(&forged_heads, &signing.public())
            .is_err()
    );
    match forged.verify_tree_checkpoints(&kept, &signing.public()) {
        Err(AuthorityError::CheckpointMismatch { seq, problem, .. }) => {
            assert_eq!(seq, 5, "{problem}");
            assert!(problem.contains("records 5 to 8"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
}

/// Hashes deleted from the stored tree: the signed heads name it as a damaged tree, not a storage failure.
#[test]
fn a_stored_tree_with_hashes_deleted_is_named_against_the_signed_heads() {
    use haltstate_authority::SigningKey;
    let env = sqlite_env();
    let signing = SigningKey::generate();
    for i in 0..6 {
        env.authority
            .guard(TENANT, guard_refund(100, &format!("d:{i}")))
            .wait()
            .unwrap();
    }
    let kept = env.authority.checkpoint(&signing).unwrap();
    rusqlite::Connection::open(env.db_path())
        .unwrap()
        .execute("UPDATE ledger SET tree = NULL WHERE tenant = ?1", [TENANT])
        .unwrap();
    match env
        .authority
        .verify_tree_checkpoints(&kept, &signing.public())
    {
        Err(AuthorityError::CheckpointMismatch { seq, problem, .. }) => {
            assert_eq!(seq, 6);
            assert!(
                problem.starts_with("the stored tree is damaged"),
                "{problem}"
            );
        }
        other => panic!("{other:?}"),
    }
}

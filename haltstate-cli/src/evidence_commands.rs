//! Evidence commands: the ledger (verify, alone or against signed checkpoints; checkpoint now), the signing key,
//! and proof packs (export, verify offline).

use std::process::ExitCode;

use haltstate_authority::{Authority, AuthorityError, ProofSelection, SigningKey, checkpoint_file};
use haltstate_types::proof::{
    ChainPack, ProofError, ProofPack, Witness, parse_public_key, verify_chain_pack,
    verify_with_witnesses,
};
use haltstate_types::timestamp::format_rfc3339;

use crate::args::{LedgerCommand, ProofCommand, SigningCommand};
use crate::error::CliError;
use crate::open::{open, open_as_is, open_signing};
use crate::output::out;

pub(crate) fn ledger(command: LedgerCommand) -> Result<ExitCode, CliError> {
    match command {
        LedgerCommand::Verify {
            db,
            checkpoints,
            public_key,
        } => {
            let report = match Authority::verify_database(&db) {
                Ok(report) => report,
                Err(AuthorityError::LedgerBroken {
                    tenant,
                    seq,
                    problem,
                }) => {
                    eprintln!("ledger BROKEN: tenant {tenant}, record {seq}: {problem}");
                    return Ok(ExitCode::from(2));
                }
                Err(other) => return Err(other.into()),
            };
            // The chains hold: now the rows and checkpoints against them, through one handle.
            let authority = open_as_is(&db)?;
            let signed = match (checkpoints, public_key) {
                (Some(file), Some(key)) => {
                    let key = parse_public_key(&key).map_err(|e| CliError::Usage(e.to_string()))?;
                    let checkpoints =
                        checkpoint_file::read(&file).map_err(|e| CliError::Usage(e.to_string()))?;
                    // The trees first: they name a forged record, where the chains name a span.
                    let checked = authority
                        .verify_tree_checkpoints(&checkpoints, &key)
                        .and_then(|trees| {
                            Ok((authority.verify_checkpoints(&checkpoints, &key)?, trees))
                        });
                    match checked {
                        Ok(checked) => Some(checked),
                        Err(AuthorityError::CheckpointMismatch {
                            tenant,
                            seq,
                            problem,
                        }) => {
                            eprintln!("ledger BROKEN: tenant {tenant}, record {seq}: {problem}");
                            return Ok(ExitCode::from(2));
                        }
                        Err(other) => return Err(other.into()),
                    }
                }
                _ => None,
            };
            let state_rows = match authority.verify_state(&Default::default()) {
                Ok(rows) => rows,
                Err(AuthorityError::StateMismatch { tenant, problem }) => {
                    eprintln!("state BROKEN: tenant {tenant}: {problem}");
                    return Ok(ExitCode::from(2));
                }
                Err(other) => return Err(other.into()),
            };
            out!(
                "ledger ok: {} records in {} tenant chain(s), {state_rows} state rows agree{}",
                report.records,
                report.chains.len(),
                signed
                    .map(|(n, trees)| format!(
                        ", {n} signed checkpoints agree, {trees} signed tree heads agree"
                    ))
                    .unwrap_or_default()
            );
            for chain in &report.chains {
                out!(
                    "  {}: {} records, head {}",
                    chain.tenant,
                    chain.head.seq,
                    chain.head.hash
                );
            }
        }
        LedgerCommand::Checkpoint {
            db,
            signing_key,
            checkpoint_file: file,
            log_origin_prefix,
        } => {
            let key =
                SigningKey::from_file(&signing_key).map_err(|e| CliError::Usage(e.to_string()))?;
            let authority = open_signing(&db, &log_origin_prefix)?;
            let signed = authority.checkpoint(&key)?;
            checkpoint_file::append(&file, &signed).map_err(|e| CliError::Usage(e.to_string()))?;
            for checkpoint in &signed {
                let c = &checkpoint.checkpoint;
                out!(
                    "{}\t{}\t{}\tsigned {}",
                    c.tenant,
                    c.seq,
                    c.hash,
                    format_rfc3339(c.at)
                );
            }
            eprintln!(
                "{} checkpoint(s) signed by key {} and appended to {}",
                signed.len(),
                key.key_id(),
                file.display()
            );
        }
        LedgerCommand::TreeHead {
            db,
            tenant,
            origin,
            log_origin_prefix,
            signing_key,
        } => {
            let authority = open(&db)?;
            let head = authority.tree_head(&tenant)?;
            let origin = origin
                .unwrap_or_else(|| haltstate_types::proof::log_origin(&log_origin_prefix, &tenant));
            match signing_key {
                Some(path) => {
                    let key =
                        SigningKey::from_file(&path).map_err(|e| CliError::Usage(e.to_string()))?;
                    let note =
                        haltstate_authority::tree_checkpoint::sign_tree_head(&key, &origin, &head)
                            .map_err(|e| CliError::Usage(e.to_string()))?;
                    print!("{note}");
                    eprintln!(
                        "verifier key: {}",
                        haltstate_authority::tree_checkpoint::verifier_key(&origin, &key.public())
                    );
                }
                None => {
                    let text =
                        haltstate_authority::tree_checkpoint::checkpoint_text(&origin, &head)
                            .map_err(|e| CliError::Usage(e.to_string()))?;
                    print!("{text}");
                }
            }
        }
        LedgerCommand::Consistency {
            db,
            from,
            to,
            public_key,
        } => return consistency(&db, &from, &to, &public_key),
    }
    Ok(ExitCode::SUCCESS)
}

/// `ledger consistency`: both heads verified, the proof read from the database, checked, printed.
fn consistency(
    db: &haltstate_authority::Database,
    from: &std::path::Path,
    to: &std::path::Path,
    public_key: &str,
) -> Result<ExitCode, CliError> {
    use base64::Engine;
    use haltstate_types::proof::{
        note_origin, origin_tenant, verify_consistency, verify_tree_head,
    };

    let key = parse_public_key(public_key).map_err(|e| CliError::Usage(e.to_string()))?;
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
    };
    let (old_note, new_note) = (read(from)?, read(to)?);
    let origin = note_origin(&new_note)
        .ok_or_else(|| CliError::Usage(format!("{}: not a signed tree head", to.display())))?
        .to_owned();
    let tenant = origin_tenant(&origin)
        .ok_or_else(|| CliError::Usage(format!("{origin:?} does not name a tenant's log")))?;
    let heads = verify_tree_head(&old_note, &origin, &key)
        .map_err(|e| (from, e))
        .and_then(|old| {
            Ok((
                old,
                verify_tree_head(&new_note, &origin, &key).map_err(|e| (to, e))?,
            ))
        });
    let (old, new) = match heads {
        Ok(heads) => heads,
        Err((path, error)) => {
            eprintln!("NOT CONSISTENT: {}: {error}", path.display());
            return Ok(ExitCode::from(2));
        }
    };
    if old.size > new.size {
        return Err(CliError::Usage(format!(
            "--from is a tree of {} records, larger than --to's {}: give the earlier head first",
            old.size, new.size
        )));
    }
    let authority = open_as_is(db)?;
    let proof = authority.consistency_proof(&tenant, old.size, new.size)?;
    if let Err(error) = verify_consistency(&proof, &old, &new) {
        eprintln!(
            "NOT CONSISTENT: {error}: the database does not prove that {origin}'s signed tree of {} records \
             extends its signed tree of {}",
            new.size, old.size
        );
        return Ok(ExitCode::from(2));
    }
    for hash in &proof {
        out!("{}", base64::engine::general_purpose::STANDARD.encode(hash));
    }
    eprintln!(
        "consistent: {origin}'s tree of {} records extends its tree of {} ({} proof hashes)",
        new.size,
        old.size,
        proof.len()
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn signing(command: SigningCommand) -> Result<(), CliError> {
    let key = match command {
        SigningCommand::Create { out } => {
            let key = SigningKey::create_file(&out).map_err(|e| CliError::Usage(e.to_string()))?;
            eprintln!(
                "created signing key {} in {} (mode 0600); publish its public key:",
                key.key_id(),
                out.display()
            );
            key
        }
        SigningCommand::Public { key } => {
            SigningKey::from_file(&key).map_err(|e| CliError::Usage(e.to_string()))?
        }
    };
    out!("{}", key.public_text());
    Ok(())
}

pub(crate) fn proof(command: ProofCommand) -> Result<ExitCode, CliError> {
    match command {
        ProofCommand::Export {
            db,
            tenant,
            key,
            generation,
            since,
            until,
            out,
            chain,
        } => {
            let authority = open_as_is(&db)?;
            let selection = ProofSelection {
                key,
                generation,
                since,
                until,
            };
            let (text, said) = if chain {
                let pack = authority.chain_proof_pack(&tenant, &selection)?;
                let said = format!(
                    "{} records, chain {}..{}, checkpoint signed {} by key {}",
                    pack.records.len(),
                    pack.chain.first().map_or(0, |l| l.seq),
                    pack.chain.last().map_or(0, |l| l.seq),
                    format_rfc3339(pack.checkpoint.checkpoint.at),
                    pack.checkpoint.checkpoint.key_id
                );
                (serde_json::to_string_pretty(&pack), said)
            } else {
                let pack = authority.proof_pack(&tenant, &selection)?;
                let said = format!(
                    "{} records, each with its inclusion proof in {}'s signed tree head",
                    pack.records.len(),
                    pack.origin
                );
                (serde_json::to_string_pretty(&pack), said)
            };
            let text = text.map_err(|e| CliError::Usage(e.to_string()))?;
            std::fs::write(&out, text)
                .map_err(|e| CliError::Usage(format!("{}: {e}", out.display())))?;
            eprintln!("wrote {}: {said}", out.display());
        }
        ProofCommand::Verify {
            pack,
            public_key,
            witnesses,
        } => {
            let key = parse_public_key(&public_key).map_err(|e| CliError::Usage(e.to_string()))?;
            let witnesses = witnesses
                .iter()
                .map(|w| Witness::parse(w))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let text = std::fs::read_to_string(&pack)
                .map_err(|e| CliError::Usage(format!("{}: {e}", pack.display())))?;
            match verify_pack_text(&text, &key, &witnesses) {
                Ok(summary) => out!("proof pack ok: {summary}"),
                Err(error) => {
                    eprintln!("proof pack INVALID: {error}");
                    return Ok(ExitCode::from(2));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Verifies a pack of either format; answers what it proves, in words.
fn verify_pack_text(
    text: &str,
    key: &haltstate_types::proof::VerifyingKey,
    witnesses: &[Witness],
) -> Result<String, ProofError> {
    #[derive(serde::Deserialize)]
    struct Format {
        format: String,
    }
    let format = serde_json::from_str::<Format>(text)
        .map_err(|e| ProofError::Format(e.to_string()))?
        .format;
    if format == haltstate_types::proof::CHAIN_PACK_FORMAT {
        if !witnesses.is_empty() {
            return Err(ProofError::Format(
                "a chain pack (haltstate.proof-pack/1) carries no cosignatures".into(),
            ));
        }
        let pack: ChainPack =
            serde_json::from_str(text).map_err(|e| ProofError::Format(e.to_string()))?;
        let summary = verify_chain_pack(&pack, key)?;
        return Ok(format!(
            "tenant {}, {} records, chain {}..{}, checkpoint signed {} by key {}",
            summary.tenant,
            summary.records,
            summary.chain.0,
            summary.chain.1,
            format_rfc3339(summary.signed_at),
            summary.key_id
        ));
    }
    let pack: ProofPack =
        serde_json::from_str(text).map_err(|e| ProofError::Format(e.to_string()))?;
    let summary = verify_with_witnesses(&pack, key, witnesses)?;
    let cosigned: Vec<String> = summary
        .cosigned
        .iter()
        .map(|(name, at)| format!("{name} at {at}"))
        .collect();
    Ok(format!(
        "tenant {}, {} records, each in the signed tree of {} records of {}{}",
        summary.tenant,
        summary.records,
        summary.tree_size,
        summary.origin,
        if cosigned.is_empty() {
            String::new()
        } else {
            format!(", cosigned by {}", cosigned.join(", "))
        }
    ))
}

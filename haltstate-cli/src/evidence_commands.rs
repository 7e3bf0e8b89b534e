//! Evidence commands: the ledger (verify, alone or against signed checkpoints; checkpoint now), the signing key,
//! and proof packs (export, verify offline).

use std::process::ExitCode;

use haltstate_authority::{Authority, AuthorityError, ProofSelection, SigningKey, checkpoint_file};
use haltstate_types::proof::{ProofPack, parse_public_key, verify};
use haltstate_types::timestamp::format_rfc3339;

use crate::args::{LedgerCommand, ProofCommand, SigningCommand};
use crate::error::CliError;
use crate::open::{open, open_as_is};

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
                    match authority.verify_checkpoints(&checkpoints, &key) {
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
            println!(
                "ledger ok: {} records in {} tenant chain(s), {state_rows} state rows agree{}",
                report.records,
                report.chains.len(),
                signed
                    .map(|n| format!(", {n} signed checkpoints agree"))
                    .unwrap_or_default()
            );
            for chain in &report.chains {
                println!(
                    "  {}: {} records, head {}",
                    chain.tenant, chain.head.seq, chain.head.hash
                );
            }
        }
        LedgerCommand::Checkpoint {
            db,
            signing_key,
            checkpoint_file: file,
        } => {
            let key =
                SigningKey::from_file(&signing_key).map_err(|e| CliError::Usage(e.to_string()))?;
            let authority = open(&db)?;
            let signed = authority.checkpoint(&key)?;
            checkpoint_file::append(&file, &signed).map_err(|e| CliError::Usage(e.to_string()))?;
            for checkpoint in &signed {
                let c = &checkpoint.checkpoint;
                println!(
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
            signing_key,
        } => {
            let authority = open(&db)?;
            let head = authority.tree_head(&tenant)?;
            let origin = origin.unwrap_or_else(|| format!("haltstate/{tenant}"));
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
    }
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
    println!("{}", key.public_text());
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
        } => {
            let authority = open_as_is(&db)?;
            let selection = ProofSelection {
                key,
                generation,
                since,
                until,
            };
            let pack = authority.proof_pack(&tenant, &selection)?;
            let text =
                serde_json::to_string_pretty(&pack).map_err(|e| CliError::Usage(e.to_string()))?;
            std::fs::write(&out, text)
                .map_err(|e| CliError::Usage(format!("{}: {e}", out.display())))?;
            eprintln!(
                "wrote {}: {} records, chain {}..{}, checkpoint signed {} by key {}",
                out.display(),
                pack.records.len(),
                pack.chain.first().map_or(0, |l| l.seq),
                pack.chain.last().map_or(0, |l| l.seq),
                format_rfc3339(pack.checkpoint.checkpoint.at),
                pack.checkpoint.checkpoint.key_id
            );
        }
        ProofCommand::Verify { pack, public_key } => {
            let key = parse_public_key(&public_key).map_err(|e| CliError::Usage(e.to_string()))?;
            let text = std::fs::read_to_string(&pack)
                .map_err(|e| CliError::Usage(format!("{}: {e}", pack.display())))?;
            let verdict = serde_json::from_str::<ProofPack>(&text)
                .map_err(|e| haltstate_types::proof::ProofError::Format(e.to_string()))
                .and_then(|parsed| verify(&parsed, &key));
            match verdict {
                Ok(summary) => println!(
                    "proof pack ok: tenant {}, {} records, chain {}..{}, checkpoint signed {} by key {}",
                    summary.tenant,
                    summary.records,
                    summary.chain.0,
                    summary.chain.1,
                    format_rfc3339(summary.signed_at),
                    summary.key_id
                ),
                Err(error) => {
                    eprintln!("proof pack INVALID: {error}");
                    return Ok(ExitCode::from(2));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

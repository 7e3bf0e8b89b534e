//! `haltstate policy`: check a policy file, run its cases, replay recorded decisions under a candidate, and report
//! where the shadow set disagreed.

use std::process::ExitCode;

use haltstate_authority::PolicyEngine;
use haltstate_types::timestamp::format_rfc3339;

use crate::args::PolicyCommand;
use crate::error::CliError;
use crate::open::open_as_is;
use crate::output::out;

pub(crate) fn run(command: PolicyCommand) -> Result<ExitCode, CliError> {
    match command {
        PolicyCommand::Check { path } => match PolicyEngine::from_file(&path) {
            Ok(engine) => {
                let policies = engine.current();
                for warning in policies.warnings() {
                    eprintln!("{warning}");
                }
                out!(
                    "{}: {} policies ok{}",
                    path.display(),
                    policies.len(),
                    match policies.warnings().len() {
                        0 => String::new(),
                        n => format!(", {n} warnings"),
                    }
                );
            }
            Err(error) => {
                eprintln!("{error}");
                return Ok(ExitCode::from(1));
            }
        },
        PolicyCommand::ShadowReport { db, since, tenant } => {
            let authority = open_as_is(&db)?;
            let query = haltstate_authority::ReplayQuery {
                tenant,
                since: since.map(|since| authority.now() - since),
            };
            let report = authority.shadow_report(&query)?;
            for d in &report.disagreements {
                let record = &d.record;
                out!(
                    "{}\t{}\t{}\t{}\t{}\t{}\tlive {} ({}) shadow {} ({})",
                    record.tenant,
                    record.seq,
                    format_rfc3339(record.at),
                    record
                        .idempotency_key
                        .as_deref()
                        .or(record.request_id.as_deref())
                        .unwrap_or("-"),
                    record.action.as_deref().unwrap_or("-"),
                    record.agent_id.as_deref().unwrap_or("-"),
                    d.live.as_str(),
                    record.policy_id.as_deref().unwrap_or("none"),
                    d.shadow.as_str(),
                    record.shadow_policy_id.as_deref().unwrap_or("none"),
                );
            }
            out!(
                "compared {} decisions: {} disagreed",
                report.compared,
                report.disagreements.len()
            );
        }
        PolicyCommand::Replay {
            db,
            policy,
            since,
            tenant,
            fail_on_change,
        } => {
            let candidate = match PolicyEngine::from_file(&policy) {
                Ok(engine) => engine,
                Err(error) => {
                    eprintln!("{error}");
                    return Ok(ExitCode::from(1));
                }
            };
            let authority = open_as_is(&db)?;
            let query = haltstate_authority::ReplayQuery {
                tenant,
                since: since.map(|since| authority.now() - since),
            };
            let report = authority.replay(&candidate, &query)?;
            for change in &report.changes {
                out!(
                    "{}\t{}\t{}\t{}\t{}\t{} -> {}\t{}{}",
                    change.tenant,
                    change.seq,
                    match change.generation {
                        Some(generation) => format!("{}#{generation}", change.key),
                        None => change.key.clone(),
                    },
                    change.action,
                    change.agent_id,
                    change.old.as_str(),
                    change.new.as_str(),
                    change.new_policy.as_deref().unwrap_or("no policy permits"),
                    if change.usage_unknown {
                        "\t(usage not recorded)"
                    } else {
                        ""
                    }
                );
            }
            if report.without_context > 0 {
                eprintln!(
                    "{} decisions recorded before records kept their context were not replayed",
                    report.without_context
                );
            }
            out!(
                "replayed {} decisions: {} would change",
                report.replayed,
                report.changes.len()
            );
            if fail_on_change && !report.changes.is_empty() {
                return Ok(ExitCode::from(1));
            }
        }
        PolicyCommand::Test { cases, policy } => {
            let engine = match PolicyEngine::from_file(&policy) {
                Ok(engine) => engine,
                Err(error) => {
                    eprintln!("{error}");
                    return Ok(ExitCode::from(1));
                }
            };
            match crate::policy_cases::run(&engine, &cases) {
                Ok(summary) => {
                    out!("{} passed, {} failed", summary.passed, summary.failed);
                    if summary.failed > 0 {
                        return Ok(ExitCode::from(1));
                    }
                }
                Err(error) => {
                    eprintln!("{error}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

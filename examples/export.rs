//! `#[haltstate_guard]` on a sync fn: bounded exports by the exporter agent, other agents denied.
//! Without an `idempotency_key`, the key is derived from the action, the agent and the arguments: the same export
//! is one operation while it runs and runs again once it completed (a nightly job); with `once`, it runs once ever.

use haltstate::{GuardError, HaltStateClient, haltstate_guard};
use haltstate_examples::Setup;

#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error(transparent)]
    Guard(#[from] GuardError),
}

struct Exporter {
    client: HaltStateClient,
}

impl Exporter {
    #[haltstate_guard(client = self.client, action = "data.export", agent_id = "exporter", params(count = count))]
    fn export_records(&self, count: u32) -> Result<u64, ExportError> {
        Ok(u64::from(count) * 512) // bytes written
    }

    /// The first full export of an account: one-time by nature.
    #[haltstate_guard(client = self.client, action = "data.export", agent_id = "exporter", once,
        params(count = count))]
    fn initial_export(&self, count: u32) -> Result<u64, ExportError> {
        Ok(u64::from(count) * 512)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let setup = Setup::from_env()?;
    let exporter = Exporter {
        client: setup.client("exporter")?,
    };
    println!(
        "export 100 records: {} bytes",
        exporter.export_records(100)?
    );
    println!(
        "the same export the next night: {} bytes (it completed, so this is the next run)",
        exporter.export_records(100)?
    );
    println!("the initial export: {} bytes", exporter.initial_export(7)?);
    match exporter.initial_export(7) {
        Err(ExportError::Guard(GuardError::AlreadyCompleted { idempotency_key })) => {
            println!(
                "the initial export again: already completed ({idempotency_key}), it is `once`"
            )
        }
        other => return Err(format!("expected completed, got {other:?}").into()),
    }
    match exporter.export_records(50_000) {
        Err(ExportError::Guard(GuardError::ActionDenied { reason, .. })) => {
            println!("export 50,000 records: denied ({reason})")
        }
        other => return Err(format!("expected a denial, got {other:?}").into()),
    }
    Ok(())
}

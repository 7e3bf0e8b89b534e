//! The cron pattern: a job that needs approval exits at once and retries on its next run with the same key.
//!
//! Run 1 asks and exits (`ApprovalPending`); a human approves in between; run 2 performs the refund; run 3
//! finds it completed and does nothing.

use haltstate::{Action, GuardError, HaltStateClient};
use haltstate_examples::Setup;

/// One run of the nightly job; answers the approval it waits for, if any.
async fn nightly_job(client: &HaltStateClient) -> Result<Option<String>, GuardError> {
    let refund = Action::new("refund.create")
        .key("refund:nightly-2026-01-05")
        .param("amount_cents", 250_000);
    match client.guard(refund).await {
        Ok(permit) => {
            println!("   refund issued");
            permit.complete().await?;
            Ok(None)
        }
        Err(GuardError::ApprovalPending { approval_id, .. }) => {
            println!("   waiting for approval {approval_id}; exiting, the next run retries");
            Ok(Some(approval_id))
        }
        Err(GuardError::AlreadyCompleted { .. }) => {
            println!("   already done; nothing to do");
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let setup = Setup::from_env()?;
    let client = setup.client("nightly-job")?;
    println!("run 1");
    let approval = nightly_job(&client)
        .await?
        .ok_or("run 1 should wait for approval")?;
    println!("(a human approves {approval})");
    setup.approve(&approval).await?;
    println!("run 2");
    if nightly_job(&client).await?.is_some() {
        return Err("run 2 should run".into());
    }
    println!("run 3");
    nightly_job(&client).await?;
    Ok(())
}

//! The client without macros: check, act on the decision, report; and wait for a human when asked to.

use std::time::Duration;

use haltstate::{Action, Decision, Outcome};
use haltstate_examples::Setup;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let setup = Setup::from_env()?;
    let client = setup.client("support-bot")?;

    let small = client
        .check(Action::new("refund.create").param("amount_cents", 1_200))
        .await?;
    println!("check 12.00: {} ({})", small.decision, small.reason);
    if small.allowed() {
        // ... refund ...
        client.report(&small, Outcome::Success, None).await?;
    }

    let large = client
        .check(Action::new("refund.create").param("amount_cents", 120_000))
        .await?;
    println!("check 1,200.00: {} ({})", large.decision, large.reason);
    if large.decision == Decision::ApprovalRequired {
        let approval_id = large.approval_id.clone().ok_or("an approval id")?;
        let waiter = {
            let client = client.clone();
            let id = approval_id.clone();
            tokio::spawn(
                async move { client.wait_for_approval(&id, Duration::from_secs(30)).await },
            )
        };
        setup.approve(&approval_id).await?;
        let decision = waiter.await??;
        println!(
            "approval {}: {:?} by {}",
            decision.request_id,
            decision.status,
            decision.approver.as_deref().unwrap_or("?")
        );
        client.report(&large, Outcome::Success, None).await?;
    }
    Ok(())
}

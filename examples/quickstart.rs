//! The main job: a guarded refund, end to end, with no human needed.
//!
//! `cargo run --example quickstart` sets up policies and an authority in a temp dir (or uses the server in
//! `HALTSTATE_BASE_URL`), then:
//! 1. a small refund is allowed and runs;
//! 2. a refund above every limit is denied and never runs;
//! 3. a large refund waits for a human: the call exits with `ApprovalPending`;
//! 4. an operator approves it through the authority's API;
//! 5. the same call, with the same idempotency key, now runs;
//! 6. a replay of that key answers "completed" without running;
//! 7. the evidence is printed and the ledger's hash chain verified.

use std::sync::atomic::{AtomicU32, Ordering};

use haltstate::{GuardError, guard};
use haltstate_examples::Setup;

/// What the payment provider would be asked to do.
struct Order {
    id: u32,
    amount_cents: u32,
}

#[derive(Debug, thiserror::Error)]
enum RefundError {
    #[error(transparent)]
    Guard(#[from] GuardError),
}

static REFUNDS_ISSUED: AtomicU32 = AtomicU32::new(0);

/// The side effect, guarded: it runs only when the authority allows it, at most once per order.
#[guard(
    action = "refund.create",
    idempotency_key = |order| format!("refund:{}", order.id),
    params(amount_cents = order.amount_cents),
    resource = format!("order:{}", order.id)
)]
fn issue_refund(order: &Order) -> Result<String, RefundError> {
    REFUNDS_ISSUED.fetch_add(1, Ordering::SeqCst);
    Ok(format!("re_{}", order.id))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let setup = Setup::from_env()?;
    haltstate::init(setup.client("billing-agent")?);

    println!("1. a small refund (45.00)");
    let small = Order {
        id: 1001,
        amount_cents: 4_500,
    };
    println!("   -> issued {}", issue_refund(&small)?);

    println!("2. a refund above every limit (9,000.00)");
    match issue_refund(&Order {
        id: 1002,
        amount_cents: 900_000,
    }) {
        Err(RefundError::Guard(GuardError::ActionDenied { reason, .. })) => {
            println!("   -> denied: {reason}")
        }
        other => return Err(format!("expected a denial, got {other:?}").into()),
    }

    println!("3. a large refund (900.00)");
    let large = Order {
        id: 1003,
        amount_cents: 90_000,
    };
    let approval_id = match issue_refund(&large) {
        Err(RefundError::Guard(GuardError::ApprovalPending {
            approval_id,
            idempotency_key,
            ..
        })) => {
            println!(
                "   -> waiting for a human: approval {approval_id} (key {idempotency_key}); the job exits and retries later"
            );
            approval_id
        }
        other => return Err(format!("expected a pending approval, got {other:?}").into()),
    };

    println!("4. the operator alice approves {approval_id}");
    setup.approve(&approval_id).await?;

    println!("5. the retry, with the same key");
    println!("   -> issued {}", issue_refund(&large)?);

    println!("6. a replay of the same key");
    match issue_refund(&large) {
        Err(RefundError::Guard(GuardError::AlreadyCompleted { idempotency_key })) => {
            println!("   -> completed already ({idempotency_key}); nothing ran twice")
        }
        other => return Err(format!("expected a completed replay, got {other:?}").into()),
    }
    let issued = REFUNDS_ISSUED.load(Ordering::SeqCst);
    if issued != 2 {
        return Err(format!("expected exactly 2 refunds issued, got {issued}").into());
    }

    println!("7. the evidence");
    for key in ["refund:1001", "refund:1002", "refund:1003"] {
        for record in setup.evidence(key) {
            println!(
                "   #{:<3} {:<8} {:<12} {:<10} decision={:<17} outcome={:<8} policy={:<14} proof={} redaction={}",
                record.seq,
                record.kind.as_str(),
                key,
                record.status.as_deref().unwrap_or("-"),
                record.decision.map_or("-", |d| d.as_str()),
                record.outcome.map_or("-", |o| o.as_str()),
                record.policy_id.as_deref().unwrap_or("-"),
                record.proof_status.map_or("-", |p| {
                    if p == haltstate::authority::ProofStatus::Verified {
                        "verified"
                    } else {
                        "unverified"
                    }
                }),
                record.redaction_status.as_deref().unwrap_or("-"),
            );
        }
    }
    if let Setup::Embedded { authority, .. } = &setup {
        let report = authority.verify_ledger()?;
        println!(
            "   ledger verified: {} records in {} tenant chain(s)",
            report.records,
            report.chains.len()
        );
    }
    println!("done: {issued} refunds issued, none twice");
    Ok(())
}

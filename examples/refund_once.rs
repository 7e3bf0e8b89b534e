//! Eight workers race to refund the same order: exactly one refund is issued.
//!
//! Each worker calls the same guarded fn with the same order; the authority's claim on the idempotency key
//! lets one run, answers the others `in_progress` (or `completed` once it finished), and never both.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};

use haltstate::{GuardError, HaltStateClient, haltstate_guard};
use haltstate_examples::Setup;

static ISSUED: AtomicU32 = AtomicU32::new(0);

#[haltstate_guard(client = client, action = "refund.create", agent_id = "billing-agent",
    idempotency_key = |order_id| format!("refund:{order_id}"), params(amount_cents = amount_cents))]
fn refund(client: &HaltStateClient, order_id: u32, amount_cents: u32) -> Result<(), GuardError> {
    ISSUED.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(50)); // the payment provider is slow
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let setup = Setup::from_env()?;
    let client = setup.client("billing-agent")?;
    let start = Arc::new(Barrier::new(8));
    let workers: Vec<_> = (0..8)
        .map(|worker| {
            let (client, start) = (client.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let answer = refund(&client, 7001, 2_500);
                println!(
                    "worker {worker}: {}",
                    match &answer {
                        Ok(()) => "issued the refund".to_owned(),
                        Err(e) => e.to_string(),
                    }
                );
                answer.is_ok()
            })
        })
        .collect();
    let winners = workers
        .into_iter()
        .filter_map(|w| w.join().ok())
        .filter(|&won| won)
        .count();
    let issued = ISSUED.load(Ordering::SeqCst);
    println!("{winners} worker issued the refund; the provider saw {issued} refund");
    if (winners, issued) != (1, 1) {
        return Err("the refund ran more than once".into());
    }
    Ok(())
}

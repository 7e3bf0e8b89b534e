//! The writer's floor: 20,000 guards are queued without anyone waiting (a dropped `Pending` is still carried
//! out, by the writer thread), then their 20,000 reports; batches are as large as they get (up to 512
//! operations per transaction) and no caller wakes between operations. What is left per operation is the
//! writer's own serial work.
//!
//! `cargo run --release -p haltstate-authority --example profile_writer [full|normal]`
mod common;

use haltstate_authority::{ActionRequest, Durability, GuardRequest, Outcome, OutcomeReport};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let durability = common::durability(std::env::args().nth(1).as_deref(), Durability::Normal);
    let dir = tempfile::tempdir()?;
    let authority = common::open(&dir, durability)?;
    let n = 20_000u32;
    let started = std::time::Instant::now();
    for i in 0..n {
        let request = common::refund(u64::from(i));
        // No retry token: the claim's holder (here, the embedded caller) may then report without the claim's
        // token, so the reports need no answer from the guards.
        drop(authority.guard("acme", GuardRequest::new(request, format!("k{i}"))));
    }
    // Operations run in order: once a later one is answered, every earlier one is committed.
    let marker = |key: &str| {
        let request = ActionRequest::new("agent", "refund.create");
        authority
            .guard("acme", GuardRequest::new(request, key))
            .wait()
    };
    marker("marker:guards")?;
    let guard_time = started.elapsed();
    let started = std::time::Instant::now();
    for i in 0..n {
        drop(authority.report(
            "acme",
            OutcomeReport::new(format!("k{i}"), Outcome::Success),
        ));
    }
    marker("marker:reports")?;
    let last = OutcomeReport::new(format!("k{}", n - 1), Outcome::Success);
    match authority.report("acme", last).wait()? {
        ack if ack.duplicate => {}
        ack => return Err(format!("the reports were not recorded: {ack:?}").into()),
    }
    let report_time = started.elapsed();
    println!(
        "{durability:?}: guard {:.1} µs/op, report {:.1} µs/op, {:.0} operations per transaction",
        guard_time.as_micros() as f64 / f64::from(n),
        report_time.as_micros() as f64 / f64::from(n),
        common::operations_per_transaction(&authority)
    );
    Ok(())
}

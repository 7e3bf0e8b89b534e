//! A loop for profilers: guard + report on one caller, `Durability::Normal`, 20,000 times.
//! `cargo build --release -p haltstate-authority --example profile_guard && perf record -g target/release/examples/profile_guard`
use haltstate_authority::{
    ActionRequest, Authority, Durability, GuardRequest, Outcome, OutcomeReport,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let authority = Authority::builder(dir.path().join("p.db"))
        .policy_source(
            "p.cedar",
            r#"@id("all") permit(principal, action, resource);"#,
        )
        .durability(Durability::Normal)
        .open()?;
    let started = std::time::Instant::now();
    let n = 20_000;
    for i in 0..n {
        let key = format!("k{i}");
        let request =
            ActionRequest::new("agent", "refund.create").param("amount", serde_json::json!(i));
        let answer = authority
            .guard("acme", GuardRequest::new(request, &key))
            .wait()?;
        let token = answer.claim.ok_or("no claim")?.token;
        authority
            .report(
                "acme",
                OutcomeReport::new(&key, Outcome::Success).claim_token(token),
            )
            .wait()?;
    }
    println!(
        "{:.1} µs per guard+report",
        started.elapsed().as_micros() as f64 / f64::from(n)
    );
    Ok(())
}

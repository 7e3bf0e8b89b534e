//! A loop for profilers: one policy decision over a 20-policy set, 2,000,000 times.
//! `cargo build --release -p haltstate-authority --example profile_decide && perf record -g target/release/examples/profile_decide`
use haltstate_authority::{ActionRequest, PolicyEngine};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut source = String::new();
    for i in 0..10 {
        source.push_str(&format!(
            r#"@id("a{i}.small") permit(principal, action == Action::"service{i}.act", resource)
               when {{ context.params has amount && context.params.amount <= 10000 }};
               @id("a{i}.freeze") forbid(principal, action == Action::"service{i}.act", resource)
               when {{ context.hour >= 2 && context.hour < 4 && context.risk == "money" }};"#
        ));
    }
    let engine = PolicyEngine::from_source("p.cedar", &source)?;
    let request = ActionRequest::new("billing-agent", "service3.act")
        .resource("order:1")
        .param("amount", serde_json::json!(4_500))
        .risk("money");
    let now = time::OffsetDateTime::now_utc();
    let n = 2_000_000u32;
    let started = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(engine.decide("acme", &request, now));
    }
    println!(
        "{:.2} µs per decision",
        started.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
    Ok(())
}

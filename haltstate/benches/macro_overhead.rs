//! `#[haltstate_guard]` against the same call written by hand with the client: the macro must cost nothing
//! measurable. Both run on one embedded authority (no fsync, so the comparison is not drowned in disk waits),
//! alternating, in one process.
//!
//! `cargo bench -p haltstate --bench macro_overhead`

// criterion_group! generates an undocumented fn.
#![allow(missing_docs)]

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use haltstate::authority::{Authority, Durability};
use haltstate::{Action, GuardError, HaltStateClient, haltstate_guard};

static WORLD: LazyLock<(HaltStateClient, tempfile::TempDir)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir");
    let authority = Authority::builder(dir.path().join("bench.db"))
        .policy_source(
            "p.cedar",
            r#"@id("all") permit(principal, action == Action::"refund.create", resource);"#,
        )
        .durability(Durability::Normal)
        .open()
        .expect("authority");
    (
        HaltStateClient::builder()
            .authority(authority)
            .tenant("acme")
            .build()
            .expect("client"),
        dir,
    )
});

static NEXT: AtomicU64 = AtomicU64::new(0);

#[haltstate_guard(client = WORLD.0, action = "refund.create", agent_id = "bench",
    idempotency_key = |order| format!("macro:{order}"), params(amount_cents = amount))]
fn by_macro(order: u64, amount: u32) -> Result<u32, GuardError> {
    Ok(amount)
}

fn by_hand(order: u64, amount: u32) -> Result<u32, GuardError> {
    let client = WORLD.0.blocking();
    let action = Action::new("refund.create")
        .agent("bench")
        .key(format!("hand:{order}"))
        .param("amount_cents", amount);
    let permit = client.guard(action)?;
    let result: Result<u32, GuardError> = Ok(amount);
    match &result {
        Ok(_) => permit.complete().map(drop).ok(),
        Err(e) => permit.fail(e).map(drop).ok(),
    };
    result
}

fn overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("guarded call (embedded, no fsync)");
    group.bench_function("#[haltstate_guard]", |b| {
        b.iter(|| by_macro(NEXT.fetch_add(1, Ordering::Relaxed), 100))
    });
    group.bench_function("by hand", |b| {
        b.iter(|| by_hand(NEXT.fetch_add(1, Ordering::Relaxed), 100))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(2));
    targets = overhead
}
criterion_main!(benches);

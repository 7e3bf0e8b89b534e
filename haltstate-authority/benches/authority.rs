//! The authority's hot paths: one policy decision over a 20-policy set, an action's fingerprint, and guard +
//! report on the durable ledger from 1 and 8 concurrent callers; each again with a policy reading usage
//! (`context.usage`), whose decision is made and charged in the transaction. Figures go to BENCHMARKS.md.
//!
//! `cargo bench -p haltstate-authority --bench authority`

// criterion_group! generates an undocumented fn.
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use haltstate_authority::{
    ActionRequest, Authority, Durability, GuardRequest, Outcome, OutcomeReport, PolicyEngine, Usage,
};
use serde_json::json;

/// Twenty policies over ten actions, shaped like a real tenant's: permits with conditions, approval gates,
/// forbids on schedule windows and risk flags.
fn twenty_policies() -> String {
    let mut source = String::new();
    for i in 0..10 {
        source.push_str(&format!(
            r#"@id("a{i}.small") @reason("small") permit(principal, action == Action::"service{i}.act", resource)
               when {{ context.params has amount && context.params.amount <= 10000 }};
               @id("a{i}.freeze") @reason("frozen") forbid(principal, action == Action::"service{i}.act", resource)
               when {{ context.hour >= 2 && context.hour < 4 && context.risk == "money" }};
            "#
        ));
    }
    source
}

/// The same set plus a daily budget on the benchmarked action: its decisions read and charge usage.
fn usage_policies() -> String {
    twenty_policies()
        + r#"@id("a3.budget") @reason("daily budget") forbid(principal, action == Action::"service3.act", resource)
             when { context.usage.day.sum.amount + context.params.amount > 1000000000000 };"#
}

fn request() -> ActionRequest {
    ActionRequest::new("billing-agent", "service3.act")
        .resource("order:1")
        .param("amount", json!(4_500))
        .risk("money")
}

fn decision(c: &mut Criterion) {
    let engine = PolicyEngine::from_source("bench.cedar", &twenty_policies()).expect("policies");
    let request = request();
    let now = time::macros::datetime!(2026-01-05 10:00 UTC);
    assert_eq!(engine.current().len(), 20);
    c.bench_function("decision/20-policy set", |b| {
        b.iter(|| engine.decide("acme", &request, now))
    });
    // The same decision with the agent's usage in the context (what a guard does once usage is loaded).
    let with_usage = PolicyEngine::from_source("usage.cedar", &usage_policies()).expect("policies");
    let mut usage = Usage::default();
    usage.day.count = 120;
    usage.day.sums.insert("amount".into(), 4_000_000);
    c.bench_function("decision/20-policy set + usage budget", |b| {
        b.iter(|| with_usage.decide_with_usage("acme", &request, now, Some(&usage)))
    });
    // What binds a key to its action, computed for every guard before it is queued.
    c.bench_function("fingerprint", |b| {
        b.iter(|| haltstate_authority::fingerprint(&request))
    });
}

fn authority(
    dir: &tempfile::TempDir,
    name: &str,
    durability: Durability,
    policies: &str,
) -> Authority {
    // At a fixed weekday noon: the policies' night freeze must not depend on when the bench runs.
    Authority::builder(dir.path().join(name))
        .policy_source("bench.cedar", policies)
        .durability(durability)
        .clock(Arc::new(haltstate_authority::ManualClock::at(
            time::macros::datetime!(2026-01-05 12:00 UTC),
        )))
        .open()
        .expect("authority")
}

/// One guarded action: guard, then report success.
fn guarded(authority: &Authority, key: &str) {
    let answer = authority
        .guard("acme", GuardRequest::new(request(), key))
        .wait()
        .expect("guard");
    let token = answer.claim.expect("allowed").token;
    authority
        .report(
            "acme",
            OutcomeReport::new(key, Outcome::Success).claim_token(token),
        )
        .wait()
        .expect("report");
}

fn embedded_guard(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    // Full: fsync at every commit (an acknowledged record survives power loss). Normal: WAL without fsync at
    // commit (survives a process crash); the difference is the fsync's share.
    for (label, durability, policies) in [
        ("fsync per commit", Durability::Full, twenty_policies()),
        (
            "fsync per commit, usage budget",
            Durability::Full,
            usage_policies(),
        ),
        ("no fsync (Normal)", Durability::Normal, twenty_policies()),
        // Without the fsync, what reading usage costs shows (issue 25: <= 1.15x a plain guarded call).
        (
            "no fsync (Normal), usage budget",
            Durability::Normal,
            usage_policies(),
        ),
    ] {
        let mut group = c.benchmark_group(format!("embedded guard+report ({label})"));
        group.throughput(Throughput::Elements(1));
        let name = label.replace([' ', ',', '(', ')'], "-");
        let single = authority(&dir, &format!("single-{name}.db"), durability, &policies);
        let counter = AtomicU64::new(0);
        group.bench_function("1 caller", |b| {
            b.iter(|| {
                guarded(
                    &single,
                    &format!("k{}", counter.fetch_add(1, Ordering::Relaxed)),
                )
            })
        });

        // 8 callers: the time per action is the wall time of a round of 8 x N actions divided by 8 x N.
        let shared = Arc::new(authority(
            &dir,
            &format!("eight-{name}.db"),
            durability,
            &policies,
        ));
        let next = Arc::new(AtomicU64::new(0));
        group.bench_function("8 callers, amortised per action", |b| {
            b.iter_custom(|iterations| {
                let per_thread = iterations.div_ceil(8).max(1);
                let started = Instant::now();
                let workers: Vec<_> = (0..8)
                    .map(|_| {
                        let (authority, next) = (shared.clone(), next.clone());
                        std::thread::spawn(move || {
                            for _ in 0..per_thread {
                                guarded(
                                    &authority,
                                    &format!("m{}", next.fetch_add(1, Ordering::Relaxed)),
                                );
                            }
                        })
                    })
                    .collect();
                for worker in workers {
                    worker.join().expect("worker");
                }
                let elapsed = started.elapsed();
                let per_action = elapsed.as_nanos() / u128::from(per_thread * 8);
                Duration::from_nanos(
                    u64::try_from(per_action * u128::from(iterations)).unwrap_or(u64::MAX),
                )
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = decision, embedded_guard
}
criterion_main!(benches);

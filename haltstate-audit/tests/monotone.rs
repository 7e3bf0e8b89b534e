//! A property of coverage: guarding the function of an uncovered sink never makes another sink uncovered (and
//! covers that one). Random programs: functions calling each other (loops included), some writing a file, some
//! guarded, some public, called from `main`.

#![allow(clippy::unwrap_used)]

use haltstate_audit::{Status, audit_source};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Function {
    calls: Vec<usize>,
    sink: bool,
    guarded: bool,
    value: bool,
}

fn program(functions: &[Function], from_main: &[usize]) -> String {
    let mut source = String::from("fn main() {\n");
    for callee in from_main {
        source.push_str(&format!("    f{callee}();\n"));
    }
    source.push_str("}\n");
    for (i, f) in functions.iter().enumerate() {
        if f.guarded {
            source.push_str("#[haltstate::guard(action = \"a\")]\n");
        }
        source.push_str(&format!("fn f{i}() {{\n"));
        if f.sink {
            source.push_str(&format!(
                "    std::fs::write(\"/tmp/f{i}\", b\"x\").unwrap();\n"
            ));
        }
        for callee in &f.calls {
            source.push_str(&format!("    f{callee}();\n"));
        }
        if f.value {
            source.push_str(&format!(
                "    let _handed_on = f{};\n",
                (i + 1) % functions.len()
            ));
        }
        source.push_str("}\n");
    }
    source
}

fn functions() -> impl Strategy<Value = (Vec<Function>, Vec<usize>)> {
    (2usize..9).prop_flat_map(|n| {
        let function = (
            proptest::collection::vec(0..n, 0..3),
            any::<bool>(),
            proptest::bool::weighted(0.2),
            proptest::bool::weighted(0.1),
        )
            .prop_map(|(calls, sink, guarded, value)| Function {
                calls,
                sink,
                guarded,
                value,
            });
        (
            proptest::collection::vec(function, n),
            proptest::collection::vec(0..n, 0..3),
        )
    })
}

/// Each sink's status by the function it is in (one sink per function at most).
fn statuses(source: &str) -> Vec<(String, Status)> {
    audit_source(source)
        .unwrap()
        .findings
        .into_iter()
        .map(|f| (f.function, f.status))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn guarding_an_uncovered_sink_never_uncovers_another((functions, from_main) in functions()) {
        let before = statuses(&program(&functions, &from_main));
        for (index, f) in functions.iter().enumerate() {
            let name = format!("crate::f{index}");
            let uncovered = before.iter().any(|(function, status)| *function == name && *status == Status::Uncovered);
            if !f.sink || !uncovered {
                continue;
            }
            let mut guarded = functions.clone();
            guarded[index].guarded = true;
            let after = statuses(&program(&guarded, &from_main));
            prop_assert_eq!(after.len(), before.len());
            for ((function, was), (_, is)) in before.iter().zip(&after) {
                if *function == name {
                    prop_assert_eq!(*is, Status::Covered);
                } else if *was != Status::Uncovered {
                    prop_assert_ne!(*is, Status::Uncovered, "{} became uncovered", function);
                }
            }
        }
    }
}

/// A helper called from many places, each called from many more: deciding it stays bounded (and says so).
#[test]
fn wide_fan_in_is_bounded_not_exponential() {
    let mut source = String::from(
        "fn main() {}\nfn helper() { std::fs::write(\"/tmp/x\", b\"x\").unwrap(); }\n",
    );
    let width = 40;
    for level in 0..6 {
        for i in 0..width {
            source.push_str(&format!("fn l{level}_{i}() {{\n"));
            for j in 0..width {
                if level == 0 {
                    source.push_str("    helper();\n");
                    break;
                }
                source.push_str(&format!("    l{}_{j}();\n", level - 1));
            }
            source.push_str("}\n");
        }
    }
    let started = std::time::Instant::now();
    let report = audit_source(&source).unwrap();
    // 40^6 paths to main; the walk gives up early and says why.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.findings.len(), 1);
    assert_eq!(
        report.findings[0].status,
        Status::Uncovered,
        "{}",
        report.findings[0].why
    );
}
